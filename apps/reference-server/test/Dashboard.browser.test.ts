/**
 * The sync dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * it renders the synced data, and updates live when a webhook arrives, without a reload.
 */
import { ClerkSimulator } from "@clerk-sync/core"
import { existsSync } from "node:fs"
import { type Browser, chromium } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type ServerProcess, startServer } from "./utils/ServerProcess.ts"
import { deliver } from "./utils/Signed.ts"

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"

let server: ServerProcess
let browser: Browser

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (.ci/run does)`)
  ;[server, browser] = await Promise.all([
    startServer(),
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
      await page.waitForFunction(() => document.querySelector("#users")?.textContent?.includes("grace@example.com"), undefined, { timeout: 30_000 })
      assert.strictEqual(await page.textContent("#count-users"), "2")
      assert.strictEqual(await page.textContent("#count-memberships"), "2")
      assert.isFalse(reloaded, "updated in place, not by reloading")
    } finally {
      await page.close()
    }
  }, 120_000)
})
