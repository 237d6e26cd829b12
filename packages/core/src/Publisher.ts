/**
 * The publisher port: hands stored notifications to clients (Socket.IO rooms, Supabase Broadcast
 * topics, …). The outbox relay calls it in `seq` order and marks what it accepted as published;
 * delivery is at-least-once and clients dedupe by `seq`.
 *
 * @since 0.1.0
 */
import { Context, Data, Effect, Layer } from "effect"
import type { Stored } from "./Notification.ts"

/** The publisher could not hand the notifications over; the relay retries. @category errors */
export class PublishError extends Data.TaggedError("PublishError")<{
  readonly publisher: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `publisher ${this.publisher} failed`
  }
}

/** @category models */
export interface PublisherShape {
  readonly name: string
  /** Publishes a batch in the given (`seq`) order. */
  readonly publish: (notifications: ReadonlyArray<Stored>) => Effect.Effect<void, PublishError>
}

/** @category services */
export class Publisher extends Context.Service<Publisher, PublisherShape>()("@clerk-sync/core/Publisher") {
  /** A publisher that drops everything (no realtime configured). */
  static readonly layerNone = Layer.succeed(Publisher, Publisher.of({ name: "none", publish: () => Effect.void }))
}

/**
 * Several publishers as one: each gets every batch, in order; the first failure fails the batch.
 *
 * @category constructors
 */
export const combine = (publishers: ReadonlyArray<PublisherShape>): PublisherShape => ({
  name: publishers.map((p) => p.name).join("+") || "none",
  publish: (notifications) => Effect.forEach(publishers, (p) => p.publish(notifications), { discard: true })
})
