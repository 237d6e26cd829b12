/**
 * The ingest program: decode → plan → apply, against any {@link SyncStore}.
 *
 * The HTTP layer calls it after verifying the Svix signature; backfill and reprocess call it too.
 * Every authentic delivery ends in exactly one inbox row: `processed` (applied, or stale and so
 * planning nothing), `ignored` (an event type clerk-sync does not sync), or `failed` (authentic but
 * undecodable: a retry cannot fix it, a reprocess after an upgrade can).
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Result } from "effect"
import * as ClerkEvent from "./ClerkEvent.ts"
import * as Planner from "./Planner.ts"
import { type InboxRecord, type IngestOptions, type IngestRequest, type StorageUnavailable, SyncStore } from "./SyncStore.ts"

/** An authentic delivery: the `svix-id` and the raw body. @category models */
export interface Delivery {
  readonly svixId: string
  readonly body: string
}

/** @category models */
export type IngestStatus = "processed" | "duplicate" | "ignored" | "failed"

/** @category models */
export interface IngestResult {
  readonly status: IngestStatus
  readonly eventId: string
  /** The event type, when the body had one. */
  readonly type: string | null
  /** For `processed`: whether the event changed anything (false when stale). */
  readonly applied: boolean
  /** For `failed`: why (names paths, never values). */
  readonly error: string | null
}

/**
 * How the planner treats personal data and new ids. Provide it to change the defaults.
 *
 * @category services
 */
export const PlannerSettings = Context.Reference<Planner.Settings>("@clerk-sync/core/PlannerSettings", {
  defaultValue: () => Planner.defaultSettings
})

const typeOf = (parsed: unknown): string | null =>
  typeof parsed === "object" && parsed !== null && "type" in parsed && typeof parsed.type === "string" ? parsed.type : null

const parse = (body: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false } => {
  try {
    return { ok: true, value: JSON.parse(body) }
  } catch {
    return { ok: false }
  }
}

/**
 * Builds the store request for a delivery (pure, but for the clock reading done by the caller).
 *
 * @category constructors
 */
export const request = (delivery: Delivery, receivedAt: number, settings: Planner.Settings): IngestRequest => {
  const parsed = parse(delivery.body)
  const payload = parsed.ok ? parsed.value : delivery.body
  const type = parsed.ok ? typeOf(parsed.value) : null
  const inbox: InboxRecord = { svixId: delivery.svixId, type: type ?? "unknown", payload, receivedAt }
  const decoded = parsed.ok ? ClerkEvent.decode(parsed.value) : ClerkEvent.decodeJson(delivery.body)
  if (Result.isFailure(decoded)) return { _tag: "Fail", inbox, error: decoded.failure.message }
  const event = decoded.success
  if (!ClerkEvent.isHandled(event)) return { _tag: "Ignore", inbox }
  const input: Planner.Input = { event, eventId: delivery.svixId }
  return { _tag: "Apply", inbox, scope: Planner.scopeOf(input), plan: (snapshot) => Planner.plan(input, snapshot, settings) }
}

/**
 * Ingests one authentic delivery.
 *
 * @example
 * import { Effect } from "effect"
 * import { Ingest, MemoryStore } from "@clerk-sync/core"
 * const result = await Effect.runPromise(
 *   Ingest.ingest({ svixId: "msg_1", body }).pipe(Effect.provide(MemoryStore.layer))
 * ) // { status: "processed", eventId: "msg_1", type: "user.created", applied: true, error: null }
 *
 * @category programs
 */
export const ingest = Effect.fn("Ingest.ingest")(function*(
  delivery: Delivery,
  options?: IngestOptions
): Effect.fn.Return<IngestResult, StorageUnavailable, SyncStore> {
  const store = yield* SyncStore
  const settings = yield* PlannerSettings
  const receivedAt = yield* Clock.currentTimeMillis
  const req = request(delivery, receivedAt, settings)
  const outcome = yield* store.ingest(req, options)
  const type = req.inbox.type === "unknown" ? null : req.inbox.type
  switch (outcome._tag) {
    case "Processed":
      return { status: "processed", eventId: delivery.svixId, type, applied: outcome.applied, error: null }
    case "Duplicate":
      return { status: "duplicate", eventId: delivery.svixId, type, applied: false, error: null }
    case "Ignored":
      return { status: "ignored", eventId: delivery.svixId, type, applied: false, error: null }
    case "Failed":
      return { status: "failed", eventId: delivery.svixId, type, applied: false, error: outcome.error }
  }
})

/**
 * Re-runs inbox rows that failed (e.g. after an upgrade taught the decoder a new shape) or were left
 * `received`. Idempotent: a row that now processes is never applied twice.
 *
 * @category programs
 */
export const reprocess = Effect.fn("Ingest.reprocess")(function*(
  options: { readonly receivedBefore: number; readonly limit: number }
): Effect.fn.Return<ReadonlyArray<IngestResult>, StorageUnavailable, SyncStore> {
  const store = yield* SyncStore
  const rows = yield* store.listReprocessable(options.receivedBefore, options.limit)
  return yield* Effect.forEach(rows, (row) =>
    ingest(
      { svixId: row.svixId, body: typeof row.payload === "string" ? row.payload : JSON.stringify(row.payload) },
      { reprocess: true }
    ))
})
