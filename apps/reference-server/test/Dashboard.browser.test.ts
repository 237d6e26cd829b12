/**
 * The sync dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * it renders the synced data, and updates live when a webhook arrives, without a reload; it stays
 * live past the expiry of its admin session tokens (seconds long here) and after a server restart.
 */
import { ClerkSimulator } from "@clerk-sync/core"
import { existsSync } from "node:fs"
import { type Browser, chromium } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type ServerProcess, startServer } from "./utils/ServerProcess.ts"
import { deliver } from "./utils/Signed.ts"

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
/** Short enough that a test outlives several tokens; the server accepts each 5 s (clock tolerance) longer. */
const TOKEN_TTL_SECONDS = 2
const SERVER_ENV = { DASHBOARD_TOKEN_TTL_SECONDS: String(TOKEN_TTL_SECONDS) }
const CLOCK_TOLERANCE_SECONDS = 5

const jwtPayload = (token: string): { readonly exp: number; readonly iat: number } =>
  JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as { exp: number; iat: number }

const until = async (condition: () => Promise<boolean>, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the dashboard")
    await new Promise((r) => setTimeout(r, 100))
  }
}

let server: ServerProcess
let browser: Browser

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (.ci/run does)`)
  ;[server, browser] = await Promise.all([
    startServer({ env: SERVER_ENV }),
    chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    })
  ])
}, 180_000)

afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

describe("dashboard in headless Chromium", () => {
  it("renders the synced users, organizations, memberships and events, and updates live", async () => {
    const clerk = new ClerkSimulator.ClerkSimulator({ startAt: Date.now() - 60_000 })
    const ada = clerk.createUser({ firstName: "Ada", lastName: "Lovelace", email: "ada@example.com" })
    const acme = clerk.createOrganization({ name: "Acme Kitchens" })
    clerk.tick().addMember(ada, acme, "org:admin")
    const first = await deliver(server.url, server.webhookSecret(), clerk.events)
    assert.isTrue(first.every((r) => r.status === 200))

    const page = await browser.newPage()
    try {
      const login = await page.goto(`${server.url}/dashboard/test-sync?token=${encodeURIComponent(server.adminToken())}`)
      assert.strictEqual(login?.status(), 200)
      assert.notInclude(page.url(), "token=", "the token leaves the address bar")
      assert.strictEqual(await page.textContent("#count-users"), "1")
      assert.include(await page.textContent("#users"), "ada@example.com")
      assert.include(await page.textContent("#organizations"), "Acme Kitchens")
      assert.include(await page.textContent("#memberships"), "org:admin")
      assert.include(await page.textContent("#events"), "organizationMembership.created")

      // Live: the page subscribed as admin; a webhook now must show up without a reload.
      await page.waitForSelector('#live[data-state="live"]', { timeout: 30_000 })
      let reloaded = false
      page.on("framenavigated", () => (reloaded = true))
      const grace = clerk.tick().createUser({ firstName: "Grace", lastName: "Hopper", email: "grace@example.com" })
      clerk.tick().addMember(grace, acme)
      const second = await deliver(server.url, server.webhookSecret(), clerk.events.slice(3))
      assert.isTrue(second.every((r) => r.status === 200))
      // Two deliveries, two notifications: the page may show the user a moment before the membership.
      await page.waitForFunction(() => document.querySelector("#users")?.textContent?.includes("grace@example.com"), undefined, { timeout: 30_000 })
      await page.waitForFunction(() => document.querySelector("#count-memberships")?.textContent === "2", undefined, { timeout: 30_000 })
      assert.strictEqual(await page.textContent("#count-users"), "2")
      assert.include(await page.textContent("#memberships"), "org:member")
      assert.isFalse(reloaded, "updated in place, not by reloading")
    } finally {
      await page.close()
    }
  }, 120_000)

  it("stays live past its token's expiry, renewing it on the same connection, and after a server restart", async () => {
    const clerk = new ClerkSimulator.ClerkSimulator({ startAt: Date.now() - 60_000, idPrefix: "expiry" })
    const acme = clerk.createOrganization({ name: "Expiry Labs" })
    assert.isTrue((await deliver(server.url, server.webhookSecret(), clerk.events)).every((r) => r.status === 200))
    let sent = clerk.events.length
    const sendMore = async () => {
      const results = await deliver(server.url, server.webhookSecret(), clerk.events.slice(sent))
      sent = clerk.events.length
      assert.isTrue(results.every((r) => r.status === 200))
    }

    const page = await browser.newPage()
    // Engine.IO sessions the page opened: a handshake is a request (polling) or a WebSocket without a `sid`.
    let sessions = 0
    const newSession = (url: string) => {
      const u = new URL(url)
      if (u.pathname.startsWith("/socket.io/") && !u.searchParams.has("sid")) sessions += 1
    }
    page.on("request", (r) => newSession(r.url()))
    page.on("websocket", (ws) => newSession(ws.url()))
    const tokenAnswers: Array<number> = []
    page.on("response", (r) => {
      if (new URL(r.url()).pathname === "/dashboard/api/token") tokenAnswers.push(r.status())
    })
    let reloaded = false
    try {
      await page.goto(`${server.url}/dashboard/test-sync?token=${encodeURIComponent(server.adminToken())}`)
      page.on("framenavigated", () => (reloaded = true))
      await page.waitForSelector('#live[data-state="live"]', { timeout: 30_000 })
      assert.strictEqual(sessions, 1)

      const html = await page.content()
      assert.notInclude(html, server.adminToken())
      const embedded = /"(eyJ[\w-]+\.[\w-]+\.[\w-]+)"/.exec(html)?.[1]
      assert.isDefined(embedded, "the page carries a session token for its first connection")
      const { exp, iat } = jwtPayload(embedded!)
      assert.strictEqual(exp - iat, TOKEN_TTL_SECONDS, "the embedded token is as short-lived as the setting says")

      // Wait until the server no longer accepts the page's first token: without a renewal it
      // would have closed the connection by now.
      const pastExpiry = (exp + CLOCK_TOLERANCE_SECONDS + 1) * 1000 - Date.now()
      await new Promise((r) => setTimeout(r, Math.max(0, pastExpiry)))
      assert.isAtLeast(tokenAnswers.length, 1, "the page asked its server for a fresh token")
      assert.isTrue(tokenAnswers.every((s) => s === 200), `token answers: ${tokenAnswers.join(", ")}`)
      assert.strictEqual(sessions, 1, "renewed on the same connection, not by reconnecting")
      assert.strictEqual(await page.getAttribute("#live", "data-state"), "live")

      clerk.tick().createOrganization({ name: "After Expiry Bakery" })
      await sendMore()
      await page.waitForFunction(() => document.querySelector("#organizations")?.textContent?.includes("After Expiry Bakery"), undefined, { timeout: 30_000 })
      assert.strictEqual(sessions, 1)

      // A restart: the page reconnects by itself, with a token fetched then (the embedded one is long dead).
      const before = tokenAnswers.length
      assert.strictEqual(await server.stop(), 0)
      server = await startServer({ port: server.port, dataDir: server.dataDir, env: SERVER_ENV })
      // Until live on a new session: the old one may still look live for a moment.
      await until(async () => sessions >= 2 && (await page.getAttribute("#live", "data-state")) === "live", 60_000)
      assert.isAbove(tokenAnswers.length, before)
      assert.isTrue(tokenAnswers.every((s) => s === 200), `token answers: ${tokenAnswers.join(", ")}`)

      clerk.tick().updateOrganization(acme, { name: "Expiry Labs Renamed" })
      await sendMore()
      await page.waitForFunction(() => document.querySelector("#organizations")?.textContent?.includes("Expiry Labs Renamed"), undefined, { timeout: 30_000 })
      assert.isFalse(reloaded, "updated in place, not by reloading")
    } finally {
      await page.close()
    }
  }, 180_000)
})
