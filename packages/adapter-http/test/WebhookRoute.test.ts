import { NodeHttpServer } from "@effect/platform-node"
import { SyncStore } from "@clerk-sync/core"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Redacted } from "effect"
import { HttpClient, HttpClientRequest, HttpRouter, HttpServer } from "effect/http"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { ClientAddress, signWebhook, WebhookConfig, WebhookRoute } from "../src/index.ts"
import { captureLog, inboxSize, makeFaultyStore, nextId, SECRET, SECRET_NEXT, userCreated } from "./utils/index.ts"
import { keepAliveClient, rawUpload, serverBytesRead } from "./utils/rawHttp.ts"

const post = (body: string, svixId = nextId(), secret = SECRET) =>
  new Request("http://localhost/api/webhooks/clerk", {
    method: "POST",
    headers: { "content-type": "application/json", ...signWebhook({ secret, svixId, body }) },
    body
  })

const env = (vars: Record<string, string>) => ConfigProvider.fromEnv({ env: vars })

describe("WebhookRoute", () => {
  it.live("serves the webhook in an effect/http router (one implementation: same answers)", () =>
    Effect.gen(function*() {
      const faulty = yield* makeFaultyStore
      const capture = captureLog()
      const app = WebhookRoute.layer({ secret: SECRET, log: capture.log }).pipe(
        Layer.provide(Layer.succeed(SyncStore.SyncStore, faulty.store)),
        Layer.provide(HttpServer.layerServices)
      )
      const { handler, dispose } = HttpRouter.toWebHandler(app, { disableLogger: true })
      yield* Effect.addFinalizer(() => Effect.promise(() => dispose()))
      const ok = yield* Effect.promise(() => handler(post(userCreated, "msg_route")))
      assert.strictEqual(ok.status, 200)
      assert.deepStrictEqual(yield* Effect.promise(() => ok.json()), { status: "processed", eventId: "msg_route" })
      const again = yield* Effect.promise(() => handler(post(userCreated, "msg_route")))
      assert.strictEqual((yield* Effect.promise(() => again.json())).status, "duplicate")
      const get = yield* Effect.promise(() => handler(new Request("http://localhost/api/webhooks/clerk")))
      assert.strictEqual(get.status, 405)
      assert.strictEqual(get.headers.get("allow"), "POST")
      const forged = yield* Effect.promise(() => handler(post(userCreated, nextId(), SECRET_NEXT)))
      assert.strictEqual(forged.status, 401)
      assert.strictEqual(yield* inboxSize(faulty.memory), 1)
      assert.deepStrictEqual(capture.lines.map((l) => l.outcome), ["processed", "duplicate", "method_not_allowed", "invalid_signature"])
      faulty.fault.mode = "fail"
      const down = yield* Effect.promise(() => handler(post(userCreated)))
      assert.strictEqual(down.status, 503)
      assert.strictEqual(down.headers.get("retry-after"), "5")
    }))

  it.live("on a real Node server the socket address reaches the allow-list", () =>
    Effect.gen(function*() {
      const faulty = yield* makeFaultyStore
      const server = HttpRouter.serve(
        Layer.mergeAll(
          WebhookRoute.layer({ secret: SECRET, log: false, allow: ["127.0.0.0/8", "::1"] }),
          WebhookRoute.layer({ secret: SECRET, log: false, allow: ["10.0.0.0/8"], path: "/private" })
        ),
        { disableListenLog: true, disableLogger: true }
      ).pipe(
        Layer.provide(Layer.succeed(SyncStore.SyncStore, faulty.store)),
        Layer.provideMerge(NodeHttpServer.layerTest)
      )
      yield* Effect.gen(function*() {
        const client = yield* HttpClient.HttpClient
        const send = (path: string) => {
          const svix = signWebhook({ secret: SECRET, svixId: nextId(), body: userCreated })
          return client.execute(
            HttpClientRequest.post(path).pipe(
              HttpClientRequest.setHeaders(svix),
              HttpClientRequest.bodyText(userCreated, "application/json")
            )
          )
        }
        assert.strictEqual((yield* send("/api/webhooks/clerk")).status, 200)
        assert.strictEqual((yield* send("/private")).status, 403)
      }).pipe(Effect.provide(server))
      assert.strictEqual(yield* inboxSize(faulty.memory), 1)
    }))

  it.live("on a real Node server the clientAddress and rate-limit key options see the request's headers and address", () =>
    Effect.gen(function*() {
      const faulty = yield* makeFaultyStore
      const keys: Array<string | undefined> = []
      const server = HttpRouter.serve(
        WebhookRoute.layer({
          secret: SECRET,
          log: false,
          // behind a proxy on loopback: the client is the forwarded address
          clientAddress: ClientAddress.forwardedFor({ trustedProxies: ["127.0.0.0/8", "::1"] }),
          allow: ["203.0.113.0/24"],
          rateLimit: {
            perSecond: 1,
            burst: 1,
            key: (address, request) => {
              keys.push(request.headers.get("x-tenant") ?? undefined)
              return `${address}|${request.headers.get("x-tenant")}`
            }
          }
        }),
        { disableListenLog: true, disableLogger: true }
      ).pipe(
        Layer.provide(Layer.succeed(SyncStore.SyncStore, faulty.store)),
        Layer.provideMerge(NodeHttpServer.layerTest)
      )
      const statuses = yield* Effect.gen(function*() {
        const client = yield* HttpClient.HttpClient
        const send = (forwardedFor: string, tenant: string) => {
          const svix = signWebhook({ secret: SECRET, svixId: nextId(), body: userCreated })
          return Effect.map(
            client.execute(
              HttpClientRequest.post("/api/webhooks/clerk").pipe(
                HttpClientRequest.setHeaders({ ...svix, "x-forwarded-for": forwardedFor, "x-tenant": tenant }),
                HttpClientRequest.bodyText(userCreated, "application/json")
              )
            ),
            (r) => r.status
          )
        }
        return [
          yield* send("203.0.113.7", "a"), // allowed, first of its bucket
          yield* send("203.0.113.7", "a"), // same bucket: limited
          yield* send("203.0.113.7", "b"), // another bucket
          yield* send("198.51.100.1", "a") // not in the allow-list
        ]
      }).pipe(Effect.provide(server))
      assert.deepStrictEqual(statuses, [200, 429, 200, 403])
      assert.deepStrictEqual(keys, ["a", "a", "b"])
      assert.strictEqual(yield* inboxSize(faulty.memory), 2)
    }))

  /** The route on Effect's Node server, as the reference server serves it, on a real port. */
  const onNodeServer = <A>(body: (server: { readonly port: number; readonly bytesRead: () => number }) => Promise<A>) =>
    Effect.gen(function*() {
      const faulty = yield* makeFaultyStore
      const node = createServer()
      const bytesRead = serverBytesRead(node)
      const server = HttpRouter.serve(WebhookRoute.layer({ secret: SECRET, log: false, maxBodyBytes: 16 * 1024 }), {
        disableListenLog: true,
        disableLogger: true
      }).pipe(
        Layer.provide(Layer.succeed(SyncStore.SyncStore, faulty.store)),
        Layer.provide(NodeHttpServer.layer(() => node, { port: 0, host: "127.0.0.1" }))
      )
      const result = yield* Effect.promise(() => body({ port: (node.address() as AddressInfo).port, bytesRead })).pipe(
        Effect.provide(server)
      )
      return { result, stored: yield* inboxSize(faulty.memory) }
    })

  const svixHeaders = (body: string) => ({ "content-type": "application/json", ...signWebhook({ secret: SECRET, svixId: nextId(), body }) })

  for (const framing of ["chunked", "content-length"] as const) {
    it.live(`on Effect's Node server, a raw keep-alive upload of 64 MB (${framing}) gets the whole 413 with Connection: close, no reset, and is not read`, () =>
      Effect.gen(function*() {
        const { result } = yield* onNodeServer(async (server) => {
          const answer = await rawUpload(server.port, { path: "/api/webhooks/clerk", headers: svixHeaders("{}"), total: 64 * 1024 * 1024, framing })
          return { answer, bytesRead: server.bytesRead() }
        })
        assert.strictEqual(result.answer.status, 413)
        assert.strictEqual(result.answer.headers.connection, "close")
        assert.deepInclude(JSON.parse(result.answer.body), { status: "rejected", error: "payload_too_large" })
        assert.deepStrictEqual(result.answer.errors, [], "no ECONNRESET / EPIPE: the answer came before any close")
        assert.isBelow(result.bytesRead, 8 * 1024 * 1024, "the server stopped reading long before the end of the upload")
      }))
  }

  it.live("on Effect's Node server, early refusals of a small body keep the connection for the next request", () =>
    Effect.gen(function*() {
      const { result, stored } = yield* onNodeServer(async (server) => {
        const client = keepAliveClient(server.port)
        try {
          const path = "/api/webhooks/clerk"
          const refusals = [
            await client.post(path, "x".repeat(2_000), { "content-type": "application/json" }),
            await client.post(path, "x".repeat(2_000), { "content-type": "application/json" }, "chunked"),
            await client.post(path, "x".repeat(40_000), svixHeaders("{}")),
            await client.post(path, "x".repeat(40_000), svixHeaders("{}"), "chunked")
          ]
          const next = await client.post(path, userCreated, svixHeaders(userCreated))
          return { refusals, next }
        } finally {
          client.close()
        }
      })
      assert.deepStrictEqual(result.refusals.map((r) => r.status), [400, 400, 413, 413])
      for (const refusal of result.refusals) {
        assert.notStrictEqual(refusal.connection, "close")
        assert.strictEqual(JSON.parse(refusal.body).status, "rejected")
        assert.deepStrictEqual(refusal.errors, [])
      }
      assert.strictEqual(result.next.status, 200)
      assert.isTrue(result.next.reusedSocket, "the refused requests' connection carried the next one")
      assert.deepStrictEqual(result.next.errors, [])
      assert.strictEqual(stored, 1)
    }))

  it.live("on Effect's Node server, an oversize upload on a keep-alive agent is answered, its connection closed, and the next request succeeds", () =>
    Effect.gen(function*() {
      const { result, stored } = yield* onNodeServer(async (server) => {
        const client = keepAliveClient(server.port)
        const big = new Uint8Array(8 * 1024 * 1024).fill(0x61)
        const rounds = []
        try {
          for (const framing of ["content-length", "chunked"] as const) {
            // Node's client may report EPIPE after this complete answer (see NodeHandler.test.ts)
            const refused = await client.post("/api/webhooks/clerk", big, svixHeaders("{}"), framing)
            const next = await client.post("/api/webhooks/clerk", userCreated, svixHeaders(userCreated))
            rounds.push({ refused, next })
          }
        } finally {
          client.close()
        }
        return rounds
      })
      for (const { next, refused } of result) {
        assert.strictEqual(refused.status, 413)
        assert.strictEqual(refused.connection, "close")
        assert.strictEqual(JSON.parse(refused.body).error, "payload_too_large")
        assert.strictEqual(next.status, 200)
        assert.deepStrictEqual(next.errors, [])
      }
      assert.strictEqual(stored, 2)
    }))

  it.live("layerConfig reads the secret from the environment", () =>
    Effect.gen(function*() {
      const faulty = yield* makeFaultyStore
      const app = WebhookRoute.layerConfig({ log: false }).pipe(
        Layer.provide(Layer.succeed(SyncStore.SyncStore, faulty.store)),
        Layer.provide(HttpServer.layerServices),
        Layer.provide(ConfigProvider.layer(env({ CLERK_WEBHOOK_SECRET: `${SECRET_NEXT} ${SECRET}` })))
      )
      const { handler, dispose } = HttpRouter.toWebHandler(app, { disableLogger: true })
      yield* Effect.addFinalizer(() => Effect.promise(() => dispose()))
      const response = yield* Effect.promise(() => handler(post(userCreated, nextId(), SECRET)))
      assert.strictEqual(response.status, 200)
    }))
})

describe("WebhookConfig.secrets", () => {
  const read = (vars: Record<string, string>) =>
    WebhookConfig.secrets.pipe(Effect.map((secrets) => secrets.map(Redacted.value)), Effect.provideService(ConfigProvider.ConfigProvider, env(vars)))

  it.effect("reads CLERK_WEBHOOK_SIGNING_SECRET or CLERK_WEBHOOK_SECRET, several per variable", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* read({ CLERK_WEBHOOK_SIGNING_SECRET: SECRET }), [SECRET])
      assert.deepStrictEqual(yield* read({ CLERK_WEBHOOK_SECRET: SECRET }), [SECRET])
      assert.deepStrictEqual(yield* read({ CLERK_WEBHOOK_SIGNING_SECRET: `${SECRET}, ${SECRET_NEXT}` }), [SECRET, SECRET_NEXT])
      assert.deepStrictEqual(yield* read({ CLERK_WEBHOOK_SIGNING_SECRET: SECRET, CLERK_WEBHOOK_SECRET: SECRET_NEXT }), [SECRET, SECRET_NEXT])
    }))

  it.effect("fails naming CLERK_WEBHOOK_SIGNING_SECRET when neither is set", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(read({}))
      assert.include(String(error), "CLERK_WEBHOOK_SIGNING_SECRET")
    }))

  it.effect("secrets stay redacted when printed", () =>
    Effect.gen(function*() {
      const secrets = yield* WebhookConfig.secrets.pipe(Effect.provideService(ConfigProvider.ConfigProvider, env({ CLERK_WEBHOOK_SIGNING_SECRET: SECRET })))
      assert.notInclude(String(secrets), SECRET)
      assert.notInclude(JSON.stringify(secrets), SECRET.slice(6))
    }))
})
