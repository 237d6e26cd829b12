/**
 * Per-event revalidation: on `user.updated` / `organization.updated`, ingest the object as the
 * Backend API returns it now instead of trusting the payload, for apps that want the freshest state
 * on every change (a payload can be minutes old after Svix retries).
 *
 * The fetched object is ingested under the delivery's own `svix-id` (so the inbox still dedupes
 * Svix's retries) in the delivery's own envelope, and is versioned by its `updated_at` like any
 * event: a fetched state is never older than the payload's (when the API answers with an older
 * `updated_at`, e.g. a lagging replica, the payload is kept), and a webhook for an even newer state
 * still wins when it arrives. On 404 (the object was deleted meanwhile) the payload is ingested:
 * the `*.deleted` event that follows tombstones it.
 *
 * Plug it into the webhook handler where `Ingest.ingest` would go:
 *
 * @example
 * import { WebhookHandler } from "@clerk-sync/adapter-http"
 * import { Revalidate } from "@clerk-sync/backfill"
 * const respond = WebhookHandler.handleWith(request, endpoint, Revalidate.ingester())
 * // requires SyncStore and ClerkApi (ClerkApi.layerConfig reads CLERK_SECRET_KEY)
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import { Ingest, SyncStore } from "@clerk-sync/core"
import { ClerkApi } from "./ClerkApi.ts"

/** @category models */
export interface Options {
  /** The event types to revalidate (default `user.updated` and `organization.updated`). */
  readonly types?: ReadonlyArray<string>
  /**
   * When the API cannot be reached: ingest the payload as is (`"usePayload"`, the default: the
   * version rules keep it safe), or fail with `StorageUnavailable` (`"fail"`: the HTTP layer
   * answers 503 and Svix retries later).
   */
  readonly onApiError?: "usePayload" | "fail"
}

/** The types revalidated by default. @category constants */
export const DEFAULT_TYPES: ReadonlyArray<string> = ["user.updated", "organization.updated"]

const parse = (body: string): unknown => {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const millis = (u: unknown): number | null =>
  typeof u === "number" && Number.isFinite(u) ? (u < 1e12 ? u * 1000 : u) : null

/**
 * Ingests a delivery, revalidating the types in `options.types` against the Backend API.
 *
 * @category programs
 */
export const ingest = Effect.fn("Revalidate.ingest")(function*(
  delivery: Ingest.Delivery,
  options: Options = {}
): Effect.fn.Return<Ingest.IngestResult, SyncStore.StorageUnavailable, SyncStore.SyncStore | ClerkApi> {
  const envelope = parse(delivery.body)
  const types = options.types ?? DEFAULT_TYPES
  if (!isRecord(envelope) || typeof envelope.type !== "string" || !types.includes(envelope.type)) {
    return yield* Ingest.ingest(delivery)
  }
  const data = envelope.data
  const entity = envelope.type.startsWith("organization.") ? "organization" : envelope.type.startsWith("user.") ? "user" : null
  if (entity === null || !isRecord(data) || typeof data.id !== "string") return yield* Ingest.ingest(delivery)
  const api = yield* ClerkApi
  const fetched = yield* Effect.result(api.get(entity, data.id))
  if (fetched._tag === "Failure") {
    if (options.onApiError === "fail") {
      return yield* new SyncStore.StorageUnavailable({ operation: "revalidate", cause: fetched.failure })
    }
    return yield* Ingest.ingest(delivery)
  }
  if (Option.isNone(fetched.success)) return yield* Ingest.ingest(delivery)
  const object = fetched.success.value
  const payloadUpdatedAt = millis(data.updated_at)
  if (object.updatedAt === null || (payloadUpdatedAt !== null && object.updatedAt < payloadUpdatedAt)) {
    return yield* Ingest.ingest(delivery)
  }
  return yield* Ingest.ingest({ svixId: delivery.svixId, body: JSON.stringify({ ...envelope, data: object.json }) })
})

/**
 * An ingest function with the shape the webhook handler takes (`Ingester<R>` of adapter-http).
 *
 * @category constructors
 */
export const ingester = (options: Options = {}) => (delivery: Ingest.Delivery) => ingest(delivery, options)
