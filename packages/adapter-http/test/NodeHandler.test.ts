import { SyncStore } from "@clerk-sync/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import express from "express"
import { createServer, type IncomingMessage, request as httpRequest, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { afterEach } from "vitest"
import { createWebhookHandler, signWebhook, toNodeHandler, type WebhookHandler } from "../src/index.ts"
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

describe("toNodeHandler on node:http", () => {
  it("processes a signed delivery sent with fetch", async () => {
    const t = await setup()
    const url = await listen(toNodeHandler(t.handler))
    const response = await fetch(url + PATH, { method: "POST", headers: signedHeaders(userCreated, "msg_node"), body: userCreated })
    assert.strictEqual(response.status, 200)
    assert.deepStrictEqual(await response.json(), { status: "processed", eventId: "msg_node" })
    assert.strictEqual((await Effect.runPromise(t.memory.counts)).users, 1)
  })

  it("reads a chunked body sent in small, slow pieces, multi-byte characters split across chunks", async () => {
    const t = await setup()
    const url = await listen(toNodeHandler(t.handler))
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
    const handler = toNodeHandler(t.handler)
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
      const server = await serve(toNodeHandler(t.handler))
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
    const server = await serve(toNodeHandler(t.handler))
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
    const server = await serve(toNodeHandler(t.handler))
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
    const url = await listen(toNodeHandler(t.handler))
    const reply = await send(url + PATH, {
      headers: { ...signedHeaders("{}"), "content-length": String(10 * 1024 * 1024) },
      chunks: [new Uint8Array(1024)]
    })
    assert.strictEqual(reply.status, 413)
    assert.strictEqual(await t.stored(), 0)
  })

  it("405 with Allow: POST for other methods", async () => {
    const t = await setup()
    const url = await listen(toNodeHandler(t.handler))
    const response = await fetch(url + PATH)
    assert.strictEqual(response.status, 405)
    assert.strictEqual(response.headers.get("allow"), "POST")
  })

  it("the socket address feeds the allow-list (127.0.0.1 here)", async () => {
    const allowed = await setup({ allow: ["127.0.0.0/8", "::1"], logClientAddress: true })
    const url = await listen(toNodeHandler(allowed.handler))
    assert.strictEqual((await fetch(url + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })).status, 200)
    assert.match(allowed.lines[0]?.clientAddress ?? "", /127\.0\.0\.1/)
    const denied = await setup({ allow: ["10.0.0.0/8"] })
    const url2 = await listen(toNodeHandler(denied.handler))
    assert.strictEqual((await fetch(url2 + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })).status, 403)
    assert.strictEqual(await denied.stored(), 0)
  })
})

describe("toNodeHandler under Express 5", () => {
  it("works mounted before express.json(), which still serves the other routes", async () => {
    const t = await setup()
    const app = express()
    app.all(PATH, toNodeHandler(t.handler))
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
    app.post(PATH, toNodeHandler(t.handler))
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
    app.post(PATH, express.raw({ type: "*/*" }), toNodeHandler(t.handler))
    const url = await listen(app)
    const response = await fetch(url + PATH, { method: "POST", headers: signedHeaders(userCreated), body: userCreated })
    assert.strictEqual(response.status, 200)
  })
})
