/**
 * Progress of a backfill: counts per entity, the rate, the requests made, and how to show them on
 * a terminal (one line rewritten in place on a TTY, plain periodic lines otherwise).
 *
 * @example
 * import { Progress } from "@clerk-sync/backfill"
 * const report = Progress.terminal(process.stdout) // pass as `onProgress` to Backfill.run
 *
 * @since 0.1.0
 */
import type { Entity } from "./Deliveries.ts"

/** What happened to the objects of one entity. @category models */
export interface Counts {
  /** Objects read from the API (each once, overlap re-reads excluded). */
  readonly fetched: number
  /** Ingested and changed the stored state (new, or newer than what was held). */
  readonly applied: number
  /** The store already held this state or a newer one: nothing written. */
  readonly unchanged: number
  /** Ingested before (same delivery id), found in the inbox. */
  readonly duplicate: number
  /** Recorded as failed by the decoder (see the inbox for the error). */
  readonly failed: number
}

/** @category constructors */
export const zero: Counts = { fetched: 0, applied: 0, unchanged: 0, duplicate: 0, failed: 0 }

/** @category combinators */
export const add = (a: Counts, b: Counts): Counts => ({
  fetched: a.fetched + b.fetched,
  applied: a.applied + b.applied,
  unchanged: a.unchanged + b.unchanged,
  duplicate: a.duplicate + b.duplicate,
  failed: a.failed + b.failed
})

/** A point-in-time view of a running backfill. @category models */
export interface Snapshot {
  /** What the backfill is reading now (`null` once finished). */
  readonly phase: Entity | null
  /** Counts of the whole run (including earlier, interrupted attempts of it). */
  readonly counts: Readonly<Record<Entity, Counts>>
  /** Objects fetched by this process, and for how long it has run (ms). */
  readonly fetchedNow: number
  readonly elapsed: number
  /** Backend API requests made by this process, and how many were answered 429. */
  readonly requests: number
  readonly rateLimited: number
}

const number = (n: number): string => Math.round(n).toLocaleString("en-US")

const LABEL: Readonly<Record<Entity, string>> = { user: "users", organization: "organizations", membership: "memberships" }

/** Objects per second of this process. @category accessors */
export const rate = (s: Snapshot): number => (s.elapsed > 0 ? (s.fetchedNow * 1000) / s.elapsed : 0)

/**
 * One line: `users 1,500 (+1,480) · organizations 120 (+120) · memberships 0 · 2,950/s · 9 requests · 0 × 429`.
 *
 * @category rendering
 */
export const line = (s: Snapshot): string => {
  const parts = (["user", "organization", "membership"] as const).map((e) => {
    const c = s.counts[e]
    const marker = s.phase === e ? "▸ " : ""
    return `${marker}${LABEL[e]} ${number(c.fetched)}${c.applied > 0 ? ` (+${number(c.applied)})` : ""}${c.failed > 0 ? ` [${number(c.failed)} failed]` : ""}`
  })
  return `${parts.join(" · ")} · ${number(rate(s))}/s · ${number(s.requests)} requests · ${number(s.rateLimited)} × 429`
}

/** Where progress goes: a writable stream's subset. @category models */
export interface Output {
  readonly write: (text: string) => unknown
  readonly isTTY?: boolean | undefined
}

/**
 * Renders snapshots on an output: on a TTY, one line rewritten in place; otherwise a line at most
 * every `plainEvery` ms (default 5 s). Call the returned function's `end` with the last snapshot
 * (it always writes the final line).
 *
 * @category rendering
 */
export const terminal = (output: Output, options: { readonly plainEvery?: number } = {}) => {
  const plainEvery = options.plainEvery ?? 5_000
  let lastPlain = -Infinity
  const show = (s: Snapshot): void => {
    if (output.isTTY === true) {
      output.write(`\r\u001b[2K${line(s)}`)
    } else if (s.elapsed - lastPlain >= plainEvery) {
      lastPlain = s.elapsed
      output.write(`${line(s)}\n`)
    }
  }
  const end = (s: Snapshot): void => {
    output.write(output.isTTY === true ? `\r\u001b[2K${line(s)}\n` : `${line(s)}\n`)
  }
  return Object.assign(show, { end })
}
