/**
 * The webhook as an `effect/http` route, for Effect servers (the reference server uses it).
 *
 * The route answers every method on its path (405 for all but POST) and runs
 * {@link WebhookHandler.handleIncoming} on the server's request as is: the same implementation as
 * the Fetch handler, without a Fetch `Request` in between. The {@link SyncStore} (and the core's
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
import { type Config, Effect, Layer, Option, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { attachRemoteAddress } from "./internal/connection.ts"
import { concatBytes, decodeUtf8 } from "./internal/utf8.ts"
import { defaultDiscardLimitBytes, skipsDiscard } from "./internal/unreadBody.ts"
import * as WebhookConfig from "./WebhookConfig.ts"
import * as WebhookHandler from "./WebhookHandler.ts"

/** @category models */
export interface Options extends WebhookHandler.Options {
  /** Where to mount the endpoint (default `/api/webhooks/clerk`). */
  readonly path?: HttpRouter.PathInput
}

interface Tracked {
  readonly incoming: WebhookHandler.Incoming
  /**
   * Discards what the handler left of the body, up to `limit` bytes. True when the body ended, so
   * the connection can carry the next request.
   */
  readonly settle: (limit: number) => Effect.Effect<boolean>
}

const unreadable: WebhookHandler.BodyRead = { _tag: "Unreadable" }
const tooLarge: WebhookHandler.BodyRead = { _tag: "TooLarge" }

/** The request's headers as a Fetch `Headers` (values the Fetch API refuses are dropped). */
const fetchHeaders = (headers: Readonly<Record<string, string>>): Headers => {
  const out = new Headers()
  for (const name in headers) {
    try {
      out.append(name, headers[name]!)
    } catch {
      // svix headers are plain ASCII; anything else is not ours to read
    }
  }
  return out
}

/**
 * The server's request as the handler reads it, straight from `effect/http` (no Fetch `Request`
 * and web streams in between: converting cost more CPU than verifying the signature). The body is
 * read from the request's stream, which on Node leaves whatever was not pulled in the socket;
 * what was read, and whether the body ended, is remembered so the rest can be settled after.
 */
const tracked = (request: HttpServerRequest.HttpServerRequest): Tracked => {
  const headers = request.headers
  const header = (name: string): string | undefined => headers[name]
  const remoteAddress = Option.getOrUndefined(request.remoteAddress)
  let bytesRead = 0
  let state: "open" | "ended" | "failed" = "open"
  /** Pulls chunks while `more` says so; true when the body ended (rather than `more` stopping). */
  const pull = (more: (chunk: Uint8Array) => boolean): Effect.Effect<boolean> =>
    Effect.suspend(() => {
      let stopped = false
      return Stream.runForEachWhile(request.stream, (chunk) =>
        Effect.sync(() => {
          bytesRead += chunk.byteLength
          stopped = !more(chunk)
          return !stopped
        })).pipe(
          Effect.map(() => {
            if (!stopped) state = "ended"
            return !stopped
          }),
          Effect.catch(() =>
            Effect.sync(() => {
              state = "failed"
              return false
            })
          )
        )
    })
  const readBody = (limit: number): Effect.Effect<WebhookHandler.BodyRead> =>
    Effect.suspend(() => {
      if (state !== "open") return Effect.succeed(unreadable)
      const chunks: Array<Uint8Array> = []
      let size = 0
      return Effect.map(
        pull((chunk) => {
          size += chunk.byteLength
          chunks.push(chunk)
          return size <= limit
        }),
        (ended): WebhookHandler.BodyRead => {
          if (!ended) return state === "failed" ? unreadable : tooLarge
          const text = decodeUtf8(concatBytes(chunks, size))
          return text === undefined ? unreadable : { _tag: "Read", text }
        }
      )
    })
  const settle = (limit: number): Effect.Effect<boolean> =>
    Effect.suspend(() => {
      if (state !== "open") return Effect.succeed(state === "ended")
      if (skipsDiscard({ get: header }, bytesRead, limit)) return Effect.succeed(false)
      const start = bytesRead
      return pull(() => bytesRead - start <= limit)
    })
  const toRequest = (): Request => {
    let url: URL
    try {
      url = new URL(request.url, "http://localhost")
    } catch {
      url = new URL("http://localhost/")
    }
    return attachRemoteAddress(new Request(url, { method: request.method, headers: fetchHeaders(headers) }), remoteAddress)
  }
  return {
    incoming: { method: request.method, header, bodyConsumed: false, remoteAddress, readBody, toRequest },
    settle
  }
}

/** The handler's answer, with `Connection: close` when the connection cannot carry another request. */
const toResponse = (answer: WebhookHandler.Answer, keepsConnection: boolean): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(answer.body, {
    status: answer.status,
    // dropped by the server on HTTP/2
    headers: keepsConnection ? answer.headers : { ...answer.headers, connection: "close" }
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
    yield* router.add("*", options.path ?? WebhookHandler.defaultPath, (request) => {
      const { incoming, settle } = tracked(request)
      return WebhookHandler.handleIncoming(incoming, endpoint, Ingest.ingest).pipe(
        Effect.flatMap((answer) => Effect.map(settle(defaultDiscardLimitBytes), (ended) => toResponse(answer, ended))),
        Effect.provideService(SyncStore.SyncStore, store),
        Effect.provideService(Ingest.PlannerSettings, settings)
      )
    })
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
