/**
 * One clerk-sync node, as a process: the Postgres store, Socket.IO clustered over the same Postgres
 * (`@socket.io/postgres-adapter`), and the outbox relay (one leader across nodes). The test drives it
 * over HTTP: `POST /ingest` (deliveries as JSON), `GET /head`.
 *
 * Environment: DATABASE_URL, JWT_KEY (PEM), ADMIN_TOKEN, NODE_NAME. Prints `{"port":…}` when ready.
 */
import { OutboxRelay, PostgresStore } from "@clerk-sync/adapter-postgres"
import { Ingest, Publisher, SyncStore } from "@clerk-sync/core"
import { Effect, ManagedRuntime } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import pg from "pg"
import { attach } from "../../src/SocketIoRealtime.ts"

const url = process.env["DATABASE_URL"]!
const runtime = ManagedRuntime.make(PostgresStore.layerPg({
  connectionString: url,
  poolSize: 4,
  relay: { pollInterval: "1 second", leaderRetryInterval: "200 millis", heartbeatInterval: "1 second" }
}))
const store = await runtime.runPromise(Effect.gen(function*() {
  return yield* SyncStore.SyncStore
}))
const pool = new pg.Pool({ connectionString: url, max: 4 })
pool.on("error", () => {})
const http = createServer()
const realtime = attach(store, {
  httpServer: http,
  postgres: { pool },
  auth: { jwtKey: process.env["JWT_KEY"], adminToken: process.env["ADMIN_TOKEN"] },
  pollIntervalMs: 1_000,
  onError: (message, error) => console.error(`[${process.env["NODE_NAME"]}] ${message}`, error)
})
http.on("request", (req, res) => {
  if (req.url === "/head") return void res.end(JSON.stringify({ head: realtime.head() }))
  if (req.url !== "/ingest" || req.method !== "POST") return
  const chunks: Array<Buffer> = []
  req.on("data", (c: Buffer) => chunks.push(c))
  req.on("end", () => {
    const deliveries = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Array<Ingest.Delivery>
    runtime.runPromise(Effect.forEach(deliveries, (d) => Ingest.ingest(d)))
      .then((results) => res.end(JSON.stringify(results)))
      .catch((error) => res.writeHead(500).end(String(error)))
  })
})
runtime.runFork(OutboxRelay.runRelay().pipe(Effect.provideService(Publisher.Publisher, realtime.publisher)))
await realtime.ready
await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve))
console.log(JSON.stringify({ port: (http.address() as AddressInfo).port }))
const stop = async () => {
  await realtime.close()
  await pool.end().catch(() => {})
  await runtime.dispose()
  process.exit(0)
}
process.on("SIGTERM", () => void stop())
