import { assert, describe, it } from "vitest"
import { Role } from "@clerk-sync/core"

describe("Role", () => {
  it("normalizes legacy and custom roles to Clerk's org: form", () => {
    assert.strictEqual(Role.normalize("admin"), "org:admin")
    assert.strictEqual(Role.normalize("basic_member"), "org:member")
    assert.strictEqual(Role.normalize("guest_member"), "org:guest_member")
    assert.strictEqual(Role.normalize("org:billing"), "org:billing")
    assert.strictEqual(Role.normalize("billing"), "org:billing")
  })

  it("checks roles and permissions; admins hold every system permission", () => {
    const admin = { role: "org:admin", permissions: [] }
    const member = { role: "org:member", permissions: ["org:posts:read"] }
    assert.isTrue(Role.hasRole(admin, "admin"))
    assert.isTrue(Role.hasRole(member, ["org:admin", "basic_member"]))
    assert.isFalse(Role.hasRole(member, "org:admin"))
    assert.isTrue(Role.hasPermission(admin, "org:sys_domains:manage"))
    assert.isFalse(Role.hasPermission(admin, "org:posts:read"))
    assert.isTrue(Role.hasPermission(member, "org:posts:read"))
    assert.isFalse(Role.hasPermission(member, "org:sys_memberships:manage"))
    assert.isTrue(Role.isAdmin(admin))
  })

  it("detects role changes, ignoring spelling", () => {
    assert.deepStrictEqual(Role.change("basic_member", "org:admin"), { previousRole: "org:member", role: "org:admin" })
    assert.isUndefined(Role.change("admin", "org:admin"))
    assert.isUndefined(Role.change(null, "org:admin"))
  })
})
