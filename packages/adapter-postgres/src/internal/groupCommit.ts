/**
 * Group commit: concurrent ingests share one transaction, so one fsync serves many deliveries.
 *
 * Callers enqueue and wait. Each worker takes whatever is queued (at least one, at most
 * `maxBatch`) and runs it as one transaction, each delivery in its own savepoint; while it runs,
 * new deliveries queue up and form the next batch. No timer: a lone delivery is never delayed.
 *
 * Failure isolation: a delivery that fails inside its savepoint is retried alone, in a
 * transaction of its own, after the batch commits; a planner that throws fails only its own
 * delivery; when the batch's COMMIT (or its locking) fails, the whole batch fails with
 * `StorageUnavailable` (after the bounded retries for deadlocks and serialization failures).
 */
import { SyncStore } from "@clerk-sync/core"
import { Cause, Deferred, Effect, Queue, type Scope } from "effect"
import type { Database } from "./database.ts"
import { type ItemResult, type Pending, runBatch } from "./ingest.ts"

/** At most this many deliveries share a transaction: each savepoint that writes takes a
 * subtransaction id, and beyond 64 per transaction Postgres's subxid cache overflows, which slows
 * every other session's snapshots. */
export const MAX_BATCH = 48

export interface Options {
  readonly maxBatch?: number
  /** Batches in flight at once (default 2). */
  readonly workers?: number
}

interface Waiting {
  readonly item: Pending
  readonly deferred: Deferred.Deferred<SyncStore.IngestOutcome, SyncStore.StorageUnavailable>
}

const unavailable = (cause: unknown) => new SyncStore.StorageUnavailable({ operation: "ingest", cause })

/** Turns one delivery's result into its outcome (running it alone when it failed in a batch). */
export const settle = (
  db: Database,
  item: Pending,
  result: ItemResult
): Effect.Effect<SyncStore.IngestOutcome, SyncStore.StorageUnavailable> => {
  switch (result._tag) {
    case "Done":
      return Effect.succeed(result.outcome)
    case "PlanFailed":
      return Effect.fail(unavailable(result.cause))
    case "Failed":
      return ingestAlone(db, item)
  }
}

/** One delivery in a transaction of its own. */
export const ingestAlone = (db: Database, item: Pending): Effect.Effect<SyncStore.IngestOutcome, SyncStore.StorageUnavailable> =>
  runBatch(db, [item]).pipe(
    Effect.mapError((e) => unavailable(e._tag === "PlanFailed" ? e.cause : e)),
    Effect.flatMap(([result]) =>
      result!._tag === "Done"
        ? Effect.succeed(result!.outcome)
        : Effect.fail(unavailable(result!._tag === "PlanFailed" ? result!.cause : result!.error))
    )
  )

const processBatch = (db: Database, batch: ReadonlyArray<Waiting>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const results = yield* Effect.result(runBatch(db, batch.map((w) => w.item)))
    if (results._tag === "Failure") {
      const error = unavailable(results.failure._tag === "PlanFailed" ? results.failure.cause : results.failure)
      yield* Effect.forEach(batch, (w) => Deferred.fail(w.deferred, error), { discard: true })
      return
    }
    yield* Effect.forEach(
      batch,
      (w, i) => Effect.flatMap(Effect.exit(settle(db, w.item, results.success[i]!)), (exit) => Deferred.done(w.deferred, exit)),
      { discard: true }
    )
  }).pipe(
    // A bug must not kill the worker (every later ingest would wait forever): fail the batch.
    Effect.catchCause((cause) =>
      Effect.forEach(batch, (w) => Deferred.fail(w.deferred, unavailable(Cause.squash(cause))), { discard: true })
    )
  )

/**
 * Starts the workers in the current scope and returns the batching `ingest`.
 */
export const make = (
  db: Database,
  options: Options = {}
): Effect.Effect<(item: Pending) => Effect.Effect<SyncStore.IngestOutcome, SyncStore.StorageUnavailable>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const maxBatch = Math.max(1, Math.min(options.maxBatch ?? MAX_BATCH, 60))
    const queue = yield* Queue.unbounded<Waiting>()
    // A batch, once taken, is seen through (uninterruptible): closing the store waits for it, so
    // nobody waits forever on a delivery a closing store dropped.
    const worker = Effect.forever(
      Effect.flatMap(Queue.takeBetween(queue, 1, maxBatch), (batch) => Effect.uninterruptible(processBatch(db, batch)))
    )
    for (let i = 0; i < Math.max(1, options.workers ?? 2); i++) yield* Effect.forkScoped(worker)
    // On shutdown, whoever is still queued gets an answer rather than waiting forever.
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Queue.clear(queue), (left) =>
        Effect.forEach(left, (w) => Deferred.fail(w.deferred, unavailable("store closed")), { discard: true })
      ).pipe(Effect.ignore)
    )
    return (item: Pending) =>
      Effect.flatMap(Deferred.make<SyncStore.IngestOutcome, SyncStore.StorageUnavailable>(), (deferred) =>
        Effect.andThen(Queue.offer(queue, { item, deferred }), Deferred.await(deferred))
      )
  })
