import { assert, describe, it } from "vitest"
import { ClerkEvent, Plan, Planner } from "@clerk-sync/core"
import { Result } from "effect"

const event = (updatedAt: number, publicMetadata: Record<string, unknown>) => {
  const decoded = ClerkEvent.decode({
    type: "user.updated",
    object: "event",
    timestamp: updatedAt,
    data: { id: "user_1", first_name: "Ada", public_metadata: publicMetadata, updated_at: updatedAt }
  })
  if (Result.isFailure(decoded) || !ClerkEvent.isHandled(decoded.success)) throw new Error("fixture")
  return { event: decoded.success, eventId: `msg_${updatedAt}` }
}

describe("Planner", () => {
  it("sees no change in metadata whose keys come in another order (Postgres jsonb reorders them)", () => {
    const first = Planner.plan(event(1, { plan: "pro", seats: { used: 1, max: 5 } }), Plan.emptySnapshot, Planner.defaultSettings)
    const row = first.users[0]!
    const snapshot: Plan.Snapshot = { ...Plan.emptySnapshot, users: new Map([[row.clerkUserId, row]]) }
    const same = Planner.plan(event(2, { seats: { max: 5, used: 1 }, plan: "pro" }), snapshot, Planner.defaultSettings)
    assert.strictEqual(same.outcome, "applied")
    assert.deepStrictEqual(same.notifications, [], "no user.updated for a reordering")
    const changed = Planner.plan(event(3, { plan: "team", seats: { max: 5, used: 1 } }), snapshot, Planner.defaultSettings)
    assert.deepStrictEqual(changed.notifications.map((n) => n.payload.name), ["user.updated"])
  })
})
