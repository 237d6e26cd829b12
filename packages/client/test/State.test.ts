import { NotificationFactory } from "@clerk-sync/core/testing"
import { assert, describe, it } from "@effect/vitest"
import { fromSnapshot, type Notification, reduce, roleChanges, type Snapshot } from "../src/index.ts"

const f = new NotificationFactory()
const asClient = (n: ReturnType<typeof f.membershipUpdated>): Notification => ({ ...n.payload, seq: n.seq }) as Notification

const created = (user: string, org: string, role = "org:member"): Notification => {
  const n = asClient(f.membershipUpdated(user, org, role))
  if (n.name !== "membership.updated") throw new Error("unreachable")
  return { name: "membership.created", seq: n.seq, membership: n.membership }
}

describe("state", () => {
  it("follows the user's own memberships, roles and organization names; ignores others'", () => {
    let s = fromSnapshot({ user: null, organizations: [] })
    s = reduce(s, created("user_a", "org_x"), "user_a")
    s = reduce(s, created("user_b", "org_y"), "user_a")
    assert.deepStrictEqual([...s.organizations.keys()], ["org_x"])
    const before = s.organizations
    s = reduce(s, asClient(f.membershipUpdated("user_a", "org_x", "org:admin")), "user_a")
    assert.deepStrictEqual(roleChanges(before, s.organizations), [
      { organizationId: "org_x", organizationName: "org_x", previousRole: "org:member", role: "org:admin" }
    ])
    s = reduce(s, asClient(f.organizationUpdated("org_x", "Renamed")), "user_a")
    assert.strictEqual(s.organizations.get("org_x")!.organization.name, "Renamed")
    assert.strictEqual(s.organizations.get("org_x")!.role, "org:admin")
    const n = asClient(f.membershipUpdated("user_a", "org_x"))
    if (n.name !== "membership.updated") throw new Error("unreachable")
    s = reduce(s, { name: "membership.deleted", seq: n.seq, membership: n.membership }, "user_a")
    assert.strictEqual(s.organizations.size, 0)
  })

  it("builds from a snapshot, and reports net role changes only", () => {
    const m = asClient(f.membershipUpdated("user_a", "org_x", "org:admin"))
    if (m.name !== "membership.updated") throw new Error("unreachable")
    const org = { ...m.membership.organization, publicMetadata: {}, deleted: false }
    const snapshot: Snapshot = { user: null, organizations: [{ organization: org, membership: m.membership }] }
    const s = fromSnapshot(snapshot)
    assert.strictEqual(s.organizations.get("org_x")!.role, "org:admin")
    assert.deepStrictEqual(roleChanges(s.organizations, s.organizations), [])
    assert.deepStrictEqual(roleChanges(new Map(), s.organizations).map((c) => [c.previousRole, c.role]), [[null, "org:admin"]])
    assert.deepStrictEqual(roleChanges(s.organizations, new Map()).map((c) => [c.previousRole, c.role]), [["org:admin", null]])
  })
})
