/**
 * The webhook as an `effect/http` route, for Effect servers (the reference server uses it).
 *
 * The route answers every method on its path (405 for all but POST), converts the request to a
 * Fetch `Request` with its socket address attached, and runs {@link WebhookHandler.handleWebhook}:
 * the same implementation as the Fetch handler. The {@link SyncStore} (and the core's
 * `PlannerSettings`, when provided) are taken from the context the layer is built in.
 *
 * A body the handler did not read to its end (an early rejection, or past `maxBodyBytes`) is
 * settled as the Node adapter does: a short rest is discarded before answering and the connection
 * kept; a longer one is left unread and the answer says `Connection: close`, after which
 * `@effect/platform-node` half-closes the socket and destroys it after a grace period, without
 * reading the rest.
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
import { defaultDiscardLimitBytes, skipsDiscard } from "./internal/unreadBody.ts"
import * as WebhookConfig from "./WebhookConfig.ts"
import * as WebhookHandler from "./WebhookHandler.ts"

/** @category models */
export interface Options extends WebhookHandler.Options {
  /** Where to mount the endpoint (default `/api/webhooks/clerk`). */
  readonly path?: HttpRouter.PathInput
}

interface Incoming {
  readonly request: Request
  /**
   * Discards what the handler left of the body, up to `limit` bytes. True when the body ended, so
   * the connection can carry the next request.
   */
  readonly settle: (limit: number) => Promise<boolean>
}

/**
 * Puts a stream between the handler and the server's body that remembers whether the body was
 * read to its end, and keeps it readable after the handler cancels its reader (past the limit), so
 * the rest can still be settled here.
 */
const tracked = (web: Request, remoteAddress: string | undefined): Incoming => {
  const source = web.body
  if (source === null) return { request: attachRemoteAddress(web, remoteAddress), settle: () => Promise.resolve(true) }
  const reader = source.getReader()
  let bytesRead = 0
  let state: "open" | "ended" | "failed" = "open"
  const read = async (): Promise<ReadableStreamReadResult<Uint8Array> | undefined> => {
    try {
      const next = await reader.read()
      if (next.done) state = "ended"
      else bytesRead += next.value.byteLength
      return next
    } catch {
      state = "failed"
      return undefined
    }
  }
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await read()
      if (next === undefined) controller.error(new Error("request body unreadable"))
      else if (next.done) controller.close()
      else controller.enqueue(next.value)
    }
  }, { highWaterMark: 0 }) // pulled only when the handler reads: a refused request reads nothing
  const init: RequestInit & { duplex: "half" } = { method: web.method, headers: web.headers, body, duplex: "half" }
  const request = new Request(web.url, init)
  const settle = async (limit: number): Promise<boolean> => {
    if (state === "open" && !skipsDiscard(web.headers, bytesRead, limit)) {
      const start = bytesRead
      while (state === "open" && bytesRead - start <= limit) await read()
    }
    if (state === "open") void reader.cancel().catch(() => undefined) // leave the rest unread
    return state === "ended"
  }
  return { request: attachRemoteAddress(request, remoteAddress), settle }
}

const toIncoming = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<Incoming> =>
  HttpServerRequest.toWeb(request).pipe(
    Effect.catch(() => HttpServerRequest.toWeb(request.modify({ url: "/" }))),
    Effect.orDie,
    Effect.map((web) => tracked(web, Option.getOrUndefined(request.remoteAddress)))
  )

/**
 * The handler's answer with its body in bytes: a fixed `Content-Length`, which
 * `HttpServerResponse.fromWeb`'s stream body would not have, and Node's reason phrase.
 */
const toResponse = (web: Response, keepsConnection: boolean): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.map(Effect.promise(() => web.arrayBuffer()), (bytes) => {
    const headers: Record<string, string> = {}
    web.headers.forEach((value, key) => {
      headers[key] = value
    })
    if (!keepsConnection) headers["connection"] = "close" // dropped by the server on HTTP/2
    return HttpServerResponse.uint8Array(new Uint8Array(bytes), { status: web.status, headers })
  })

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
      toIncoming(request).pipe(
        Effect.flatMap((incoming) =>
          WebhookHandler.handleWebhook(incoming.request, endpoint).pipe(
            Effect.flatMap((response) =>
              Effect.flatMap(
                Effect.promise(() => incoming.settle(defaultDiscardLimitBytes)),
                (ended) => toResponse(response, ended)
              )
            )
          )
        ),
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
