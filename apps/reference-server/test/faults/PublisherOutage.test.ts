/**
 * Publisher outage. Socket.IO: every client disconnected while events keep coming; when the
 * clients come back (each with the last `seq` it had), they get what they missed in `seq` order,
 * then the live stream, with no gap and no repeat. Supabase: the Realtime endpoint answers 503 for
 * a while; nothing is lost and delivery resumes in order when it comes back.
 */
import { createTestDatabase, type TestDatabase } from "@clerk-sync/adapter-postgres/testing"
import { createServer, type Server } from "node:http"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { generate } from "../../../../bench/load/History.ts"
import { type ServerHandle, startClerkSync } from "../../../../bench/load/Processes.ts"
import { patient, send } from "../../../../bench/load/Sender.ts"
import { eventually, RealtimeClient, readOutbox, receivedAll, size, sleep } from "./utils/Harness.ts"

const EVENTS = size(450, 9_000)
const CLIENTS = 3

describe("fault: Socket.IO publisher outage (all clients disconnected)", () => {
  let db: TestDatabase
  let server: ServerHandle
  const clients: Array<RealtimeClient> = []

  beforeAll(async () => {
    db = await createTestDatabase({ prefix: "fault_outage" })
    server = await startClerkSync({ databaseUrl: db.url })
  })

  afterAll(async () => {
    for (const c of clients) c.close()
    await server?.stop()
    await db?.drop()
  })

  it("clients away during a third of the stream resume in order, nothing lost", async () => {
    for (let i = 0; i < CLIENTS; i++) clients.push(new RealtimeClient(server.url, server.adminToken))
    for (const c of clients) assert.isTrue(await c.connected())
    const history = generate({ events: EVENTS, seed: 5, idPrefix: "out" })
    const third = Math.floor(history.events.length / 3)
    const deliver = async (events: typeof history.events) => {
      const r = await send(events, { url: server.url, secret: server.secret, concurrency: 8, retry: patient, keepAttempts: false })
      assert.deepStrictEqual(r.givenUp, [])
    }

    await deliver(history.events.slice(0, third))
    let outbox = await readOutbox(db.url)
    assert.isTrue(await eventually(() => clients.every((c) => c.seqs.length >= outbox.seqs.length), 30_000), "live delivery before the outage")

    for (const c of clients) c.disconnect()
    assert.isTrue(await eventually(() => clients.every((c) => !c.socket.connected), 5_000))
    const before = clients.map((c) => c.seqs.length)
    await deliver(history.events.slice(third, 2 * third))
    assert.isTrue(await eventually(async () => (await readOutbox(db.url)).pending === 0, 30_000), "the relay publishes with nobody listening")
    assert.deepStrictEqual(clients.map((c) => c.seqs.length), before, "nothing arrives while disconnected")

    for (const c of clients) c.reconnect()
    // The rest is sent while the clients catch up: the replay and the live stream must join without a gap.
    await deliver(history.events.slice(2 * third))
    outbox = await readOutbox(db.url)
    assert.isTrue(await eventually(async () => (outbox = await readOutbox(db.url)).pending === 0, 30_000))
    assert.isTrue(
      await eventually(() => clients.every((c) => c.seqs.length >= outbox.seqs.length), 60_000),
      `every client catches up: ${clients.map((c) => c.seqs.length).join(", ")} of ${outbox.seqs.length}`
    )
    for (const c of clients) {
      assert.strictEqual(c.outOfOrder, 0)
      assert.isTrue(receivedAll(c, outbox.seqs), "every notification once, in seq order")
      assert.isAtLeast(c.connects, 2)
    }
  }, 240_000)
})

/** A stand-in for Supabase Realtime's REST broadcast endpoint that can be made to answer 503. */
const fakeRealtime = async () => {
  const state = { down: false, refused: 0, accepted: 0 }
  /** Per topic, the seqs received, in arrival order (retries included). */
  const topics = new Map<string, Array<number>>()
  const server: Server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      if (req.method !== "POST" || !req.url?.startsWith("/realtime/v1/api/broadcast")) {
        res.writeHead(404).end()
        return
      }
      if (state.down) {
        state.refused++
        res.writeHead(503, { "content-type": "application/json" }).end('{"message":"unavailable"}')
        return
      }
      const { messages } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { messages: Array<{ topic: string; payload: { seq: number } }> }
      for (const m of messages) {
        const list = topics.get(m.topic) ?? []
        list.push(m.payload.seq)
        topics.set(m.topic, list)
      }
      state.accepted++
      res.writeHead(202, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok))
  const address = server.address()
  const port = typeof address === "object" && address ? address.port : 0
  return { url: `http://127.0.0.1:${port}`, state, topics, close: () => new Promise<void>((ok) => server.close(() => ok())) }
}

describe("fault: Supabase Realtime publisher outage (the endpoint answers 503)", () => {
  let db: TestDatabase
  let server: ServerHandle
  let realtime: Awaited<ReturnType<typeof fakeRealtime>>

  beforeAll(async () => {
    db = await createTestDatabase({ prefix: "fault_supabase" })
    realtime = await fakeRealtime()
    server = await startClerkSync({
      databaseUrl: db.url,
      env: { REALTIME: "supabase", SUPABASE_URL: realtime.url, SUPABASE_SERVICE_KEY: "service-role-key-for-tests" }
    })
  })

  afterAll(async () => {
    await server?.stop()
    await realtime?.close()
    await db?.drop()
  })

  it("503s for a while: nothing lost, every topic in seq order once it is back", async () => {
    const history = generate({ events: EVENTS, seed: 6, idPrefix: "sb" })
    const third = Math.floor(history.events.length / 3)
    const deliver = async (events: typeof history.events) => {
      const r = await send(events, { url: server.url, secret: server.secret, concurrency: 8, retry: patient, keepAttempts: false })
      assert.deepStrictEqual(r.givenUp, [])
    }
    await deliver(history.events.slice(0, third))
    assert.isTrue(await eventually(async () => (await readOutbox(db.url)).pending === 0, 30_000), "published before the outage")

    realtime.state.down = true
    await deliver(history.events.slice(third, 2 * third))
    await sleep(3_000)
    assert.isAbove(realtime.state.refused, 0, "the publisher met the outage")
    assert.isAbove((await readOutbox(db.url)).pending, 0, "what could not be published waits in the outbox")
    realtime.state.down = false
    await deliver(history.events.slice(2 * third))

    let outbox = await readOutbox(db.url)
    assert.isTrue(await eventually(async () => (outbox = await readOutbox(db.url)).pending === 0, 60_000), `the outbox drains (${outbox.pending} pending)`)
    const received = new Set([...realtime.topics.values()].flat())
    const missing = outbox.seqs.filter((s) => !received.has(s))
    assert.deepStrictEqual(missing.slice(0, 10), [], `${missing.length} notifications never reached Supabase`)
    for (const [topic, seqs] of realtime.topics) {
      const seen = new Set<number>()
      const firsts = seqs.filter((s) => (seen.has(s) ? false : (seen.add(s), true)))
      assert.isTrue(firsts.every((s, i) => i === 0 || s > firsts[i - 1]!), `topic ${topic} in seq order: ${firsts.join(",")}`)
    }
  }, 240_000)
})
