/**
 * Backfill: page through Clerk's users, organizations and memberships with the Backend API and
 * feed every object through the same ingest as webhooks, so the app's tables hold what Clerk holds.
 *
 * - **Same rules as webhooks.** Each object becomes a synthetic `*.updated` delivery
 *   ({@link Deliveries.ofObject}) versioned by its `updated_at`: a backfill racing live webhooks
 *   converges to the same state and never overwrites newer data with older.
 * - **Resumable.** After each page is applied, the position is checkpointed in the store
 *   (`backfill:<runId>:users`, `…:organizations`, `…:memberships`). Run again after an
 *   interruption and it continues where it stopped; run again after it finished and it starts a
 *   new pass (a repair).
 * - **Changing lists.** Pages are read oldest first and overlap a little; a deletion behind the
 *   walk is detected and absorbed (see `internal/Walk.ts` for the guarantee).
 * - **Bounded memory.** One page in hand, one being fetched (the next page is read while the
 *   current one is ingested). Nothing is accumulated across pages but counters.
 * - **Concurrent ingests.** A page's objects are ingested `concurrency` at a time, so the Postgres
 *   store's group commit shares one transaction (one fsync) among many. The checkpoint still moves
 *   only once every object of the page is applied.
 * - **Rate limit.** Every request goes through the client's token bucket; `429`s pause it.
 * - **Cheap repairs.** An object the store already holds at the same or a newer `updated_at` is
 *   counted as current after a read, without a write: a pass over a synced database costs reads.
 *   The reads are skipped on a page after one that held nothing (a first import), where each
 *   would find nothing.
 *
 * Memberships are read instance-wide (`GET /organization_memberships`, 500 per request), not one
 * organization at a time: an instance with 10,000 small organizations needs 20 requests, not 10,000.
 *
 * @example
 * import { Effect, Layer } from "effect"
 * import { MemoryStore } from "@clerk-sync/core"
 * import { Backfill, ClerkApi } from "@clerk-sync/backfill"
 * const summary = await Effect.runPromise(Backfill.run().pipe(
 *   Effect.provide(Layer.merge(MemoryStore.layer, ClerkApi.layer({ secretKey: process.env.CLERK_SECRET_KEY! })))
 * ))
 * summary.counts.user // { fetched: 2000, applied: 2000, unchanged: 0, duplicate: 0, failed: 0 }
 *
 * @since 0.1.0
 */
import { Clock, Data, Effect, Fiber, Option, Ref } from "effect"
import { SyncStore, Version } from "@clerk-sync/core"
import { type ApiObject, ClerkApi, type ClerkApiError, type Collection, MAX_PAGE_SIZE } from "./ClerkApi.ts"
import * as Deliveries from "./Deliveries.ts"
import * as Walk from "./internal/Walk.ts"
import * as Progress from "./Progress.ts"

/** The entities, in the order a backfill reads them. @category constants */
export const ENTITIES: ReadonlyArray<Deliveries.Entity> = ["user", "organization", "membership"]

/**
 * Objects of a page ingested at once, unless told otherwise: enough for the Postgres store's group
 * commit to fill its transactions (`bench/backfill.ts`: about 3.5× one at a time, 15% more than
 * 16), few enough that webhooks arriving meanwhile do not queue behind a long backlog.
 *
 * @category constants
 */
export const DEFAULT_CONCURRENCY = 32

const COLLECTION: Readonly<Record<Deliveries.Entity, Collection>> = {
  user: "users",
  organization: "organizations",
  membership: "organization_memberships"
}

/** @category models */
export interface Options {
  /** Names the run's checkpoints (default `"default"`). Two runs with different ids do not share progress. */
  readonly runId?: string
  /** The entities to read (default all three; memberships after users and organizations). */
  readonly only?: ReadonlyArray<Deliveries.Entity>
  /** Objects per request (default and maximum 500, at least 2). */
  readonly pageSize?: number
  /** Objects each request re-reads before the cursor, to absorb deletions (default 10, below `pageSize`). */
  readonly overlap?: number
  /** Objects of one page checked and ingested at once (default {@link DEFAULT_CONCURRENCY}, 32); 1 ingests them one by one. */
  readonly concurrency?: number
  /** Ignore the run's checkpoints and start over. */
  readonly restart?: boolean
  /** Write client notifications to the outbox, as webhooks do (default true). */
  readonly notify?: boolean
  /** Called with a snapshot every `progressInterval` ms (default 1,000) and once at the end. */
  readonly onProgress?: (snapshot: Progress.Snapshot) => void
  readonly progressInterval?: number
}

/** A delivery the decoder rejected (e.g. an object without `updated_at`). @category models */
export interface Failure {
  readonly eventId: string
  readonly error: string
}

/** @category models */
export interface Summary {
  readonly runId: string
  /** Whether this process continued an interrupted run. */
  readonly resumed: boolean
  /** Counts of the whole run, earlier interrupted attempts included. */
  readonly counts: Readonly<Record<Deliveries.Entity, Progress.Counts>>
  /** Objects read by this process, in how long, and the resulting rate. */
  readonly fetchedNow: number
  readonly durationMs: number
  readonly objectsPerSecond: number
  readonly requests: number
  readonly rateLimited: number
  readonly retries: number
  /** The first failures of this process (at most 20). */
  readonly failures: ReadonlyArray<Failure>
}

/** A checkpoint could not be read (written by an incompatible version?). @category errors */
export class CheckpointError extends Data.TaggedError("CheckpointError")<{ readonly name: string }> {
  override get message(): string {
    return `checkpoint ${this.name} is not readable; start over with restart (CLI: --restart)`
  }
}

/** What is stored under `backfill:<runId>:<collection>`. @category models */
export interface Checkpoint {
  readonly v: 1
  readonly cursor: Walk.Cursor
  readonly done: boolean
  readonly counts: Progress.Counts
}

const fresh: Checkpoint = { v: 1, cursor: Walk.initial, done: false, counts: Progress.zero }

/** The checkpoint name of an entity in a run. @category checkpoints */
export const checkpointName = (runId: string, entity: Deliveries.Entity): string => `backfill:${runId}:${COLLECTION[entity]}`

const isCounts = (u: unknown): u is Progress.Counts =>
  typeof u === "object" && u !== null &&
  (["fetched", "applied", "unchanged", "duplicate", "failed"] as const).every((k) => typeof (u as Record<string, unknown>)[k] === "number")

const decodeCheckpoint = (text: string): Checkpoint | null => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof value !== "object" || value === null) return null
  const c = value as Record<string, unknown>
  const cursor = c.cursor as Record<string, unknown> | null | undefined
  if (c.v !== 1 || typeof c.done !== "boolean" || !isCounts(c.counts) || typeof cursor !== "object" || cursor === null) return null
  if (typeof cursor.offset !== "number") return null
  const anchor = cursor.anchor as Record<string, unknown> | null | undefined
  if (anchor !== null && (typeof anchor !== "object" || typeof anchor.id !== "string" || typeof anchor.createdAt !== "number")) return null
  return {
    v: 1,
    done: c.done,
    counts: c.counts,
    cursor: { offset: cursor.offset, anchor: anchor === null ? null : { id: anchor.id as string, createdAt: anchor.createdAt as number } }
  }
}

/** Reads a run's checkpoint for an entity (`None` when the run never reached it). @category checkpoints */
export const readCheckpoint = (runId: string, entity: Deliveries.Entity) =>
  Effect.gen(function*() {
    const name = checkpointName(runId, entity)
    const stored = yield* (yield* SyncStore.SyncStore).getCheckpoint(name)
    if (Option.isNone(stored)) return Option.none<Checkpoint>()
    const decoded = decodeCheckpoint(stored.value)
    return decoded === null ? yield* new CheckpointError({ name }) : Option.some(decoded)
  })

const MAX_FAILURES = 20

interface PageResult {
  readonly counts: Progress.Counts
  /** Something on the page was in the store already. */
  readonly held: boolean
}

const membershipPair = (o: ApiObject): readonly [clerkUserId: string, clerkOrgId: string] | null => {
  const user = o.json.public_user_data
  const org = o.json.organization
  const userId = typeof user === "object" && user !== null && "user_id" in user ? user.user_id : undefined
  const orgId = typeof org === "object" && org !== null && "id" in org ? org.id : undefined
  return typeof userId === "string" && typeof orgId === "string" ? [userId, orgId] : null
}

/**
 * Runs (or resumes) a backfill.
 *
 * @category programs
 */
export const run = Effect.fn("Backfill.run")(function*(
  options: Options = {}
): Effect.fn.Return<Summary, ClerkApiError | SyncStore.StorageUnavailable | CheckpointError, ClerkApi | SyncStore.SyncStore> {
  const api = yield* ClerkApi
  const store = yield* SyncStore.SyncStore
  const runId = options.runId ?? "default"
  const entities = ENTITIES.filter((e) => options.only === undefined || options.only.includes(e))
  const pageSize = Math.max(2, Math.min(MAX_PAGE_SIZE, Math.floor(options.pageSize ?? MAX_PAGE_SIZE)))
  const overlap = Math.max(1, Math.min(pageSize - 1, Math.floor(options.overlap ?? 10)))
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? DEFAULT_CONCURRENCY))
  const ingestOptions: Deliveries.IngestOptions = options.notify === false ? { notify: false } : {}

  // Load the run, or start a new pass when it finished (a repair) or when asked to.
  const stored = new Map<Deliveries.Entity, Checkpoint>()
  for (const entity of entities) {
    const found = options.restart === true ? Option.none<Checkpoint>() : yield* readCheckpoint(runId, entity)
    if (Option.isSome(found)) stored.set(entity, found.value)
  }
  const unfinished = [...stored.values()].some((c) => !c.done)
  const resumed = unfinished
  if (!unfinished) {
    // Written up front: a new pass interrupted before reaching an entity must not find that
    // entity's `done` from the previous pass.
    for (const entity of entities) {
      stored.set(entity, fresh)
      yield* store.setCheckpoint(checkpointName(runId, entity), JSON.stringify(fresh))
    }
  }

  const startedAt = yield* Clock.currentTimeMillis
  const statsAtStart = yield* api.stats
  const counts = yield* Ref.make<Record<Deliveries.Entity, Progress.Counts>>({
    user: stored.get("user")?.counts ?? Progress.zero,
    organization: stored.get("organization")?.counts ?? Progress.zero,
    membership: stored.get("membership")?.counts ?? Progress.zero
  })
  const fetchedNow = yield* Ref.make(0)
  const phase = yield* Ref.make<Deliveries.Entity | null>(null)
  const failures: Array<Failure> = []

  const snapshot = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const stats = yield* api.stats
    return {
      phase: yield* Ref.get(phase),
      counts: yield* Ref.get(counts),
      fetchedNow: yield* Ref.get(fetchedNow),
      elapsed: now - startedAt,
      requests: stats.requests - statsAtStart.requests,
      rateLimited: stats.rateLimited - statsAtStart.rateLimited
    } satisfies Progress.Snapshot
  })
  const onProgress = options.onProgress
  const reporter = onProgress === undefined ? undefined : yield* Effect.forkChild(
    Effect.forever(Effect.flatMap(Effect.sleep(options.progressInterval ?? 1_000), () => Effect.map(snapshot, onProgress)))
  )

  /** Reads the page for `cursor`, stepping further back while deletions leave a gap. */
  const fetchStep = (entity: Deliveries.Entity, cursor: Walk.Cursor) =>
    Walk.readStep((start) => api.list(COLLECTION[entity], { offset: start, limit: pageSize }), cursor, overlap, pageSize)

  /**
   * Whether the store already holds this state or a newer one, read without writing: the planner
   * would find the delivery stale, so it is not sent (a repair pass over a synced database then
   * costs reads, not transactions). Stricter than the planner, never looser: anything uncertain
   * (no `updated_at`, a placeholder, an ended membership) goes through ingest.
   */
  const isCurrent = (entity: Deliveries.Entity, o: ApiObject): Effect.Effect<boolean, SyncStore.StorageUnavailable> => {
    const updatedAt = o.updatedAt
    if (updatedAt === null) return Effect.succeed(false)
    const heldAtLeast = (row: Option.Option<{ readonly version: string; readonly placeholder: boolean; readonly deletedAt: number | null }>) =>
      Option.isSome(row) && (row.value.deletedAt !== null || (!row.value.placeholder && Version.atOf(row.value.version) >= updatedAt))
    switch (entity) {
      case "user":
        return Effect.map(store.findUser(o.id), heldAtLeast)
      case "organization":
        return Effect.map(store.findOrganization(o.id), heldAtLeast)
      case "membership": {
        const ids = membershipPair(o)
        if (ids === null) return Effect.succeed(false)
        return Effect.map(store.findMembership(ids[0], ids[1]), (row) => Option.isSome(row) && Version.atOf(row.value.version) >= updatedAt)
      }
    }
  }

  /**
   * Ingests a page, `concurrency` objects at a time: on the Postgres store concurrent ingests share
   * a transaction (group commit), so one commit, and one fsync, serves many objects. Order within a
   * page does not matter: versions decide, whatever order the objects land in, and two objects
   * touching the same user or organization (memberships of one organization, a placeholder both
   * want to create) are serialized by the store's locks.
   *
   * The reads that skip current objects all run before the first ingest: run side by side, they
   * would hold the store's connections while the group commit waits for one. They are skipped when
   * the previous page held nothing current (a first import): each would be a wasted round trip.
   *
   * `held` tells whether anything on the page was already in the store (current, stale or a
   * duplicate), which is what decides whether the next page is worth checking.
   */
  const ingestPage = (
    entity: Deliveries.Entity,
    objects: ReadonlyArray<ApiObject>,
    check: boolean
  ): Effect.Effect<PageResult, SyncStore.StorageUnavailable, SyncStore.SyncStore> =>
    Effect.gen(function*() {
      const current = check
        ? yield* Effect.forEach(objects, (o) => isCurrent(entity, o), { concurrency })
        : objects.map(() => false)
      const results = yield* Effect.forEach(
        objects.filter((_, i) => !current[i]),
        (o) => Deliveries.ingest(Deliveries.ofObject(entity, o), ingestOptions),
        { concurrency }
      )
      let applied = 0
      let unchanged = current.filter(Boolean).length
      let duplicate = 0
      let failed = 0
      for (const r of results) {
        if (r.status === "duplicate") duplicate++
        else if (r.status === "failed") {
          failed++
          if (failures.length < MAX_FAILURES) failures.push({ eventId: r.eventId, error: r.error ?? "" })
        } else if (r.applied) applied++
        else unchanged++
      }
      const counts: Progress.Counts = { fetched: objects.length, applied, unchanged, duplicate, failed }
      return { counts, held: unchanged + duplicate > 0 }
    })

  for (const entity of entities) {
    let checkpoint = stored.get(entity) ?? fresh
    if (checkpoint.done) continue
    yield* Ref.set(phase, entity)
    // The first page is always checked: a resumed run finds the interrupted page's objects there.
    let check = true
    let step = yield* fetchStep(entity, checkpoint.cursor)
    for (;;) {
      const current = step
      // The next page is read while this one is ingested; the checkpoint only moves once this
      // page is applied, so an interruption re-reads at most the page in flight.
      const next = current.done ? undefined : yield* Effect.forkChild(fetchStep(entity, current.next))
      const page: PageResult = yield* ingestPage(entity, current.fresh, check)
      const added = page.counts
      // An empty page (all overlap) says nothing about the next one.
      if (current.fresh.length > 0) check = page.held
      checkpoint = { v: 1, cursor: current.next, done: current.done, counts: Progress.add(checkpoint.counts, added) }
      yield* store.setCheckpoint(checkpointName(runId, entity), JSON.stringify(checkpoint))
      yield* Ref.update(counts, (c) => ({ ...c, [entity]: checkpoint.counts }))
      yield* Ref.update(fetchedNow, (n) => n + added.fetched)
      if (next === undefined) break
      step = yield* Fiber.join(next)
    }
  }

  yield* Ref.set(phase, null)
  const last = yield* snapshot
  if (reporter !== undefined) yield* Fiber.interrupt(reporter)
  onProgress?.(last)
  const stats = yield* api.stats
  return {
    runId,
    resumed,
    counts: last.counts,
    fetchedNow: last.fetchedNow,
    durationMs: last.elapsed,
    objectsPerSecond: Progress.rate(last),
    requests: last.requests,
    rateLimited: last.rateLimited,
    retries: stats.retries - statsAtStart.retries,
    failures
  }
})
