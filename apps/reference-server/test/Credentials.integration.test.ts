/**
 * Organization-scoped encrypted credentials (the seeds' `seller_accounts`): an organization admin
 * stores credentials, members list them without secrets, other organizations see nothing, and the
 * database holds only ciphertext bound to its organization.
 */
import { ClerkSimulator } from "@clerk-sync/core"
import { createTestDatabase, type TestDatabase } from "@clerk-sync/adapter-postgres/testing"
import * as jose from "jose"
import pg from "pg"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type ServerProcess, startServer } from "./utils/ServerProcess.ts"
import { deliver } from "./utils/Signed.ts"

let server: ServerProcess
let db: TestDatabase
let sign: (sub: string) => Promise<string>
let foreign: (sub: string) => Promise<string>

const clerk = new ClerkSimulator.ClerkSimulator({ startAt: Date.now() - 60_000 })
const alice = clerk.createUser({ firstName: "Alice", email: "alice@acme.test" }) // acme admin
const bob = clerk.createUser({ firstName: "Bob" }) // acme member
const carol = clerk.createUser({ firstName: "Carol" }) // globex admin
const dave = clerk.createUser({ firstName: "Dave" }) // left acme
const acme = clerk.createOrganization({ name: "Acme" })
const globex = clerk.createOrganization({ name: "Globex" })
clerk.tick().addMember(alice, acme, "org:admin")
clerk.addMember(bob, acme)
clerk.addMember(carol, globex, "org:admin")
clerk.addMember(dave, acme, "org:admin")
clerk.tick().removeMember(dave, acme)

const SECRET = { refreshToken: "Atzr|super-secret-refresh-token", clientSecret: "amzn1.oa2-cs.v1.very-secret" }

beforeAll(async () => {
  const keys = await jose.generateKeyPair("RS256", { extractable: true })
  const other = await jose.generateKeyPair("RS256", { extractable: true })
  const signer = (key: CryptoKey) => (sub: string) =>
    new jose.SignJWT({ sid: "sess_1" }).setProtectedHeader({ alg: "RS256" }).setSubject(sub).setIssuedAt().setExpirationTime("5m").sign(key)
  sign = signer(keys.privateKey)
  foreign = signer(other.privateKey)
  db = await createTestDatabase()
  server = await startServer({ env: { DATABASE_URL: db.url, CLERK_JWT_KEY: await jose.exportSPKI(keys.publicKey) } })
  const results = await deliver(server.url, server.webhookSecret(), clerk.events)
  assert.isTrue(results.every((r) => r.status === 200))
}, 180_000)

afterAll(async () => {
  await server?.stop()
  await db?.drop()
})

const api = async (path: string, token: string | null, init: { method?: string; body?: unknown } = {}) => {
  const res = await fetch(`${server.url}${path}`, {
    method: init.method ?? "GET",
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
    ...(init.body === undefined ? {} : { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) })
  })
  const text = await res.text()
  return { status: res.status, text, json: text.startsWith("{") ? JSON.parse(text) : null }
}

describe("organization credentials API", () => {
  let acmeId: string

  it("lets an organization admin store credentials, answering without the secret", async () => {
    const created = await api(`/api/organizations/${acme}/credentials`, await sign(alice), {
      method: "POST",
      body: { name: "Amazon EU", marketplace: "A1PA6795UKMFR9", credentials: SECRET }
    })
    assert.strictEqual(created.status, 201, created.text)
    assert.deepInclude(created.json, { name: "Amazon EU", marketplace: "A1PA6795UKMFR9" })
    assert.notInclude(created.text, "super-secret")
    acmeId = created.json.id
  })

  it("lets members list them without secrets", async () => {
    const listed = await api(`/api/organizations/${acme}/credentials`, await sign(bob))
    assert.strictEqual(listed.status, 200)
    assert.deepStrictEqual(listed.json.credentials.map((c: { name: string }) => c.name), ["Amazon EU"])
    assert.notInclude(listed.text, "super-secret")
    assert.notInclude(listed.text, "v1.", "not even the ciphertext")
  })

  it("refuses members who are not admins, former members, other organizations and bad tokens", async () => {
    const body = { name: "x", credentials: { a: 1 } }
    assert.strictEqual((await api(`/api/organizations/${acme}/credentials`, await sign(bob), { method: "POST", body })).status, 403)
    assert.strictEqual((await api(`/api/organizations/${acme}/credentials`, await sign(dave))).json.error, "not_a_member")
    assert.strictEqual((await api(`/api/organizations/${acme}/credentials`, await sign(carol))).status, 403)
    assert.strictEqual((await api(`/api/organizations/${acme}/credentials/${acmeId}/verify`, await sign(carol), { method: "POST" })).status, 403)
    assert.strictEqual((await api(`/api/organizations/${acme}/credentials`, null)).status, 401)
    assert.strictEqual((await api(`/api/organizations/${acme}/credentials`, await foreign(alice))).json.error, "invalid_signature")
    assert.strictEqual((await api(`/api/organizations/${acme}/credentials`, await sign("user_unknown"))).json.error, "not_synced_yet")
    assert.strictEqual((await api(`/api/organizations/${acme}/credentials`, await sign(alice), { method: "POST", body: "{nope" })).status, 400)
  })

  it("shows another organization only its own credentials", async () => {
    const created = await api(`/api/organizations/${globex}/credentials`, await sign(carol), { method: "POST", body: { name: "Globex US", credentials: { token: "globex-secret" } } })
    assert.strictEqual(created.status, 201)
    const listed = await api(`/api/organizations/${globex}/credentials`, await sign(carol))
    assert.deepStrictEqual(listed.json.credentials.map((c: { name: string }) => c.name), ["Globex US"])
    // An Acme credential id asked for through Globex is not found: every query filters by organization.
    assert.strictEqual((await api(`/api/organizations/${globex}/credentials/${acmeId}/verify`, await sign(carol), { method: "POST" })).status, 404)
  })

  it("stores only ciphertext, bound to its organization", async () => {
    const verified = await api(`/api/organizations/${acme}/credentials/${acmeId}/verify`, await sign(alice), { method: "POST" })
    assert.deepStrictEqual(verified.json, { ok: true, fields: ["clientSecret", "refreshToken"] })

    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    try {
      const { rows } = await client.query("SELECT id, organization_id, credentials FROM clerk_sync.seller_accounts")
      assert.strictEqual(rows.length, 2)
      for (const row of rows) {
        assert.match(row.credentials, /^v1\./)
        assert.notInclude(row.credentials, "secret")
      }
      const dump = JSON.stringify((await client.query("SELECT * FROM clerk_sync.seller_accounts")).rows)
      assert.notInclude(dump, "super-secret")
      // Copy Globex's ciphertext into Acme's row: it must not decrypt under Acme's context.
      const globexRow = rows.find((r) => r.id !== acmeId)!
      await client.query("UPDATE clerk_sync.seller_accounts SET credentials = $1 WHERE id = $2", [globexRow.credentials, acmeId])
    } finally {
      await client.end()
    }
    const swapped = await api(`/api/organizations/${acme}/credentials/${acmeId}/verify`, await sign(alice), { method: "POST" })
    assert.strictEqual(swapped.status, 500)
    assert.strictEqual(swapped.json.error, "cipher_error")
    assert.notInclude(swapped.text, "globex-secret")
    assert.notInclude(server.output(), "super-secret")
    assert.notInclude(server.output(), "globex-secret")
  })
})
