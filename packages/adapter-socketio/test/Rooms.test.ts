import { NotificationFactory } from "@clerk-sync/core/testing"
import type { Notification } from "@clerk-sync/core"
import { assert, describe, it } from "@effect/vitest"
import { effectsOf, RoomSet, rewind } from "../src/Rooms.ts"

const f = new NotificationFactory()
const membership = (name: "membership.created" | "membership.deleted", user: string, org: string): Notification.Stored => {
  const base = f.membershipUpdated(user, org)
  const p = base.payload
  if (p.name !== "membership.updated") throw new Error("unreachable")
  return { ...base, payload: { name, membership: p.membership } }
}
const orgDeleted = (org: string): Notification.Stored => {
  const base = f.organizationUpdated(org)
  const p = base.payload
  if (p.name !== "organization.updated") throw new Error("unreachable")
  return { ...base, payload: { name: "organization.deleted", organization: { ...p.organization, deleted: true } } }
}

describe("Rooms", () => {
  it("a membership.created joins before delivery; a membership.deleted leaves after", () => {
    const rooms = new RoomSet("user_a", ["user:user_a"])
    assert.deepStrictEqual(rooms.apply(f.organizationUpdated("org_x")), { deliver: false, changed: false })
    assert.deepStrictEqual(rooms.apply(membership("membership.created", "user_a", "org_x")), { deliver: true, changed: true })
    assert.deepStrictEqual(rooms.apply(f.organizationUpdated("org_x")), { deliver: true, changed: false })
    assert.deepStrictEqual(rooms.apply(membership("membership.deleted", "user_a", "org_x")), { deliver: true, changed: true })
    assert.deepStrictEqual(rooms.apply(f.organizationUpdated("org_x")), { deliver: false, changed: false })
  })

  it("another user's membership does not move this user; it is delivered when in the org", () => {
    const rooms = new RoomSet("user_a", ["user:user_a", "org:org_x"])
    assert.deepStrictEqual(rooms.apply(membership("membership.created", "user_b", "org_x")), { deliver: true, changed: false })
    assert.deepStrictEqual(rooms.apply(membership("membership.created", "user_b", "org_y")), { deliver: false, changed: false })
    assert.deepStrictEqual(rooms.rooms, ["user:user_a", "org:org_x"])
  })

  it("an organization's deletion is delivered, then closes its room", () => {
    const rooms = new RoomSet("user_a", ["user:user_a", "org:org_x"])
    assert.deepStrictEqual(rooms.apply(orgDeleted("org_x")), { deliver: true, changed: true })
    assert.isFalse(rooms.has("org:org_x"))
    assert.deepStrictEqual(effectsOf(orgDeleted("org_y").payload), { close: "org:org_y" })
  })

  it("rewinds the org rooms to a cursor from the user's own notifications after it", () => {
    const after = [
      membership("membership.created", "user_a", "org_new"), // joined after the cursor: not a member then
      membership("membership.deleted", "user_a", "org_left"), // left after the cursor: a member then
      f.membershipUpdated("user_a", "org_kept"), // changed role: a member then
      membership("membership.deleted", "user_a", "org_new"),
      membership("membership.created", "user_a", "org_left") // re-joined: the FIRST change decides
    ]
    const now = ["org:org_kept", "org:org_left", "org:org_untouched"]
    assert.sameMembers([...rewind("user_a", now, after)], ["org:org_left", "org:org_kept", "org:org_untouched"])
    assert.sameMembers([...rewind("user_b", now, after)], now, "another user's notifications do not count")
  })

  it("admin rooms never change", () => {
    const rooms = new RoomSet(null, ["admin"])
    assert.deepStrictEqual(rooms.apply(membership("membership.created", "user_a", "org_x")), { deliver: true, changed: false })
    assert.deepStrictEqual(rooms.rooms, ["admin"])
  })
})
