/**
 * The webhook as an `effect/http` route, for Effect servers (the reference server uses it).
 *
 * The route answers every method on its path (405 for all but POST), converts the request to a
 * Fetch `Request` with its socket address attached, and runs {@link WebhookHandler.handleWebhook}:
 * the same implementation as the Fetch handler. The {@link SyncStore} (and the core's
 * `PlannerSettings`, when provided) are taken from the context the layer is built in.
 *
 * @example
 * import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { HttpRouter } from "effect/http"
 * import { createServer } from "node:http"
 * import { MemoryStore } from "@clerk-sync/core"
 * import { WebhookRoute } from "@clerk-sync/adapter-http"
 * const Server = HttpRouter.serve(WebhookRoute.layerConfig()).pipe(
 *   Layer.provide(MemoryStore.layer),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 }))
 * )
 * NodeRuntime.runMain(Layer.launch(Server))
 *
 * @since 0.1.0
 */
import { Ingest, SyncStore } from "@clerk-sync/core"
import { type Config, Effect, Layer, Option } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { attachRemoteAddress } from "./internal/connection.ts"
import * as WebhookConfig from "./WebhookConfig.ts"
import * as WebhookHandler from "./WebhookHandler.ts"

/** @category models */
export interface Options extends WebhookHandler.Options {
  /** Where to mount the endpoint (default `/api/webhooks/clerk`). */
  readonly path?: HttpRouter.PathInput
}

const toWebRequest = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<Request> =>
  HttpServerRequest.toWeb(request).pipe(
    Effect.catch(() => HttpServerRequest.toWeb(request.modify({ url: "/" }))),
    Effect.orDie,
    Effect.map((web) => attachRemoteAddress(web, Option.getOrUndefined(request.remoteAddress)))
  )

/**
 * The route as a layer. Fails (at startup) with a {@link WebhookHandler.ConfigurationError} when
 * the options are invalid.
 *
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<never, WebhookHandler.ConfigurationError, HttpRouter.HttpRouter | SyncStore.SyncStore> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const router = yield* HttpRouter.HttpRouter
    const store = yield* SyncStore.SyncStore
    const settings = yield* Ingest.PlannerSettings
    const endpoint = yield* WebhookHandler.makeEffect(options)
    yield* router.add("*", options.path ?? WebhookHandler.defaultPath, (request) =>
      toWebRequest(request).pipe(
        Effect.flatMap((web) => WebhookHandler.handleWebhook(web, endpoint)),
        Effect.map(HttpServerResponse.fromWeb),
        Effect.provideService(SyncStore.SyncStore, store),
        Effect.provideService(Ingest.PlannerSettings, settings)
      ))
  }))

/**
 * The route with its secrets read from the environment ({@link WebhookConfig.secrets}:
 * `CLERK_WEBHOOK_SIGNING_SECRET` or `CLERK_WEBHOOK_SECRET`).
 *
 * @category layers
 */
export const layerConfig = (
  options: Omit<Options, "secret"> = {}
): Layer.Layer<
  never,
  Config.ConfigError | WebhookHandler.ConfigurationError,
  HttpRouter.HttpRouter | SyncStore.SyncStore
> =>
  Layer.unwrap(Effect.map(WebhookConfig.secrets, (secret) => layer({ ...options, secret })))
