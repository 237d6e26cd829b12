/**
 * The Fetch API surface: `(request: Request) => Promise<Response>`, for Next.js route handlers,
 * Hono, Bun, Deno, Cloudflare-style runtimes, and (through {@link toNodeHandler}) Node and Express.
 *
 * It gets its store one of two ways:
 * - `{ clerkSync }`: a `ClerkSync` instance from `@clerk-sync/core` (`ClerkSync.make(storeLayer)`),
 *   when the app already has one for the auth helpers; its planner settings apply, and the app
 *   disposes it.
 * - `{ store }`: a store layer (`MemoryStore.layer`, or the Postgres adapter's layer), with optional
 *   `planner` settings; the handler builds it on the first request and `handler.dispose()` releases it.
 *
 * @example
 * // app/api/webhooks/clerk/route.ts
 * import { MemoryStore } from "@clerk-sync/core"
 * import { createWebhookHandler } from "@clerk-sync/adapter-http"
 * export const POST = createWebhookHandler({ store: MemoryStore.layer }) // secret from CLERK_WEBHOOK_SIGNING_SECRET
 *
 * @since 0.1.0
 */
import { type ClerkSync, Ingest, type Planner, SyncStore } from "@clerk-sync/core"
import { Effect, type Layer, ManagedRuntime } from "effect"
import { attachIncomingRunner } from "./internal/incomingRunner.ts"
import type * as Signature from "./Signature.ts"
import * as WebhookConfig from "./WebhookConfig.ts"
import * as WebhookHandler from "./WebhookHandler.ts"

/** Where the handler's store comes from. @category models */
export type StoreSource =
  | {
    /** An existing Promise-surface instance (only its `ingest` is used). */
    readonly clerkSync: Pick<ClerkSync.ClerkSync<unknown>, "ingest">
    readonly store?: never
    readonly planner?: never
  }
  | {
    /** A store layer, built on the first request; release it with `handler.dispose()`. */
    readonly store: Layer.Layer<SyncStore.SyncStore, unknown>
    /** Planner settings (personal data on deletion, id generation). */
    readonly planner?: Partial<Planner.Settings>
    readonly clerkSync?: never
  }

/** @category models */
export type Options = Omit<WebhookHandler.Options, "secret"> & StoreSource & {
  /**
   * The signing secret(s). Default: read from the environment, `CLERK_WEBHOOK_SIGNING_SECRET`
   * and/or `CLERK_WEBHOOK_SECRET` (several per variable, comma- or space-separated). Creating the
   * handler throws when there is none: verification cannot be turned off.
   */
  readonly secret?: Signature.SecretInput | undefined
}

/** A Fetch API handler. Call it with a `Request`; it never rejects. @category models */
export interface FetchHandler {
  (request: Request): Promise<Response>
  /** The endpoint (its configuration and shared state). */
  readonly endpoint: WebhookHandler.Endpoint
  /** Releases the store layer given as `{ store }` (a no-op with `{ clerkSync }`). */
  readonly dispose: () => Promise<void>
}

/** The default log of the Promise surface: one JSON line on the console. @category logging */
export const consoleLog = (line: WebhookHandler.LogLine): void => {
  const text = JSON.stringify(line)
  if (line.status >= 500) console.error(text)
  else if (line.status >= 400) console.warn(text)
  else console.info(text)
}

/**
 * A rejected ingest: the store's own `StorageUnavailable`, or anything else the store layer threw
 * (e.g. it could not be built: no database). Either way the delivery was not recorded and a Svix
 * retry is the cure, so both answer 503.
 */
const asUnavailable = (error: unknown): SyncStore.StorageUnavailable =>
  error instanceof SyncStore.StorageUnavailable
    ? error
    : new SyncStore.StorageUnavailable({ operation: "ingest", cause: error })

/**
 * Makes a Fetch API webhook handler. Throws at once on a configuration error (no or malformed
 * secret, bad address range, non-positive limit).
 *
 * @example
 * import { ClerkSync, MemoryStore } from "@clerk-sync/core"
 * import { createWebhookHandler } from "@clerk-sync/adapter-http"
 * const clerkSync = ClerkSync.make(MemoryStore.layer)
 * const handler = createWebhookHandler({ clerkSync, secret: process.env.CLERK_WEBHOOK_SIGNING_SECRET })
 * const response = await handler(request) // 200 { status: "processed", eventId: "msg_…" }
 *
 * @category constructors
 */
export const createWebhookHandler = (options: Options): FetchHandler => {
  const endpoint = WebhookHandler.make({
    ...options,
    secret: options.secret ?? WebhookConfig.secretsFromEnv(),
    log: options.log ?? consoleLog
  })
  let run: (delivery: Ingest.Delivery, signal: AbortSignal) => Promise<Ingest.IngestResult>
  let dispose: () => Promise<void>
  if (options.clerkSync !== undefined) {
    const clerkSync = options.clerkSync
    run = (delivery) => clerkSync.ingest(delivery)
    dispose = () => Promise.resolve()
  } else {
    const store = options.store
    const planner = options.planner
    let runtime: ManagedRuntime.ManagedRuntime<SyncStore.SyncStore, unknown> | undefined
    run = (delivery, signal) => {
      runtime ??= ManagedRuntime.make(store)
      const program = Ingest.ingest(delivery)
      return runtime.runPromise(
        planner === undefined ? program : Effect.updateService(program, Ingest.PlannerSettings, (s) => ({ ...s, ...planner })),
        { signal }
      )
    }
    dispose = () => runtime?.dispose() ?? Promise.resolve()
  }
  const ingest: WebhookHandler.Ingester<never> = (delivery) =>
    Effect.tryPromise({ try: (signal) => run(delivery, signal), catch: asUnavailable })
  const handler = (request: Request): Promise<Response> =>
    Effect.runPromise(WebhookHandler.handleWith(request, endpoint, ingest))
  // `toNodeHandler` runs this on Node's request directly, skipping the Fetch round trip
  attachIncomingRunner(handler, (incoming) => Effect.runPromise(WebhookHandler.handleIncoming(incoming, endpoint, ingest)))
  return Object.assign(handler, { endpoint, dispose })
}
