import { Result } from "effect"
import * as fc from "fast-check"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "vitest"
import { ClerkEvent } from "@clerk-sync/core"

const dir = join(import.meta.dirname, "fixtures")
const files = [
  ...readdirSync(dir).filter((f) => f.endsWith(".json") && !f.startsWith("_")).map((f) => join(dir, f)),
  ...readdirSync(join(dir, "legacy")).map((f) => join(dir, "legacy", f))
]
const decodeFile = (file: string) => ClerkEvent.decodeJson(readFileSync(file, "utf8"))
const ok = (r: Result.Result<ClerkEvent.ClerkEvent, ClerkEvent.ClerkEventDecodeError>) => {
  if (Result.isFailure(r)) assert.fail(r.failure.message)
  return r.success
}
const fixture = (name: string) => JSON.parse(readFileSync(join(dir, name), "utf8"))

describe("ClerkEvent.decode", () => {
  it.each(files.map((f) => [f.slice(dir.length + 1), f]))("decodes the Clerk example %s", (_, file) => {
    const event = ok(decodeFile(file))
    assert.notStrictEqual(event._tag, "Unhandled")
    assert.isAbove(event.timestamp, 1e12, "timestamps are milliseconds")
  })

  it("decodes every example of Clerk's spec: synced types as events, the others as Unhandled", () => {
    const all: Record<string, unknown> = fixture("_all_openapi_examples.json")
    let unhandled = 0
    for (const [type, example] of Object.entries(all)) {
      if (example === null) continue // the spec has no example for this type
      const event = ok(ClerkEvent.decode(example))
      assert.strictEqual(event.type, type)
      const handled = (ClerkEvent.HANDLED_TYPES as ReadonlyArray<string>).includes(type)
      assert.strictEqual(event._tag !== "Unhandled", handled, type)
      if (!handled) unhandled++
    }
    assert.isAbove(unhandled, 5)
  })

  it("normalizes users: primary email by id, image, metadata, millisecond times", () => {
    const body = fixture("legacy/user.created.clerk-docs-overview.json")
    body.data.email_addresses.unshift({ id: "idn_other", email_address: "other@example.org" })
    const event = ok(ClerkEvent.decode(body))
    assert.strictEqual(event._tag, "UserUpserted")
    if (event._tag !== "UserUpserted") return
    assert.deepStrictEqual(event.user, {
      clerkUserId: "user_29w83sxmDNGwOuEthce5gg56FcC",
      email: "example@example.org",
      firstName: "Example",
      lastName: "Example",
      username: null,
      imageUrl: "https://img.clerk.com/xxxxxx",
      publicMetadata: {},
      createdAt: 1654012591514,
      updatedAt: 1654012591835
    })
  })

  it("has no email when the primary address is not in the list (Clerk's own example)", () => {
    const event = ok(decodeFile(join(dir, "user.created.json")))
    assert.strictEqual(event._tag === "UserUpserted" && event.user.email, null)
  })

  it("scales second timestamps to milliseconds", () => {
    const event = ok(decodeFile(join(dir, "user.deleted.json")))
    assert.strictEqual(event.timestamp, 1716883200000)
  })

  it("normalizes legacy roles and fills system permissions", () => {
    const event = ok(decodeFile(join(dir, "legacy/organizationMembership.created.legacy-catalog.json")))
    if (event._tag !== "MembershipUpserted") return assert.fail(event._tag)
    assert.strictEqual(event.membership.role, "org:admin")
    assert.include(event.membership.permissions, "org:sys_memberships:manage")
    assert.strictEqual(event.membership.organization.imageUrl, "https://img.clerk.com/xxxxxx")
    assert.strictEqual(event.membership.user.clerkUserId, "user_29w83sxmDNGwOuEthce5gg56FcC")
  })

  it("drops event_attributes (client IP and user agent) and private metadata", () => {
    const event = ok(decodeFile(join(dir, "organizationMembership.created.json")))
    const text = JSON.stringify(event)
    assert.notInclude(text, "192.168.1.100")
    assert.notInclude(text, "Mozilla")
    assert.notInclude(text, "private_metadata")
  })

  it("tolerates extra fields", () => {
    const body = fixture("organization.created.json")
    body.data.some_future_field = { nested: [1, 2] }
    body.brand_new_envelope_field = true
    assert.strictEqual(ok(ClerkEvent.decode(body))._tag, "OrganizationUpserted")
  })

  it("names the path of a missing or mistyped field", () => {
    const body = fixture("organizationMembership.updated.json")
    delete body.data.public_user_data.user_id
    body.data.role = 7
    const r = ClerkEvent.decode(body)
    assert.isTrue(Result.isFailure(r))
    if (Result.isSuccess(r)) return
    const paths = r.failure.issues.map((i) => i.path.join("."))
    assert.includeMembers(paths, ["data.public_user_data.user_id", "data.role"])
    assert.strictEqual(r.failure.eventType, "organizationMembership.updated")
    assert.include(r.failure.message, "data.role")
  })

  it("refuses non-objects, missing ids and huge ids with a typed error", () => {
    const bad: Array<unknown> = [
      null, 42, "user.created", [], {}, { type: "user.created" },
      { type: "user.created", timestamp: 1, data: null },
      { type: "user.deleted", timestamp: 1, data: {} },
      { type: "user.deleted", timestamp: 1, data: { id: "" } },
      { type: "user.deleted", timestamp: -5, data: { id: "user_1" } },
      { type: "user.deleted", timestamp: 1, data: { id: "u".repeat(10_000) } },
      { type: "organization.updated", timestamp: 1, data: { id: "org_1", name: "x".repeat(1_000_000), updated_at: "yesterday" } }
    ]
    for (const input of bad) {
      const r = ClerkEvent.decode(input)
      assert.isTrue(Result.isFailure(r), JSON.stringify(input)?.slice(0, 80))
      if (Result.isFailure(r)) assert.strictEqual(r.failure._tag, "ClerkEventDecodeError")
    }
  })

  it("never echoes field values in the error message", () => {
    const r = ClerkEvent.decode({ type: "user.updated", timestamp: 1, data: { id: "user_1", first_name: { secret: "hunter2" }, updated_at: 1 } })
    if (Result.isSuccess(r)) return assert.fail("expected a failure")
    assert.notInclude(r.failure.message, "hunter2")
  })

  it("never throws on arbitrary JSON", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ type: fc.constantFrom(...ClerkEvent.HANDLED_TYPES), timestamp: fc.anything(), data: fc.jsonValue() })), (input) => {
        const r = ClerkEvent.decode(input)
        assert.isTrue(Result.isSuccess(r) || r.failure._tag === "ClerkEventDecodeError")
      }),
      { numRuns: 2000 }
    )
    fc.assert(fc.property(fc.string(), (text) => {
      assert.isDefined(ClerkEvent.decodeJson(text))
    }), { numRuns: 1000 })
  })
})
