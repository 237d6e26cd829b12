/**
 * Realtime benchmark: what clerk-sync's delivery costs over the seeds' `io.emit`, measured in the
 * same run on the same server (these machines are noisy: read the ratios first).
 *
 * - **Webhook → client latency** (p50, p99) at 100 and 1,000 events/s, open loop: a driver process
 *   signs and POSTs Clerk webhooks at the rate and timestamps their arrival at 10 connected clients.
 *   clerk-sync path: Svix verification → ingest (in-memory store; and PostgreSQL with fsync when its
 *   binaries are present) → outbox relay → Socket.IO rooms → `@clerk-sync/client`.
 *   Baseline (the seeds): Svix verification → `io.emit` of the payload to everyone.
 * - **Fan-out** of one event to 1,000 and 10,000 clients of one organization, from the publish to
 *   the last client's receipt (clients in 4 other processes). Baseline: `io.emit` to the same
 *   connections (each client holds both namespaces on one connection).
 * - **Memory per connected client** on the server (after GC): a plain Socket.IO connection, then
 *   what clerk-sync's authenticated, resumable session adds.
 *
 * Run: `npx tsx bench/realtime.ts` (from the repository root, so Node 24 is used);
 * `--quick` for a short run (1,000 clients, shorter phases); `--no-postgres`, `--no-fanout` to skip parts.
 */
import { createWebhookHandler, signWebhook, toNodeHandler } from "@clerk-sync/adapter-http"
import { SocketIoRealtime } from "@clerk-sync/adapter-socketio"
import { ClerkSimulator, Ingest, MemoryStore, type Notification, Publisher, Relay, SyncStore } from "@clerk-sync/core"
import { Effect, Fiber, ManagedRuntime, Queue } from "effect"
import * as jose from "jose"
import { type ChildProcess, fork } from "node:child_process"
import { existsSync } from "node:fs"
import { createServer, type IncomingMessage, type Server as HttpServer } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath, pathToFileURL } from "node:url"
import { runInNewContext } from "node:vm"
import { setFlagsFromString } from "node:v8"
import { Webhook } from "svix"

export interface BenchRow {
  readonly name: string
  readonly value: number
  readonly unit: "ms" | "KiB"
  /** The figure divided by the same-run baseline's (lower is better for every row here). */
  readonly vsBaseline?: number | undefined
}

export interface RealtimeBenchOptions {
  /** Event rates for the latency runs (default 100 and 1,000 per second). */
  readonly rates?: ReadonlyArray<number>
  /** Seconds per latency run (default 5). */
  readonly seconds?: number
  /** Client counts for the fan-out (default 1,000 and 10,000). */
  readonly fanout?: ReadonlyArray<number>
  /** Fan-out rounds per case; the median is reported (default 5). */
  readonly rounds?: number
  /** Also measure latency with the PostgreSQL store (default: when the server binaries exist). */
  readonly postgres?: boolean
  readonly log?: (line: string) => void
}

const SELF = fileURLToPath(import.meta.url)
const SECRET = "whsec_" + Buffer.from("clerk-sync realtime bench secret!").toString("base64")
const CLIENTS = 10
const now = () => performance.timeOrigin + performance.now()

const percentile = (xs: ReadonlyArray<number>, p: number): number => {
  if (xs.length === 0) return Number.NaN
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}
const median = (xs: ReadonlyArray<number>) => percentile(xs, 50)

const gc = (() => {
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
})()
const settledMemory = async () => {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const m = process.memoryUsage()
  return { heap: m.heapUsed + m.external }
}

// ---------------------------------------------------------------------------------------------
// IPC with the child processes (the driver and the fan-out clients)

type ToChild =
  | { readonly type: "init"; readonly url: string; readonly jwk: jose.JWK; readonly userId: string; readonly clients: number }
  | { readonly type: "run"; readonly target: "clerk-sync" | "baseline"; readonly rate: number; readonly deliveries: ReadonlyArray<Signed> }
  | { readonly type: "connect"; readonly namespace: "baseline" | "clerk-sync" }
  | { readonly type: "expect"; readonly marker: string }
  | { readonly type: "listen"; readonly target: "clerk-sync" | "baseline"; readonly count: number }
  | { readonly type: "stop" }

type FromChild =
  | { readonly type: "ready" }
  | {
    readonly type: "result"
    readonly latencies: ReadonlyArray<number>
    readonly expected: number
    readonly httpErrors: number
    /** Webhook response times (ms): how long the sender waits for its 200. */
    readonly responses: ReadonlyArray<number>
  }
  | { readonly type: "connected"; readonly count: number }
  | { readonly type: "received"; readonly times: ReadonlyArray<number> }

interface Signed {
  readonly body: string
  readonly headers: Record<string, string>
  readonly label: string
}

const spawn = (role: string): ChildProcess => fork(SELF, [`--role=${role}`], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] })

const next = <T extends FromChild["type"]>(child: ChildProcess, type: T): Promise<Extract<FromChild, { type: T }>> =>
  new Promise((resolve, reject) => {
    const onMessage = (m: FromChild) => {
      if (m.type !== type) return
      child.off("message", onMessage)
      child.off("exit", onExit)
      resolve(m as Extract<FromChild, { type: T }>)
    }
    const onExit = (code: number | null) => reject(new Error(`bench child exited (${code}) before "${type}"`))
    child.on("message", onMessage)
    child.once("exit", onExit)
  })

const send = (child: ChildProcess, message: ToChild) => child.send(message)

// ---------------------------------------------------------------------------------------------
// The server: clerk-sync and the baseline on one HTTP server

interface BenchServer {
  readonly url: string
  readonly http: HttpServer
  readonly realtime: SocketIoRealtime.SocketIoRealtime
  readonly close: () => Promise<void>
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

interface StoreSetup {
  readonly store: SyncStore.SyncStoreShape
  readonly ingest: (delivery: Ingest.Delivery) => Promise<Ingest.IngestResult>
  /** Starts the outbox relay through the publisher. */
  readonly relay: (publisher: Publisher.PublisherShape) => void
  readonly close: () => Promise<void>
}

const memoryStore = async (): Promise<StoreSetup> => {
  const base = await Effect.runPromise(MemoryStore.make)
  const wake = await Effect.runPromise(Queue.sliding<void>(1))
  // The in-memory store has no NOTIFY: wake the relay after each ingest, as the Postgres store does.
  const store: SyncStore.SyncStoreShape = {
    ...base,
    ingest: (request, options) => Effect.tap(base.ingest(request, options), () => Effect.sync(() => Queue.offerUnsafe(wake, undefined)))
  }
  const run = <A, E>(effect: Effect.Effect<A, E, SyncStore.SyncStore>) => Effect.runPromise(Effect.provideService(effect, SyncStore.SyncStore, store))
  let fiber: Fiber.Fiber<unknown, unknown> | undefined
  return {
    store,
    ingest: (delivery) => run(Ingest.ingest(delivery)),
    relay: (publisher) => {
      fiber = Effect.runFork(
        Relay.run({ wakeup: Queue.take(wake) }).pipe(
          Effect.provideService(SyncStore.SyncStore, store),
          Effect.provideService(Publisher.Publisher, publisher)
        )
      )
    },
    close: async () => {
      if (fiber) await Effect.runPromise(Fiber.interrupt(fiber))
    }
  }
}

const postgresStore = async (): Promise<StoreSetup> => {
  const { startPostgresServer } = await import("@clerk-sync/adapter-postgres/testing")
  const { OutboxRelay, PostgresStore } = await import("@clerk-sync/adapter-postgres")
  const server = await startPostgresServer({ name: "bench-realtime" })
  const runtime = ManagedRuntime.make(PostgresStore.layerPg({ connectionString: server.url, poolSize: 10 }))
  const store = await runtime.runPromise(Effect.gen(function*() {
    return yield* SyncStore.SyncStore
  }))
  return {
    store,
    ingest: (delivery) => runtime.runPromise(Ingest.ingest(delivery)),
    relay: (publisher) => void runtime.runFork(OutboxRelay.runRelay().pipe(Effect.provideService(Publisher.Publisher, publisher))),
    close: async () => {
      await runtime.dispose()
      await server.destroy()
    }
  }
}

const startServer = async (
  setup: StoreSetup,
  options: { readonly publicPem: string; readonly organizationsOf: (userId: string) => Promise<ReadonlyArray<string>> }
): Promise<BenchServer> => {
  const webhook = toNodeHandler(createWebhookHandler({ clerkSync: { ingest: setup.ingest }, secret: SECRET, log: false }))
  const svix = new Webhook(SECRET)
  let baselineNamespace: ReturnType<SocketIoRealtime.SocketIoRealtime["io"]["of"]> | undefined
  const http = createServer((req, res) => {
    if (req.url === "/api/webhooks/clerk") return webhook(req, res)
    if (req.url === "/baseline/webhook") {
      // The seeds' handler: verify, then io.emit the payload to every connected client.
      void readBody(req).then((body) => {
        try {
          svix.verify(body, {
            "svix-id": String(req.headers["svix-id"]),
            "svix-timestamp": String(req.headers["svix-timestamp"]),
            "svix-signature": String(req.headers["svix-signature"])
          })
          const event = JSON.parse(body) as { type: string; data: unknown }
          baselineNamespace?.emit(event.type, event.data)
          res.writeHead(200).end("{}")
        } catch {
          res.writeHead(400).end()
        }
      })
      return
    }
  })
  const realtime = SocketIoRealtime.attach(setup.store, {
    httpServer: http,
    serverOptions: { transports: ["websocket"], perMessageDeflate: false },
    auth: { jwtKey: options.publicPem },
    organizationsOf: options.organizationsOf,
    pollIntervalMs: 0,
    onError: () => {}
  })
  baselineNamespace = realtime.io.of("/baseline")
  setup.relay(realtime.publisher)
  await realtime.ready
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    http,
    realtime,
    close: async () => {
      await realtime.close()
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
      await setup.close()
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Latency

const latency = async (
  kind: "memory" | "postgres",
  rates: ReadonlyArray<number>,
  seconds: number,
  log: (line: string) => void
): Promise<ReadonlyArray<BenchRow>> => {
  const { privateKey, publicKey } = await jose.generateKeyPair("RS256", { extractable: true })
  const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "bench_" })
  // Many organizations, so that two updates of one organization are rarely in flight together
  // (the older would then be stale, and rightly notify nobody).
  const orgs = Array.from({ length: 1_000 }, (_, i) => clerk.createOrganization({ name: `Org ${i}` }))
  const setup = kind === "memory" ? await memoryStore() : await postgresStore()
  const server = await startServer(setup, { publicPem: await jose.exportSPKI(publicKey), organizationsOf: async () => orgs })
  for (const e of clerk.events) await setup.ingest(e)
  const driver = spawn("latency-driver")
  const rows: Array<BenchRow> = []
  try {
    send(driver, { type: "init", url: server.url, jwk: await jose.exportJWK(privateKey), userId: "user_bench", clients: CLIENTS })
    await next(driver, "ready")
    let counter = 0
    const deliveries = (count: number): ReadonlyArray<Signed> =>
      Array.from({ length: count }, () => {
        const i = counter++
        const event = clerk.tick().updateOrganization(orgs[i % orgs.length]!, { name: `e${i}` })
        return { body: event.body, headers: signWebhook({ secret: SECRET, svixId: event.svixId, body: event.body }) as unknown as Record<string, string>, label: `e${i}` }
      })
    const run = async (target: "clerk-sync" | "baseline", rate: number, count: number) => {
      send(driver, { type: "run", target, rate, deliveries: deliveries(count) })
      return next(driver, "result")
    }
    await run("baseline", 100, 100) // warm-up
    await run("clerk-sync", 100, 100)
    // Interleaved rounds, the median of each round's percentile: a burst of load from elsewhere on
    // the machine then spoils one round, not one side.
    const rounds = 3
    type Result = Extract<FromChild, { type: "result" }>
    const summarize = (results: ReadonlyArray<Result>, pick: (r: Result) => ReadonlyArray<number>, p: number) =>
      median(results.map((r) => percentile(pick(r), p)))
    for (const rate of rates) {
      const count = Math.round((rate * seconds) / rounds)
      const base: Array<Result> = []
      const ours: Array<Result> = []
      for (let r = 0; r < rounds; r++) {
        base.push(await run("baseline", rate, count))
        ours.push(await run("clerk-sync", rate, count))
      }
      const label = kind === "memory" ? "in-memory store" : "PostgreSQL store, fsync on"
      for (const r of [...base, ...ours]) {
        const lost = r.expected - r.latencies.length
        if (lost > 0 || r.httpErrors > 0) log(`  warning: ${lost} of ${r.expected} receipts missing, ${r.httpErrors} HTTP errors`)
      }
      for (const p of [50, 99]) {
        const b = summarize(base, (r) => r.latencies, p)
        const o = summarize(ours, (r) => r.latencies, p)
        if (kind === "memory") rows.push({ name: `baseline io.emit: webhook → client p${p} @ ${rate}/s`, value: b, unit: "ms" })
        rows.push({ name: `clerk-sync (${label}): webhook → client p${p} @ ${rate}/s`, value: o, unit: "ms", vsBaseline: o / b })
      }
      const br = summarize(base, (r) => r.responses, 50)
      const or = summarize(ours, (r) => r.responses, 50)
      if (kind === "memory") rows.push({ name: `baseline: webhook answered (200) p50 @ ${rate}/s`, value: br, unit: "ms" })
      rows.push({ name: `clerk-sync (${label}): webhook answered (200) p50 @ ${rate}/s`, value: or, unit: "ms", vsBaseline: or / br })
      log(`  latency ${kind} @ ${rate}/s done (${rounds} × ${count} events × ${CLIENTS} clients each way)`)
    }
    if (kind === "memory") {
      // The realtime layer alone: from the publish (the relay's hand-over) to the client, at the
      // same rates; the publish time travels in the payload (wall clock, sub-millisecond).
      let seq = server.realtime.head()
      const organization = { id: "00000000-0000-4000-8000-00000000000a", clerkOrgId: orgs[0]!, name: "", slug: null, imageUrl: null, publicMetadata: {}, deleted: false }
      const publishAt = async (target: "clerk-sync" | "baseline", rate: number, count: number) => {
        send(driver, { type: "listen", target, count })
        await new Promise((resolve) => setTimeout(resolve, 50))
        const result = next(driver, "result")
        const interval = 1000 / rate
        const start = performance.now()
        let sent = 0
        while (sent < count) {
          const due = Math.min(count, Math.floor((performance.now() - start) / interval) + 1)
          const batch: Array<Notification.Stored> = []
          for (; sent < due; sent++) {
            const name = `t:${now()}`
            if (target === "baseline") server.realtime.io.of("/baseline").emit("organization.updated", { ...organization, name })
            else {
              batch.push({
                seq: ++seq,
                createdAt: Date.now(),
                audiences: [`org:${orgs[0]!}`, "admin"],
                payload: { name: "organization.updated", organization: { ...organization, name }, changes: {} }
              })
            }
          }
          if (batch.length > 0) await server.realtime.publish(batch)
          await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(interval, 10))))
        }
        return result
      }
      for (const rate of rates) {
        const count = Math.round((rate * seconds) / rounds)
        const base: Array<Result> = []
        const ours: Array<Result> = []
        for (let r = 0; r < rounds; r++) {
          base.push(await publishAt("baseline", rate, count))
          ours.push(await publishAt("clerk-sync", rate, count))
        }
        for (const p of [50, 99]) {
          const b = summarize(base, (r) => r.latencies, p)
          const o = summarize(ours, (r) => r.latencies, p)
          rows.push({ name: `baseline io.emit: emit → client p${p} @ ${rate}/s`, value: b, unit: "ms" })
          rows.push({ name: `clerk-sync: publish → client p${p} @ ${rate}/s (realtime layer only)`, value: o, unit: "ms", vsBaseline: o / b })
        }
        log(`  publish → client @ ${rate}/s done`)
      }
    }
  } finally {
    send(driver, { type: "stop" })
    await server.close()
  }
  return rows
}

/** The driver process: clients of both kinds, and the open-loop webhook sender. */
const latencyDriver = async () => {
  // Node's http client on a bounded keep-alive pool: cheaper per request than fetch, and no burst
  // of new connections under load (what is measured is the server, not the sender).
  const { Agent, request } = await import("node:http")
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const { connect } = await import("@clerk-sync/client")
  const { io } = await import("socket.io-client")
  let url = ""
  const receivers = new Map<string, (label: string) => void>()
  let listening: { target: string; expected: number; latencies: Array<number> } | null = null
  const onReceipt = (target: string, label: string) => {
    if (listening && label.startsWith("t:")) {
      if (listening.target === target) listening.latencies.push(now() - Number(label.slice(2)))
      return
    }
    receivers.get(target)?.(label)
  }
  process.on("message", async (m: ToChild) => {
    if (m.type === "stop") process.exit(0)
    if (m.type === "init") {
      url = m.url
      const key = await jose.importJWK(m.jwk, "RS256")
      const token = () => new jose.SignJWT({}).setProtectedHeader({ alg: "RS256" }).setSubject(m.userId).setExpirationTime("1h").sign(key)
      const clients = Array.from({ length: m.clients }, () => {
        const c = connect({ url, getToken: token, storage: null, transports: ["websocket"] })
        c.on("organization.updated", (n) => onReceipt("clerk-sync", n.organization.name))
        return c
      })
      await Promise.all(clients.map((c) => c.live()))
      await Promise.all(Array.from({ length: m.clients }, () =>
        new Promise<void>((resolve) => {
          const s = io(`${url}/baseline`, { transports: ["websocket"], forceNew: true })
          s.on("organization.updated", (data: { name: string }) => onReceipt("baseline", data.name))
          s.once("connect", () => resolve())
        })))
      process.send!({ type: "ready" } satisfies FromChild)
    }
    if (m.type === "listen") {
      listening = { target: m.target, expected: m.count * CLIENTS, latencies: [] }
      const deadline = performance.now() + 30_000
      while (listening.latencies.length < listening.expected && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      const { latencies, expected } = listening
      listening = null
      process.send!({ type: "result", latencies, expected, httpErrors: 0, responses: [] } satisfies FromChild)
    }
    if (m.type === "run") {
      const sent = new Map<string, number>()
      const latencies: Array<number> = []
      const expected = m.deliveries.length * CLIENTS
      let httpErrors = 0
      receivers.set(m.target, (label) => {
        const at = sent.get(label)
        if (at !== undefined) latencies.push(performance.now() - at)
      })
      const path = m.target === "clerk-sync" ? "/api/webhooks/clerk" : "/baseline/webhook"
      const responses: Array<number> = []
      const post = (d: Signed) => {
        const at = performance.now()
        sent.set(d.label, at)
        const req = request(`${url}${path}`, { method: "POST", agent, headers: { ...d.headers, "content-type": "application/json" } }, (res) => {
          if (res.statusCode !== 200) httpErrors++
          res.resume()
          res.on("end", () => void responses.push(performance.now() - at))
        })
        req.on("error", () => void httpErrors++)
        req.end(d.body)
      }
      // Open loop: every millisecond or so, send what is due by now (never a burst of the backlog
      // without yielding, which would measure the sender instead of the server).
      const interval = 1000 / m.rate
      const start = performance.now()
      let next = 0
      while (next < m.deliveries.length) {
        const due = Math.min(m.deliveries.length, Math.floor((performance.now() - start) / interval) + 1)
        while (next < due) post(m.deliveries[next++]!)
        await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(interval, 10))))
      }
      const deadline = performance.now() + 10_000
      while (latencies.length < expected && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      receivers.delete(m.target)
      process.send!({ type: "result", latencies, expected, httpErrors, responses } satisfies FromChild)
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Fan-out and memory

const fanout = async (
  counts: ReadonlyArray<number>,
  rounds: number,
  log: (line: string) => void
): Promise<ReadonlyArray<BenchRow>> => {
  const rows: Array<BenchRow> = []
  const { privateKey, publicKey } = await jose.generateKeyPair("RS256", { extractable: true })
  const jwk = await jose.exportJWK(privateKey)
  const ORG = "org_fanout"
  for (const total of counts) {
    const setup = await memoryStore()
    const server = await startServer(setup, { publicPem: await jose.exportSPKI(publicKey), organizationsOf: async () => [ORG] })
    const workers = Math.min(4, Math.max(1, Math.ceil(total / 500)))
    const children = Array.from({ length: workers }, () => spawn("fanout-clients"))
    try {
      const per = Math.ceil(total / workers)
      const mem0 = await settledMemory()
      children.forEach((c, i) => send(c, { type: "init", url: server.url, jwk, userId: `w${i}`, clients: Math.min(per, total - i * per) }))
      await Promise.all(children.map((c) => next(c, "ready")))
      const connect = async (namespace: "baseline" | "clerk-sync") => {
        children.forEach((c) => send(c, { type: "connect", namespace }))
        const done = await Promise.all(children.map((c) => next(c, "connected")))
        return done.reduce((n, d) => n + d.count, 0)
      }
      const baseCount = await connect("baseline")
      const mem1 = await settledMemory()
      const oursCount = await connect("clerk-sync")
      const mem2 = await settledMemory()
      if (baseCount !== total || oursCount !== total) throw new Error(`connected ${baseCount}/${oursCount} of ${total}`)
      const perClient = (a: number, b: number) => (b - a) / total / 1024
      // JS heap + external buffers after GC (RSS is too noisy on a shared machine to divide by N).
      const baseHeap = perClient(mem0.heap, mem1.heap)
      const oursHeap = perClient(mem1.heap, mem2.heap)
      rows.push({ name: `memory per client, plain Socket.IO connection (${total.toLocaleString("en-US")} clients)`, value: baseHeap, unit: "KiB" })
      rows.push({
        name: `memory per client, clerk-sync session on top (${total.toLocaleString("en-US")} clients)`,
        value: oursHeap,
        unit: "KiB",
        vsBaseline: oursHeap / baseHeap
      })

      const org = {
        id: "00000000-0000-4000-8000-000000000001",
        clerkOrgId: ORG,
        name: "Fan-out",
        slug: "fan-out",
        imageUrl: null,
        publicMetadata: { plan: "enterprise" },
        deleted: false
      }
      let seq = 0
      const once = async (target: "baseline" | "clerk-sync") => {
        const marker = `${target}-${++seq}`
        children.forEach((c) => send(c, { type: "expect", marker }))
        const receipts = Promise.all(children.map((c) => next(c, "received")))
        await new Promise((resolve) => setTimeout(resolve, 50))
        const start = now()
        if (target === "baseline") {
          server.realtime.io.of("/baseline").emit("organization.updated", { ...org, name: marker })
        } else {
          const stored: Notification.Stored = {
            seq,
            createdAt: Date.now(),
            audiences: [`org:${ORG}`, "admin"],
            payload: { name: "organization.updated", organization: { ...org, name: marker }, changes: { name: { from: "", to: marker } } }
          }
          await server.realtime.publish([stored])
        }
        const times = (await receipts).flatMap((r) => r.times)
        if (times.length !== total) throw new Error(`${target}: ${times.length} of ${total} clients received the event`)
        return { last: Math.max(...times) - start, p50: median(times) - start }
      }
      await once("baseline")
      await once("clerk-sync")
      const samples = { baseline: [] as Array<{ last: number; p50: number }>, "clerk-sync": [] as Array<{ last: number; p50: number }> }
      for (let r = 0; r < rounds; r++) {
        samples.baseline.push(await once("baseline"))
        samples["clerk-sync"].push(await once("clerk-sync"))
      }
      const baseLast = median(samples.baseline.map((s) => s.last))
      const oursLast = median(samples["clerk-sync"].map((s) => s.last))
      const baseHalf = median(samples.baseline.map((s) => s.p50))
      const oursHalf = median(samples["clerk-sync"].map((s) => s.p50))
      const n = total.toLocaleString("en-US")
      rows.push({ name: `baseline io.emit: fan-out to ${n} clients, last receipt`, value: baseLast, unit: "ms" })
      rows.push({ name: `clerk-sync: fan-out of one org event to ${n} members, last receipt`, value: oursLast, unit: "ms", vsBaseline: oursLast / baseLast })
      rows.push({ name: `baseline io.emit: fan-out to ${n} clients, half received`, value: baseHalf, unit: "ms" })
      rows.push({ name: `clerk-sync: fan-out of one org event to ${n} members, half received`, value: oursHalf, unit: "ms", vsBaseline: oursHalf / baseHalf })
      log(`  fan-out ${n} done`)
    } finally {
      for (const c of children) send(c, { type: "stop" })
      await server.close()
    }
  }
  return rows
}

/** A fan-out client process: many connections, each holding both namespaces. */
const fanoutClients = async () => {
  const { Manager } = await import("socket.io-client")
  type Sock = ReturnType<InstanceType<typeof Manager>["socket"]>
  let url = ""
  let count = 0
  let token = ""
  const managers: Array<InstanceType<typeof Manager>> = []
  let expecting: { marker: string; times: Array<number> } | null = null
  const receive = (data: { name?: string; organization?: { name: string } }) => {
    const name = data.organization?.name ?? data.name
    if (!expecting || name !== expecting.marker) return
    expecting.times.push(now())
    if (expecting.times.length === count) {
      process.send!({ type: "received", times: expecting.times } satisfies FromChild)
      expecting = null
    }
  }
  const connectAll = async (namespace: "baseline" | "clerk-sync") => {
    let connected = 0
    const one = (m: InstanceType<typeof Manager>) =>
      new Promise<void>((resolve, reject) => {
        const s: Sock = namespace === "baseline" ? m.socket("/baseline") : m.socket("/clerk-sync", { auth: { token } })
        s.on("organization.updated", receive)
        if (namespace === "clerk-sync") s.once("clerk-sync:ready", () => (connected++, resolve()))
        else s.once("connect", () => (connected++, resolve()))
        s.once("connect_error", reject)
        s.connect()
      })
    for (let i = 0; i < managers.length; i += 100) await Promise.all(managers.slice(i, i + 100).map(one))
    return connected
  }
  process.on("message", async (m: ToChild) => {
    if (m.type === "stop") process.exit(0)
    if (m.type === "init") {
      url = m.url
      count = m.clients
      const key = await jose.importJWK(m.jwk, "RS256")
      token = await new jose.SignJWT({}).setProtectedHeader({ alg: "RS256" }).setSubject(`user_${m.userId}`).setExpirationTime("2h").sign(key)
      for (let i = 0; i < count; i++) managers.push(new Manager(url, { transports: ["websocket"], reconnection: false, autoConnect: false }))
      process.send!({ type: "ready" } satisfies FromChild)
    }
    if (m.type === "connect") process.send!({ type: "connected", count: await connectAll(m.namespace) } satisfies FromChild)
    if (m.type === "expect") expecting = { marker: m.marker, times: [] }
  })
}

// ---------------------------------------------------------------------------------------------

/** Runs the benchmark and returns its rows (also used by `bench/run.ts`). */
export const runRealtimeBench = async (options: RealtimeBenchOptions = {}): Promise<ReadonlyArray<BenchRow>> => {
  const log = options.log ?? (() => {})
  const rates = options.rates ?? [100, 1_000]
  const seconds = options.seconds ?? 5
  const postgres = options.postgres ?? existsSync(`${process.env["CLERK_SYNC_PG_BIN"] ?? "/usr/lib/postgresql/15/bin"}/postgres`)
  const rows: Array<BenchRow> = []
  rows.push(...await latency("memory", rates, seconds, log))
  if (postgres) rows.push(...await latency("postgres", rates, seconds, log))
  rows.push(...await fanout(options.fanout ?? [1_000, 10_000], options.rounds ?? 5, log))
  return rows
}

const format = (rows: ReadonlyArray<BenchRow>): string =>
  rows.map((row) => {
    const figure = row.unit === "ms" ? `${row.value.toFixed(1)} ms` : `${row.value.toFixed(1)} KiB`
    const ratio = row.vsBaseline === undefined ? "" : `  (${row.vsBaseline.toFixed(2)}× baseline)`
    return `${row.name.padEnd(78)} ${figure.padStart(11)}${ratio}`
  }).join("\n")

const role = process.argv.find((a) => a.startsWith("--role="))?.slice(7)
if (role === "latency-driver") await latencyDriver()
else if (role === "fanout-clients") await fanoutClients()
else if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes("--quick")
  console.log(`realtime bench, Node ${process.version}, ${quick ? "quick" : "full"} run`)
  const rows = await runRealtimeBench({
    log: (line) => console.log(line),
    ...(quick ? { seconds: 2, fanout: [1_000], rounds: 3 } : {}),
    ...(process.argv.includes("--no-postgres") ? { postgres: false } : {}),
    ...(process.argv.includes("--no-fanout") ? { fanout: [] } : {})
  })
  console.log(format(rows))
  process.exit(0)
}
