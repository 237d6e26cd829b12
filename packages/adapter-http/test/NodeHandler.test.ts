import { SyncStore } from "@clerk-sync/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import express from "express"
import { createServer, type IncomingMessage, request as httpRequest, type ServerResponse } from "node:http"
import { type AddressInfo, connect } from "node:net"
import { afterEach } from "vitest"
import { ClientAddress, createWebhookHandler, signWebhook, toNodeHandler, type WebhookFetchHandler, type WebhookHandler } from "../src/index.ts"
import { incomingRunnerOf } from "../src/internal/incomingRunner.ts"
import { captureLog, inboxSize, makeFaultyStore, nextId, SECRET, userCreated } from "./utils/index.ts"
import { keepAliveClient, rawUpload, serverBytesRead } from "./utils/rawHttp.ts"

const PATH = "/api/webhooks/clerk"
const closers: Array<() => Promise<void>> = []

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

const listen = async (listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> =>
  (await serve(listener)).url

const serve = async (listener: (req: IncomingMessage, res: ServerResponse) => void) => {
  const server = createServer(listener)
  const bytesRead = serverBytesRead(server)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  closers.push(() =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  )
  const port = (server.address() as AddressInfo).port
  return { url: `http://127.0.0.1:${port}`, port, bytesRead }
}

const setup = async (options: Partial<WebhookHandler.Options> = {}) => {
  const faulty = await Effect.runPromise(makeFaultyStore)
  const capture = captureLog()
  const handler = createWebhookHandler({
    store: Layer.succeed(SyncStore.SyncStore, faulty.store),
    secret: SECRET,
    log: capture.log,
    ...options
  })
  closers.push(() => handler.dispose())
  return { handler, lines: capture.lines, stored: () => Effect.runPromise(inboxSize(faulty.memory)), memory: faulty.memory }
}

interface Reply {
  readonly status: number
  readonly headers: IncomingMessage["headers"]
  readonly body: string
}

/** Sends a request chunk by chunk (chunked transfer encoding unless a content-length is given). */
const send = (
  url: string,
  options: { readonly method?: string; readonly headers?: Record<string, string>; readonly chunks?: ReadonlyArray<Uint8Array | string>; readonly delayMs?: number }
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? "POST", headers: options.headers ?? {} }, (res) => {
      const parts: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => parts.push(chunk))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString("utf8") }))
      res.on("error", reject)
    })
    req.on("error", () => undefined) // the server may close while we are still uploading (413)
    const chunks = [...(options.chunks ?? [])]
    const writeNext = () => {
      if (req.destroyed) return
      const chunk = chunks.shift()
      if (chunk === undefined) return void req.end()
      req.write(chunk, () => (options.delayMs ? setTimeout(writeNext, options.delayMs) : setImmediate(writeNext)))
    }
    writeNext()
  })

const signedHeaders = (body: string, svixId = nextId()): Record<string, string> => ({
  "content-type": "application/json",
  ...signWebhook({ secret: SECRET, svixId, body })
})

const split = (text: string, size: number): Array<Uint8Array> => {
  const bytes = new TextEncoder().encode(text)
  const chunks: Array<Uint8Array> = []
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size))
  return chunks
}

/**
 * The two ways through the adapter: clerk-sync's handler as is runs on Node's request directly;
 * any other Fetch handler (here one wrapping the same handler) goes through a Fetch `Request`.
 * Every wire-level test runs on both.
 */
const paths = {
  fast: (handler: WebhookFetchHandler) => toNodeHandler(handler),
  generic: (handler: WebhookFetchHandler) => toNodeHandler((request: Request) => handler(request))
} as const

for (const [path, nodeHandler] of Object.entries(paths)) {
  describe(`toNodeHandler on node:http (${path} path)`, () => {
    it("processes a signed delivery sent with fetch", async () => {
      const t = await setup()
      const url = await listen(nodeHandler(t.handler))
      const response = await fetch(url + PATH, { method: "POST", headers: signedHeaders(userCreated, "msg_node"), body: userCreated })
      assert.strictEqual(response.status, 200)
      assert.deepStrictEqual(await response.json(), { status: "processed", eventId: "msg_node" })
      assert.strictEqual((await Effect.runPromise(t.memory.counts)).users, 1)
    })

    it("reads a chunked body sent in small, slow pieces, multi-byte characters split across chunks", async () => {
      const t = await setup()
      const url = await listen(nodeHandler(t.handler))
      const body = userCreated.replace("\"John\"", "\"Jöhn 😀 Ærø\"")
      const reply = await send(url + PATH, { headers: signedHeaders(body), chunks: split(body, 7).slice(0, 40).concat(split(body, 7).slice(40)), delayMs: 0 })
      assert.strictEqual(reply.status, 200, reply.body)
      const slow = await send(url + PATH, { headers: signedHeaders(body), chunks: split(body, 301), delayMs: 5 })
      assert.strictEqual(slow.status, 200, slow.body)
      assert.strictEqual(await t.stored(), 2)
    })

    it("answers 413 to an oversize chunked upload without reading all of it, and keeps serving", async () => {
      const t = await setup({ maxBodyBytes: 16 * 1024 })
      let received = 0
      const handler = nodeHandler(t.handler)
      const url = await listen((req, res) => {
        req.on("data", (chunk: Buffer) => (received += chunk.byteLength))
        handler(req, res)
      })
      const megabytes = 64
      const chunk = new Uint8Array(64 * 1024).fill(0x61)
      const reply = await send(url + PATH, { headers: signedHeaders("{}"), chunks: Array.from({ length: megabytes * 16 }, () => chunk) })
      assert.strictEqual(reply.status, 413)
      assert.deepStrictEqual(JSON.parse(reply.body).error, "payload_too_large")
      assert.isBelow(received, 8 * 1024 * 1024, "the server stopped reading long before the end of the upload")
      assert.strictEqual(await t.stored(), 0)
      const next = await fetch(url + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })
      assert.strictEqual(next.status, 200)
    })

    for (const framing of ["chunked", "content-length"] as const) {
      it(`a raw keep-alive upload of 64 MB (${framing}) gets the whole 413 with Connection: close, no reset, and is not read`, async () => {
        const t = await setup({ maxBodyBytes: 16 * 1024 })
        const server = await serve(nodeHandler(t.handler))
        const answer = await rawUpload(server.port, { path: PATH, headers: signedHeaders("{}"), total: 64 * 1024 * 1024, framing })
        assert.strictEqual(answer.status, 413)
        assert.strictEqual(answer.headers.connection, "close")
        assert.deepInclude(JSON.parse(answer.body), { status: "rejected", error: "payload_too_large" })
        assert.deepStrictEqual(answer.errors, [], "no ECONNRESET / EPIPE: the answer came before any close")
        assert.isBelow(server.bytesRead(), 8 * 1024 * 1024, "the server stopped reading long before the end of the upload")
        assert.strictEqual(await t.stored(), 0)
      })
    }

    it("early refusals of a small body drain it and keep the connection: the next request goes out on it", async () => {
      const t = await setup({ maxBodyBytes: 16 * 1024 })
      const server = await serve(nodeHandler(t.handler))
      const client = keepAliveClient(server.port)
      closers.push(async () => client.close())
      const refusals = [
        await client.post(PATH, "x".repeat(2_000), { "content-type": "application/json" }), // 400, body never read
        await client.post(PATH, "x".repeat(2_000), { "content-type": "application/json" }, "chunked"), // 400, no length
        await client.post(PATH, "x".repeat(40_000), signedHeaders("{}")), // 413 from Content-Length
        await client.post(PATH, "x".repeat(40_000), signedHeaders("{}"), "chunked") // 413 while streaming
      ]
      assert.deepStrictEqual(refusals.map((r) => r.status), [400, 400, 413, 413])
      for (const refusal of refusals) {
        assert.notStrictEqual(refusal.connection, "close")
        assert.strictEqual(JSON.parse(refusal.body).status, "rejected")
        assert.deepStrictEqual(refusal.errors, [])
      }
      const next = await client.post(PATH, userCreated, signedHeaders(userCreated))
      assert.strictEqual(next.status, 200)
      assert.isTrue(next.reusedSocket, "the refused requests' connection carried the next one")
      assert.deepStrictEqual(next.errors, [])
    })

    it("an oversize upload on a keep-alive agent is answered, its connection closed, and the next request succeeds", async () => {
      const t = await setup({ maxBodyBytes: 16 * 1024 })
      const server = await serve(nodeHandler(t.handler))
      const client = keepAliveClient(server.port)
      closers.push(async () => client.close())
      const big = new Uint8Array(8 * 1024 * 1024).fill(0x61)
      for (const framing of ["content-length", "chunked"] as const) {
        // Node's client reports EPIPE after this complete answer: it closes only once its whole
        // upload is written, which a server that stops reading never lets happen
        const refused = await client.post(PATH, big, signedHeaders("{}"), framing)
        assert.strictEqual(refused.status, 413)
        assert.strictEqual(refused.connection, "close")
        assert.strictEqual(JSON.parse(refused.body).error, "payload_too_large")
        const next = await client.post(PATH, userCreated, signedHeaders(userCreated))
        assert.strictEqual(next.status, 200)
        assert.deepStrictEqual(next.errors, [])
      }
      assert.strictEqual(await t.stored(), 2)
    })

    it("answers 413 from Content-Length before the body arrives", async () => {
      const t = await setup({ maxBodyBytes: 16 * 1024 })
      const url = await listen(nodeHandler(t.handler))
      const reply = await send(url + PATH, {
        headers: { ...signedHeaders("{}"), "content-length": String(10 * 1024 * 1024) },
        chunks: [new Uint8Array(1024)]
      })
      assert.strictEqual(reply.status, 413)
      assert.strictEqual(await t.stored(), 0)
    })

    it("405 with Allow: POST for other methods", async () => {
      const t = await setup()
      const url = await listen(nodeHandler(t.handler))
      const response = await fetch(url + PATH)
      assert.strictEqual(response.status, 405)
      assert.strictEqual(response.headers.get("allow"), "POST")
    })

    it("the socket address feeds the allow-list (127.0.0.1 here)", async () => {
      const allowed = await setup({ allow: ["127.0.0.0/8", "::1"], logClientAddress: true })
      const url = await listen(nodeHandler(allowed.handler))
      assert.strictEqual((await fetch(url + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })).status, 200)
      assert.match(allowed.lines[0]?.clientAddress ?? "", /127\.0\.0\.1/)
      const denied = await setup({ allow: ["10.0.0.0/8"] })
      const url2 = await listen(nodeHandler(denied.handler))
      assert.strictEqual((await fetch(url2 + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })).status, 403)
      assert.strictEqual(await denied.stored(), 0)
    })

    it("reads a rotation's signatures sent as separate svix-signature lines, joined as Fetch joins them", async () => {
      const t = await setup()
      const url = await listen(nodeHandler(t.handler))
      const { "svix-signature": valid, ...headers } = signedHeaders(userCreated)
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(url + PATH, { method: "POST", headers }, (res) => {
          res.resume()
          res.on("end", () => resolve(res.statusCode ?? 0))
        })
        req.on("error", reject)
        // the valid one second: reading only the first line would refuse the delivery
        req.setHeader("svix-signature", ["v1,c2lnbmVkIHdpdGggdGhlIG9sZCBzZWNyZXQhIQ==", valid!])
        req.end(userCreated)
      })
      assert.strictEqual(status, 200)
      assert.strictEqual(await t.stored(), 1)
    })

    it("the clientAddress and rate-limit key callbacks get a Fetch Request with the headers, URL and socket address", async () => {
      const seen: Array<{ address: string | undefined; forwarded: string | null; peer: string | undefined; url: string; method: string }> = []
      const t = await setup({
        allow: ["203.0.113.0/24"],
        clientAddress: ClientAddress.forwardedFor({ trustedProxies: ["127.0.0.0/8"] }),
        rateLimit: {
          perSecond: 1_000,
          burst: 1_000,
          key: (address, request) => {
            const { method, url } = request
            seen.push({ address, forwarded: request.headers.get("x-forwarded-for"), peer: ClientAddress.remoteAddress(request), url, method })
            return address ?? "unknown"
          }
        }
      })
      const url = await listen(nodeHandler(t.handler))
      const proxied = await fetch(url + PATH + "?from=lb", {
        method: "POST",
        headers: { ...signedHeaders(userCreated), "x-forwarded-for": "198.51.100.1, 203.0.113.9" },
        body: userCreated
      })
      assert.strictEqual(proxied.status, 200)
      const direct = await fetch(url + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })
      assert.strictEqual(direct.status, 403, "the peer itself (127.0.0.1) is not allowed")
      assert.deepStrictEqual(seen, [{
        address: "203.0.113.9",
        forwarded: "198.51.100.1, 203.0.113.9",
        peer: "127.0.0.1",
        url: "http://localhost" + PATH + "?from=lb",
        method: "POST"
      }])
      assert.strictEqual(await t.stored(), 1)
    })

    it("answers 400 unreadable_body to a body that is not UTF-8, and keeps the connection", async () => {
      const t = await setup()
      const server = await serve(nodeHandler(t.handler))
      const client = keepAliveClient(server.port)
      closers.push(async () => client.close())
      const refused = await client.post(PATH, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), signedHeaders("{}"))
      assert.strictEqual(refused.status, 400)
      assert.strictEqual(JSON.parse(refused.body).error, "unreadable_body")
      const next = await client.post(PATH, userCreated, signedHeaders(userCreated))
      assert.strictEqual(next.status, 200)
      assert.isTrue(next.reusedSocket)
    })

    it("an upload aborted mid-body is answered as unreadable_body (logged), stores nothing, and the server keeps serving", async () => {
      const t = await setup()
      let arrived!: () => void
      const requestArrived = new Promise<void>((resolve) => (arrived = resolve))
      const handler = nodeHandler(t.handler)
      const server = await serve((req, res) => {
        handler(req, res)
        arrived()
      })
      const socket = connect(server.port, "127.0.0.1")
      socket.on("error", () => undefined)
      const headers = Object.entries(signedHeaders(userCreated)).map(([name, value]) => `${name}: ${value}\r\n`).join("")
      socket.write(`POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Content-Length: ${userCreated.length}\r\n\r\n` + userCreated.slice(0, 100))
      await requestArrived
      socket.destroy()
      while (t.lines.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
      assert.strictEqual(t.lines[0]?.outcome, "unreadable_body")
      assert.strictEqual(await t.stored(), 0)
      const next = await fetch(server.url + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })
      assert.strictEqual(next.status, 200)
    })
  })

  describe(`toNodeHandler under Express 5 (${path} path)`, () => {
    it("works mounted before express.json(), which still serves the other routes", async () => {
      const t = await setup()
      const app = express()
      app.all(PATH, nodeHandler(t.handler))
      app.use(express.json())
      app.post("/echo", (req, res) => void res.json({ echoed: req.body }))
      const url = await listen(app)
      const response = await fetch(url + PATH, { method: "POST", headers: signedHeaders(userCreated, "msg_express"), body: userCreated })
      assert.strictEqual(response.status, 200)
      assert.deepStrictEqual(await response.json(), { status: "processed", eventId: "msg_express" })
      const chunked = await send(url + PATH, { headers: signedHeaders(userCreated), chunks: split(userCreated, 100) })
      assert.strictEqual(chunked.status, 200)
      const echo = await fetch(url + "/echo", { method: "POST", headers: { "content-type": "application/json" }, body: "{\"a\":1}" })
      assert.deepStrictEqual(await echo.json(), { echoed: { a: 1 } })
    })

    it("refuses loudly (500 body_already_parsed, logged) when express.json() consumed the body first", async () => {
      const t = await setup()
      const app = express()
      app.use(express.json())
      app.post(PATH, nodeHandler(t.handler))
      const url = await listen(app)
      const response = await fetch(url + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })
      assert.strictEqual(response.status, 500)
      assert.strictEqual((await response.json()).error, "body_already_parsed")
      assert.strictEqual(t.lines[0]?.outcome, "body_already_parsed")
      assert.strictEqual(await t.stored(), 0)
    })

    it("uses the exact bytes kept by express.raw()", async () => {
      const t = await setup()
      const app = express()
      app.post(PATH, express.raw({ type: "*/*" }), nodeHandler(t.handler))
      const url = await listen(app)
      const response = await fetch(url + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })
      assert.strictEqual(response.status, 200)
    })

    it("express.raw() mounted app-wide before the route: its bytes are verified as received, and the size limit still applies", async () => {
      const t = await setup({ maxBodyBytes: 16 * 1024 })
      const app = express()
      app.use(express.raw({ type: "*/*" }))
      app.all(PATH, nodeHandler(t.handler))
      const url = await listen(app)
      const body = userCreated.replace("\"John\"", "\"Jöhn 😀 Ærø\"")
      const ok = await fetch(url + PATH, { method: "POST", headers: signedHeaders(body, "msg_raw"), body })
      assert.deepStrictEqual([ok.status, await ok.json()], [200, { status: "processed", eventId: "msg_raw" }])
      const big = JSON.stringify({ pad: "x".repeat(20_000) })
      const tooBig = await fetch(url + PATH, { method: "POST", headers: signedHeaders(big), body: big })
      assert.strictEqual(tooBig.status, 413)
      assert.strictEqual((await tooBig.json()).error, "payload_too_large")
      const forged = await fetch(url + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated.replace("John", "Joan") })
      assert.strictEqual(forged.status, 401)
      assert.strictEqual(await t.stored(), 1)
    })

    it("express.json() before the route, with the route's connection kept, and a body it does not parse streams through", async () => {
      const t = await setup()
      const app = express()
      app.use(express.json())
      app.post(PATH, nodeHandler(t.handler))
      const server = await serve(app)
      const client = keepAliveClient(server.port)
      closers.push(async () => client.close())
      const parsed = await client.post(PATH, userCreated, signedHeaders(userCreated))
      assert.strictEqual(parsed.status, 500)
      assert.deepStrictEqual(JSON.parse(parsed.body), { status: "error", eventId: null, error: "body_already_parsed" })
      assert.notStrictEqual(parsed.connection, "close", "express.json() read the whole body: nothing is left on the connection")
      // not JSON to express.json(), so it never touched the body
      const untouched = await client.post(PATH, userCreated, { ...signedHeaders(userCreated), "content-type": "application/octet-stream" })
      assert.strictEqual(untouched.status, 200)
      assert.isTrue(untouched.reusedSocket)
      assert.deepStrictEqual(t.lines.map((line) => line.outcome), ["body_already_parsed", "processed"])
      assert.strictEqual(await t.stored(), 1)
    })
  })
}

describe("toNodeHandler: which path", () => {
  it("runs clerk-sync's own handler on Node's request without calling it as a Fetch handler; a wrapper takes the Fetch path", async () => {
    const t = await setup()
    let fetchCalls = 0
    const counted = new Proxy(t.handler, {
      apply: (target, self, args: [Request]) => {
        fetchCalls++
        return Reflect.apply(target, self, args)
      }
    })
    assert.isDefined(incomingRunnerOf(counted))
    const fast = await listen(toNodeHandler(counted))
    assert.strictEqual((await fetch(fast + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })).status, 200)
    assert.strictEqual(fetchCalls, 0)
    const wrapper = (request: Request) => counted(request)
    assert.isUndefined(incomingRunnerOf(wrapper))
    const generic = await listen(toNodeHandler(wrapper))
    assert.strictEqual((await fetch(generic + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })).status, 200)
    assert.strictEqual(fetchCalls, 1)
    assert.deepStrictEqual(Object.keys(t.handler).sort(), ["dispose", "endpoint"], "the hook is not enumerable")
    assert.strictEqual(await t.stored(), 2)
  })
})
