/**
 * Group commit: concurrent ingests share one transaction, so one fsync (and one BEGIN, one lock
 * statement, one COMMIT) serves many deliveries.
 *
 * Callers enqueue and wait. Each worker takes whatever is queued (at least one, at most
 * `maxBatch`) and runs it as one transaction; while it runs, new deliveries queue up and form the
 * next batch. No timer: a lone delivery is never delayed.
 *
 * One bad delivery fails alone. A planner that throws wrote nothing, so the batch goes on without
 * it. A statement that fails (or the COMMIT) aborts the whole transaction: then every delivery of
 * the batch is run again alone, in a transaction of its own, and only the bad one fails. This is
 * cheaper than a savepoint around each delivery (two round trips each, on every batch) for the
 * same isolation, since failures are rare.
 */
import { SyncStore } from "@clerk-sync/core"
import { Cause, Deferred, Effect, Exit, Queue, type Scope } from "effect"
import type { Database } from "./database.ts"
import { type ItemResult, lockKeys, type Pending, runBatch } from "./ingest.ts"

/** At most this many deliveries share a transaction (bounded work and lock sets per transaction). */
export const MAX_BATCH = 48

export interface Options {
  readonly maxBatch?: number
  /** Batches in flight at once (default 4). */
  readonly workers?: number
}

interface Waiting {
  readonly item: Pending
  readonly deferred: Deferred.Deferred<SyncStore.IngestOutcome, SyncStore.StorageUnavailable>
}

const unavailable = (cause: unknown) => new SyncStore.StorageUnavailable({ operation: "ingest", cause })

const outcomeOf = (result: ItemResult): Effect.Effect<SyncStore.IngestOutcome, SyncStore.StorageUnavailable> =>
  result._tag === "Done" ? Effect.succeed(result.outcome) : Effect.fail(unavailable(result.cause))

/** One delivery in a transaction of its own. */
export const ingestAlone = (db: Database, item: Pending): Effect.Effect<SyncStore.IngestOutcome, SyncStore.StorageUnavailable> =>
  runBatch(db, [item]).pipe(
    Effect.mapError((e) => unavailable(e._tag === "PlanFailed" ? e.cause : e)),
    Effect.flatMap(([result]) => outcomeOf(result!))
  )

const processBatch = (db: Database, batch: ReadonlyArray<Waiting>): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (batch.length === 1) {
      const [w] = batch
      return yield* Deferred.done(w!.deferred, yield* Effect.exit(ingestAlone(db, w!.item)))
    }
    const results = yield* Effect.result(runBatch(db, batch.map((w) => w.item)))
    if (results._tag === "Success") {
      yield* Effect.forEach(batch, (w, i) => Effect.flatMap(Effect.exit(outcomeOf(results.success[i]!)), (exit) => Deferred.done(w.deferred, exit)), {
        discard: true
      })
      return
    }
    // The transaction failed: find the culprit by running each delivery alone.
    yield* Effect.forEach(batch, (w) => Effect.flatMap(Effect.exit(ingestAlone(db, w.item)), (exit) => Deferred.done(w.deferred, exit)), {
      concurrency: 4,
      discard: true
    })
  }).pipe(
    // A bug must not kill the worker (every later ingest would wait forever): fail the batch.
    Effect.catchCause((cause) =>
      Effect.forEach(batch, (w) => Deferred.done(w.deferred, Exit.fail(unavailable(Cause.squash(cause)))), { discard: true })
    )
  )

/**
 * Starts the workers in the current scope and returns the batching `ingest`.
 *
 * A worker forms its batch from the queued deliveries that share no lock key with the batches
 * in flight (the others wait in the queue, their turn comes when those commit): batches of one
 * process never wait for each other's locks inside the database, where a waiting batch would
 * hold its own locks, and its deliveries' answers, for the length of the other's transaction.
 * Deliveries of one batch may share keys (a busy organization's members): the batch runs them in
 * waves of disjoint keys, in arrival order per key (see `ingest.ts`).
 */
export const make = (
  db: Database,
  options: Options = {}
): Effect.Effect<(item: Pending) => Effect.Effect<SyncStore.IngestOutcome, SyncStore.StorageUnavailable>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const maxBatch = Math.max(1, options.maxBatch ?? MAX_BATCH)
    const pending: Array<Waiting & { readonly keys: ReadonlyArray<string> }> = []
    /** Lock keys of the batches in flight (how many batches hold each). */
    const held = new Map<string, number>()
    // Something changed (a delivery queued, a batch done): a sleeping worker should look.
    const changed = yield* Queue.sliding<void>(1)
    const signal = () => void Queue.offerUnsafe(changed, undefined)

    const select = () => {
      const batch: typeof pending = []
      const rest: typeof pending = []
      for (const w of pending) {
        if (batch.length < maxBatch && w.keys.every((k) => !held.has(k))) batch.push(w)
        else rest.push(w)
      }
      pending.splice(0, pending.length, ...rest)
      return batch
    }
    const hold = (batch: typeof pending, delta: 1 | -1) => {
      for (const w of batch) {
        for (const k of w.keys) {
          const n = (held.get(k) ?? 0) + delta
          if (n === 0) held.delete(k)
          else held.set(k, n)
        }
      }
    }

    // A batch, once taken, is seen through (uninterruptible): closing the store waits for it, so
    // nobody waits forever on a delivery a closing store dropped.
    const worker = Effect.forever(Effect.gen(function*() {
      let batch = select()
      while (batch.length === 0) {
        yield* Queue.take(changed)
        batch = select()
      }
      hold(batch, 1)
      if (pending.length > 0) signal() // there may be work for another worker
      yield* Effect.uninterruptible(Effect.ensuring(processBatch(db, batch), Effect.sync(() => {
        hold(batch, -1)
        signal()
      })))
    }))
    for (let i = 0; i < Math.max(1, options.workers ?? 4); i++) yield* Effect.forkScoped(worker)
    // On shutdown, whoever is still queued gets an answer rather than waiting forever.
    yield* Effect.addFinalizer(() =>
      Effect.forEach(pending.splice(0), (w) => Deferred.fail(w.deferred, unavailable("store closed")), { discard: true })
    )
    return (item: Pending) =>
      Effect.flatMap(Deferred.make<SyncStore.IngestOutcome, SyncStore.StorageUnavailable>(), (deferred) =>
        Effect.andThen(
          Effect.sync(() => {
            pending.push({ item, deferred, keys: lockKeys(db.schema, [item]) })
            signal()
          }),
          Deferred.await(deferred)
        )
      )
  })
