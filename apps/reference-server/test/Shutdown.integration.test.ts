/**
 * Graceful shutdown: a SIGTERM in the middle of a stream of webhooks stops taking new ones,
 * finishes those in flight, flushes the outbox and exits 0. Every delivery acknowledged with a 200
 * is in the database after a restart; none is answered with a 5xx. Realtime clients connected at
 * that moment (Socket.IO clustered over the same Postgres) are told `shutdown` and do not hold the
 * process open.
 */
import { signWebhook } from "@clerk-sync/adapter-http"
import { ClerkSimulator } from "@clerk-sync/core"
import { createTestDatabase } from "@clerk-sync/adapter-postgres/testing"
import pg from "pg"
import { io } from "socket.io-client"
import { assert, describe, it } from "vitest"
import { startServer } from "./utils/ServerProcess.ts"

/** The exit code, or "still running" when SIGTERM did not end the process (it is then killed). */
const exitOf = async (exit: Promise<number | null>, kill: () => Promise<void>, boundMs: number): Promise<number | null | "still running"> => {
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([exit, new Promise<"still running">((ok) => (timer = setTimeout(() => ok("still running"), boundMs)))])
  clearTimeout(timer)
  if (outcome === "still running") await kill()
  return outcome
}

describe("graceful shutdown", () => {
  it("finishes in-flight webhooks and loses nothing acknowledged", async () => {
    const db = await createTestDatabase()
    const server = await startServer({ env: { DATABASE_URL: db.url } })
    const realtime = io(`${server.url}/clerk-sync`, { auth: { token: server.adminToken() }, transports: ["websocket"], reconnection: false, forceNew: true })
    try {
      const closings: Array<{ readonly code: string }> = []
      realtime.on("clerk-sync:closing", (c: { readonly code: string }) => closings.push(c))
      await new Promise<void>((ok, fail) => {
        realtime.once("clerk-sync:ready", () => ok())
        realtime.once("connect_error", fail)
      })
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: Date.now() - 60_000 })
      for (let i = 0; i < 300; i++) clerk.createUser({ firstName: `U${i}` })
      const secret = server.webhookSecret()
      const outcomes: Array<number | "refused"> = []
      let next = 0
      const sender = async () => {
        while (next < clerk.events.length) {
          const e = clerk.events[next++]!
          try {
            const res = await fetch(`${server.url}/api/webhooks/clerk`, {
              method: "POST",
              headers: { "content-type": "application/json", ...signWebhook({ secret, svixId: e.svixId, body: e.body }) },
              body: e.body
            })
            await res.arrayBuffer()
            outcomes.push(res.status)
          } catch {
            outcomes.push("refused") // the server had stopped taking connections: Svix would retry
          }
        }
      }
      const senders = Array.from({ length: 16 }, sender)
      while (outcomes.length < 60) await new Promise((r) => setTimeout(r, 5))
      const exitCode = exitOf(server.stop(), server.kill, 60_000)
      await Promise.all(senders)
      assert.strictEqual(await exitCode, 0, "SIGTERM ends the process, a realtime client connected or not")
      assert.deepStrictEqual(closings.map((c) => c.code), ["shutdown"], "the realtime client is told why it is disconnected")

      const acknowledged = outcomes.filter((o) => o === 200).length
      assert.isAtLeast(acknowledged, 60)
      assert.deepStrictEqual(outcomes.filter((o) => typeof o === "number" && o >= 500), [], "no 5xx")

      const client = new pg.Client({ connectionString: db.url })
      await client.connect()
      try {
        const inbox = await client.query("SELECT count(*)::int AS n FROM clerk_sync.clerk_webhook_events WHERE status = 'processed'")
        const users = await client.query("SELECT count(*)::int AS n FROM clerk_sync.users")
        assert.isAtLeast(inbox.rows[0].n, acknowledged, "every acknowledged delivery is recorded")
        assert.strictEqual(users.rows[0].n, inbox.rows[0].n, "and applied in the same transaction")
        const pending = await client.query("SELECT count(*)::int AS n FROM clerk_sync.outbox WHERE published_at IS NULL")
        assert.strictEqual(pending.rows[0].n, 0, "the outbox was flushed before exit")
      } finally {
        await client.end()
      }
    } finally {
      realtime.close()
      await server.kill()
      await db.drop()
    }
  }, 180_000)
})
