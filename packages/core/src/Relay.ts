/**
 * The outbox relay: hands stored notifications to the {@link Publisher} in `seq` order and marks
 * them published. At-least-once: a crash between publish and mark re-sends, and clients dedupe by
 * `seq`. A failed publish leaves the batch unpublished, to be retried in order.
 *
 * @since 0.1.0
 */
import { Effect, Schedule } from "effect"
import { type PublishError, Publisher } from "./Publisher.ts"
import { type StorageUnavailable, SyncStore } from "./SyncStore.ts"

/**
 * Publishes everything pending, batch by batch, until the outbox is drained. Returns how many
 * notifications were published.
 *
 * @category programs
 */
export const drain = Effect.fn("Relay.drain")(function*(
  batchSize = 500
): Effect.fn.Return<number, StorageUnavailable | PublishError, SyncStore | Publisher> {
  const store = yield* SyncStore
  const publisher = yield* Publisher
  let total = 0
  while (true) {
    const batch = yield* store.claimUnpublished(batchSize)
    if (batch.length === 0) return total
    yield* publisher.publish(batch)
    yield* store.markPublished(batch.map((n) => n.seq))
    total += batch.length
    if (batch.length < batchSize) return total
  }
})

/**
 * Runs the relay forever: drain, then wait for `wakeup` (e.g. a Postgres NOTIFY, or an in-process
 * signal after each ingest), retrying failures with backoff. Fork it in a scope.
 *
 * @category programs
 */
export const run = (options: {
  readonly wakeup: Effect.Effect<void>
  readonly batchSize?: number
}): Effect.Effect<never, never, SyncStore | Publisher> =>
  drain(options.batchSize).pipe(
    Effect.tapError((error) => Effect.logWarning(`relay: ${error.message}`)),
    Effect.retry(Schedule.min([Schedule.exponential("50 millis", 2), Schedule.spaced("5 seconds")])),
    // The retry above never gives up; this only tells the type checker so.
    Effect.catch(() => Effect.void),
    Effect.andThen(options.wakeup),
    Effect.forever
  )
