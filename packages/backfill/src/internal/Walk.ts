/**
 * Walking an offset-paginated list that changes while it is walked.
 *
 * Lists are read oldest first (`order_by=+created_at`), so objects created during the walk are
 * appended at the end and do not shift the pages still to come. Deletions do shift them: an object
 * deleted behind the walk moves every later object one place left, and a plain `offset += limit`
 * would skip one object per deletion. So each request starts `overlap` objects before the cursor,
 * and the page is matched against the anchor (the last object already handed out):
 *
 * - the anchor is in the page: everything after it is new (a deletion before it is harmless);
 * - the anchor is not in the page (it was deleted), but the page starts strictly before the
 *   anchor's `created_at`: the page covers the anchor's place, so objects from the anchor's
 *   `created_at` on are new (those sharing it are handed out again: ingest is idempotent);
 * - otherwise more objects were deleted behind the walk than the overlap absorbs: a {@link Gap},
 *   and the caller asks again from further back (doubling the step back, down to offset 0).
 *
 * Guarantee: every object that exists for the whole walk and was created before it started is
 * handed out at least once, whatever is created, updated or deleted meanwhile, provided the API
 * orders objects with equal `created_at` the same way on every request. Objects created during
 * the walk may or may not be seen (their `*.created` webhooks cover them; the next backfill does too).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"

/** The last object handed out. */
export interface Anchor {
  readonly id: string
  readonly createdAt: number
}

/** Where a walk stands: the offset the next new object is expected at, and the anchor. */
export interface Cursor {
  readonly offset: number
  readonly anchor: Anchor | null
}

export const initial: Cursor = { offset: 0, anchor: null }

/** Where the request for `cursor` starts: `overlap × stepBack` before it (never below 0). */
export const requestStart = (cursor: Cursor, overlap: number, stepBack: number): number =>
  cursor.anchor === null ? cursor.offset : Math.max(0, cursor.offset - Math.max(1, overlap) * stepBack)

export type Step<A> =
  | { readonly _tag: "Gap" }
  | {
    readonly _tag: "Page"
    /** Objects not handed out before, in list order. */
    readonly fresh: ReadonlyArray<A>
    readonly next: Cursor
    /** The list ended within this page. */
    readonly done: boolean
  }

const GAP = { _tag: "Gap" } as const

/** Matches a page read at `start` (asking for `limit` objects) against the cursor. */
export const step = <A extends Anchor>(cursor: Cursor, start: number, page: ReadonlyArray<A>, limit: number): Step<A> => {
  const done = page.length < limit
  const end = start + page.length
  const anchor = cursor.anchor
  if (anchor === null) {
    const last = page[page.length - 1]
    return { _tag: "Page", fresh: page, next: { offset: end, anchor: last ? anchorOf(last) : null }, done }
  }
  const at = page.findIndex((o) => o.id === anchor.id)
  let fresh: ReadonlyArray<A>
  if (at >= 0) {
    fresh = page.slice(at + 1)
  } else if (start === 0 || (page.length > 0 && page[0]!.createdAt < anchor.createdAt)) {
    fresh = page.filter((o) => o.createdAt >= anchor.createdAt)
  } else {
    return GAP
  }
  const last = fresh[fresh.length - 1]
  return { _tag: "Page", fresh, next: { offset: end, anchor: last ? anchorOf(last) : anchor }, done }
}

const anchorOf = (o: Anchor): Anchor => ({ id: o.id, createdAt: o.createdAt })

/**
 * Reads the page for `cursor` with `read(start)`, stepping further back while deletions leave a
 * gap (it terminates: a page read from offset 0 is never a gap). `limit` must be at least 2 and the
 * overlap is kept below it, so every full page moves the walk forward.
 */
export const readStep = <A extends Anchor, E, R>(
  read: (start: number) => Effect.Effect<ReadonlyArray<A>, E, R>,
  cursor: Cursor,
  overlap: number,
  limit: number
): Effect.Effect<Extract<Step<A>, { readonly _tag: "Page" }>, E, R> =>
  Effect.gen(function*() {
    if (limit < 2) return yield* Effect.die(new RangeError("Walk: pages must hold at least 2 objects"))
    const kept = Math.min(Math.max(1, overlap), limit - 1)
    for (let stepBack = 1;; stepBack *= 2) {
      const start = requestStart(cursor, kept, stepBack)
      const result = step(cursor, start, yield* read(start), limit)
      if (result._tag === "Page") return result
    }
  })
