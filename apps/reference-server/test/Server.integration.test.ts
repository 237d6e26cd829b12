/**
 * The reference server as a process, the way `npm start` runs it: on the embedded PGlite database
 * and on a real PostgreSQL server. Events sent by the CLI show up in the tables and on the
 * dashboard, and survive a restart.
 */
import { createTestDatabase, type TestDatabase } from "@clerk-sync/adapter-postgres/testing"
import { execFile } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { promisify } from "node:util"
import { io } from "socket.io-client"
import { afterAll, assert, describe, it } from "vitest"
import { type ServerProcess, startServer } from "./utils/ServerProcess.ts"

const CLI = resolve(import.meta.dirname, "../bin/clerk-sync.mjs")
const run = promisify(execFile)

const cli = (server: ServerProcess, args: ReadonlyArray<string>) =>
  run(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", CLERK_SYNC_DATA_DIR: server.dataDir, CLERK_SYNC_URL: `${server.url}/api/webhooks/clerk`, ...server.env }
  })

interface State {
  readonly counts: { readonly users: number; readonly organizations: number; readonly memberships: number; readonly inbox: Record<string, number> }
  readonly users: ReadonlyArray<{ readonly email: string | null; readonly name: string }>
  readonly memberships: ReadonlyArray<{ readonly role: string; readonly active: boolean }>
}

const state = async (server: ServerProcess): Promise<State> => {
  const res = await fetch(`${server.url}/dashboard/api/state`, { headers: { authorization: `Bearer ${server.adminToken()}` } })
  assert.strictEqual(res.status, 200)
  return (await res.json()) as State
}

const databases: Array<TestDatabase> = []
afterAll(async () => {
  for (const db of databases) await db.drop()
})

const backends: ReadonlyArray<[string, () => Promise<Record<string, string>>]> = [
  ["embedded PGlite", async () => ({})],
  ["PostgreSQL 15", async () => {
    const db = await createTestDatabase()
    databases.push(db)
    return { DATABASE_URL: db.url }
  }]
]

describe.each(backends)("reference server on %s", (_, makeEnv) => {
  it("starts, takes CLI-signed events, shows them, and keeps them across a restart", async () => {
    const env = await makeEnv()
    const dataDir = mkdtempSync(join(tmpdir(), "clerk-sync-it-"))
    let server = await startServer({ dataDir, env })
    try {
      assert.include(server.output(), "created CLERK_WEBHOOK_SIGNING_SECRET for development")
      const sent = await cli(server, ["send", "--scenario", "demo"])
      const lines = sent.stdout.trim().split("\n")
      assert.strictEqual(lines.length, 17)
      assert.isTrue(lines.every((l) => l.startsWith("200 processed")), sent.stdout)

      const one = await cli(server, ["send", "user.created"])
      assert.match(one.stdout, /^200 processed\s+user\.created/)

      const before = await state(server)
      assert.deepInclude(before.counts, { users: 6, organizations: 2, memberships: 5 })
      assert.strictEqual(before.counts.inbox.processed, 18)
      assert.isTrue(before.users.some((u) => u.email === "ada@example.com" && u.name === "Ada Lovelace"))
      assert.isTrue(before.memberships.some((m) => m.role === "org:admin" && m.active))

      const html = await (await fetch(`${server.url}/dashboard/test-sync`, { headers: { authorization: `Bearer ${server.adminToken()}` } })).text()
      assert.include(html, "ada@example.com")
      assert.include(html, "Acme Kitchens")
      assert.include(html, "Globex Brasserie")

      assert.strictEqual(await server.stop(), 0, "a SIGTERM shuts down cleanly")
      server = await startServer({ dataDir, env })
      assert.notInclude(server.output(), "created CLERK_WEBHOOK_SIGNING_SECRET", "the development secret is kept")
      const after = await state(server)
      assert.deepStrictEqual(after.counts, before.counts)
      const again = await cli(server, ["send", "user.updated"])
      assert.match(again.stdout, /^200 processed/m)
    } finally {
      await server.stop()
    }
  }, 240_000)
})

describe("reference server configuration", () => {
  it("refuses to start in production without its secrets, naming them and nothing else", async () => {
    const error = await startServer({ env: { NODE_ENV: "production" }, timeoutMs: 30_000 }).catch((e: Error) => e)
    assert.instanceOf(error, Error)
    const message = (error as Error).message
    assert.include(message, "CLERK_WEBHOOK_SIGNING_SECRET")
    assert.include(message, "ENCRYPTION_KEY")
    assert.include(message, "ADMIN_TOKEN")
  }, 120_000)

  it("guards the dashboard with the admin token, trading a URL token for a cookie", async () => {
    const server = await startServer()
    try {
      assert.strictEqual((await fetch(`${server.url}/dashboard/test-sync`)).status, 401)
      assert.strictEqual((await fetch(`${server.url}/dashboard/test-sync?token=wrong`)).status, 401)
      assert.strictEqual((await fetch(`${server.url}/dashboard/api/state`, { headers: { authorization: "Bearer nope" } })).status, 401)
      const login = await fetch(`${server.url}/dashboard/test-sync?token=${encodeURIComponent(server.adminToken())}`, { redirect: "manual" })
      assert.strictEqual(login.status, 303)
      const cookie = login.headers.get("set-cookie") ?? ""
      assert.include(cookie, "HttpOnly")
      assert.include(cookie, "SameSite=Strict")
      assert.notInclude(cookie, server.adminToken(), "the cookie is not the token")
      const page = await fetch(`${server.url}/dashboard/test-sync`, { headers: { cookie: cookie.split(";")[0]! } })
      assert.strictEqual(page.status, 200)
      assert.notInclude(await page.text(), server.adminToken(), "the page never carries the admin token")
      const metrics = await (await fetch(`${server.url}/metrics`)).text()
      assert.include(metrics, "clerk_sync_outbox_lag 0")
      assert.include(metrics, "clerk_sync_connected_clients")
    } finally {
      await server.stop()
    }
  }, 120_000)

  it("gives fresh admin session tokens for the dashboard's cookie only, which the realtime endpoint accepts and renews with", async () => {
    const server = await startServer({ env: { DASHBOARD_TOKEN_TTL_SECONDS: "60" } })
    const realtime = [] as Array<ReturnType<typeof io>>
    try {
      const endpoint = `${server.url}/dashboard/api/token`
      const ask = (headers: Record<string, string> = {}, url = endpoint) => fetch(url, { method: "POST", headers })
      assert.strictEqual((await ask()).status, 401, "no cookie")
      assert.strictEqual((await ask({ cookie: "clerk_sync_admin=forged" })).status, 401, "a wrong cookie")
      assert.strictEqual((await ask({ cookie: "clerk_sync_admin=" })).status, 401, "an empty cookie")
      const inUrl = await ask({}, `${endpoint}?token=${encodeURIComponent(server.adminToken())}`)
      assert.strictEqual(inUrl.status, 401, "the admin token in a URL does not work here")
      assert.notInclude(await inUrl.text(), "eyJ")

      const login = await fetch(`${server.url}/dashboard/test-sync?token=${encodeURIComponent(server.adminToken())}`, { redirect: "manual" })
      const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0]!
      assert.match(cookie, /^clerk_sync_admin=./)
      assert.strictEqual((await ask({ cookie: `${cookie}x` })).status, 401, "a tampered cookie")
      assert.strictEqual((await ask({ cookie, "sec-fetch-site": "cross-site" })).status, 403)
      assert.strictEqual((await ask({ cookie, "sec-fetch-site": "same-site" })).status, 403, "a sibling subdomain gets the SameSite cookie too")
      assert.notStrictEqual((await fetch(endpoint, { headers: { cookie } })).status, 200, "POST only")
      const reprocess = (site: string) =>
        fetch(`${server.url}/dashboard/api/reprocess`, { method: "POST", headers: { cookie, accept: "application/json", "sec-fetch-site": site } })
      assert.strictEqual((await reprocess("same-site")).status, 403, "the reprocess button answers only the dashboard's own page")
      assert.strictEqual((await reprocess("same-origin")).status, 200)

      const res = await ask({ cookie, "sec-fetch-site": "same-origin" })
      assert.strictEqual(res.status, 200)
      assert.strictEqual(res.headers.get("cache-control"), "no-store")
      assert.include(res.headers.get("content-type") ?? "", "application/json")
      const text = await res.text()
      assert.notInclude(text, server.adminToken())
      const { token, ttlSeconds } = JSON.parse(text) as { token: string; ttlSeconds: number }
      assert.strictEqual(ttlSeconds, 60)
      const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as { exp: number; iat: number }
      assert.strictEqual(claims.exp - claims.iat, 60)

      // The page embeds one of the same lifetime for its first connection, never the admin token.
      const html = await (await fetch(`${server.url}/dashboard/test-sync`, { headers: { cookie } })).text()
      assert.notInclude(html, server.adminToken())
      const embedded = /"(eyJ[\w-]+\.[\w-]+\.[\w-]+)"/.exec(html)?.[1]
      assert.isDefined(embedded)
      const embeddedClaims = JSON.parse(Buffer.from(embedded!.split(".")[1]!, "base64url").toString("utf8")) as { exp: number; iat: number }
      assert.strictEqual(embeddedClaims.exp - embeddedClaims.iat, 60)

      const socket = io(`${server.url}/clerk-sync`, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true })
      realtime.push(socket)
      const hello = await new Promise<{ identity: { kind: string }; expiresIn: number | null }>((ok, fail) => {
        socket.once("clerk-sync:hello", ok)
        socket.once("connect_error", fail)
      })
      assert.deepStrictEqual(hello.identity, { kind: "admin" })
      assert.isNotNull(hello.expiresIn, "a session token's connection expires, unlike the admin token's")
      assert.isAtMost(hello.expiresIn!, (60 + 5) * 1000)

      // Renewal on the same connection, as the page does before expiry.
      const next = (await (await ask({ cookie })).json()) as { token: string }
      const renewed = (await socket.timeout(10_000).emitWithAck("clerk-sync:refresh", { token: next.token })) as { ok: boolean }
      assert.isTrue(renewed.ok)
      assert.isTrue(socket.connected)
      assert.notInclude(server.output(), token, "session tokens are not logged")
    } finally {
      for (const s of realtime) s.disconnect()
      await server.stop()
    }
  }, 120_000)

  it("answers webhooks it cannot verify with 401 and stores nothing", async () => {
    const server = await startServer()
    try {
      const res = await fetch(`${server.url}/api/webhooks/clerk`, {
        method: "POST",
        headers: { "svix-id": "msg_x", "svix-timestamp": String(Math.floor(Date.now() / 1000)), "svix-signature": "v1,AAAA" },
        body: "{}"
      })
      assert.strictEqual(res.status, 401)
      assert.strictEqual((await state(server)).counts.inbox.processed, 0)
      assert.notInclude(server.output(), server.webhookSecret())
    } finally {
      await server.stop()
    }
  }, 120_000)
})
