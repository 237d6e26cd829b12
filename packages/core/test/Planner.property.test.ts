/**
 * The sync rules as properties over generated Clerk histories (users, organizations, memberships
 * with updates, role changes, leaves and re-joins, deletions, same-millisecond events), each
 * checked on at least 1,000 histories.
 */
import { Effect } from "effect"
import * as fc from "fast-check"
import { assert, describe, it } from "vitest"
import { ClerkSimulator, Ingest, MemoryStore, Notification, Role, SyncStore } from "@clerk-sync/core"
import { Canonical, Histories, inOrderState } from "@clerk-sync/core/testing"

const RUNS = 1000

type Delivered = { readonly svixId: string; readonly body: string; readonly type: string }

/** Delivers events one by one on a fresh in-memory store, returning each result and what it notified. */
const deliverAll = (events: ReadonlyArray<Delivered>) =>
  Effect.gen(function*() {
    const store = yield* SyncStore.SyncStore
    const steps: Array<{ event: Delivered; result: Ingest.IngestResult; notified: ReadonlyArray<Notification.Stored> }> = []
    const earlier = yield* store.readOutbox(0, ["admin"], 1_000_000)
    let seen = earlier.length > 0 ? earlier[earlier.length - 1]!.seq : 0
    for (const event of events) {
      const result = yield* Ingest.ingest(event)
      const notified = yield* store.readOutbox(seen, ["admin"], 10_000)
      if (notified.length > 0) seen = notified[notified.length - 1]!.seq
      steps.push({ event, result, notified })
    }
    return steps
  })

const run = <A, E>(effect: Effect.Effect<A, E, SyncStore.SyncStore>) => Effect.runPromise(effect.pipe(Effect.provide(MemoryStore.layer)))

const prop = <A>(arb: fc.Arbitrary<A>, check: (a: A) => Promise<void>) =>
  fc.assert(fc.asyncProperty(arb, check), { numRuns: RUNS })

describe("sync rules (properties, 1,000 histories each)", () => {
  it("convergence: any permutation with any duplicates ends in the state of in-order delivery", () =>
    prop(Histories.historyAndDelivery(), async (h) => {
      const expected = await Effect.runPromise(inOrderState(h))
      const actual = await run(Effect.andThen(deliverAll(h.delivered), Canonical.ofSimulator(h.simulator)))
      assert.deepStrictEqual(actual, expected)
    }))

  it("in-order delivery ends in Clerk's own final state", () =>
    prop(Histories.history(), async ({ simulator }) => {
      const state = await Effect.runPromise(inOrderState({ simulator, events: simulator.events }))
      const announced = new Set(simulator.events.filter((e) => e.type.startsWith("user.")).map((e) => JSON.parse(e.body).data.id))
      for (const u of simulator.users.values()) {
        const row = state.users[u.id] as Record<string, unknown> | undefined
        if (u.deleted && announced.has(u.id)) {
          assert.isNotNull(row?.deletedAt, "deleted users are tombstones")
          assert.isNull(row?.email)
          assert.isNull(row?.firstName)
        } else if (announced.has(u.id)) {
          assert.include(row, { firstName: u.firstName, email: u.email, placeholder: false, deletedAt: null })
        } else if (row) {
          assert.include(row, { placeholder: true, firstName: u.firstName }, "known only through memberships")
        }
      }
      for (const o of simulator.organizations.values()) {
        const row = state.organizations[o.id] as Record<string, unknown>
        assert.include(row, o.deleted ? { name: "" } : { name: o.name, placeholder: false, deletedAt: null })
      }
      const live = simulator.liveMemberships()
      assert.deepStrictEqual(Object.keys(state.memberships).sort(), live.map((m) => `${m.userId}|${m.organizationId}`).sort())
      for (const m of live) assert.strictEqual((state.memberships[`${m.userId}|${m.organizationId}`] as { role: string }).role, Role.normalize(m.role))
    }))

  it("idempotence: delivering everything again changes nothing and notifies nobody", () =>
    prop(Histories.historyAndDelivery(), async (h) => {
      await run(Effect.gen(function*() {
        yield* deliverAll(h.delivered)
        const before = yield* Canonical.ofSimulator(h.simulator)
        const again = yield* deliverAll(h.events)
        assert.isTrue(again.every((s) => s.result.status === "duplicate" && s.notified.length === 0))
        assert.deepStrictEqual(yield* Canonical.ofSimulator(h.simulator), before)
      }))
    }))

  it("no resurrection: once a deletion arrives, the user or organization stays deleted", () =>
    prop(Histories.historyAndDelivery(), async (h) => {
      await run(Effect.gen(function*() {
        const store = yield* SyncStore.SyncStore
        const deleted = new Set<string>()
        for (const event of h.delivered) {
          yield* Ingest.ingest(event)
          const body = JSON.parse(event.body)
          if (event.type === "user.deleted" || event.type === "organization.deleted") deleted.add(body.data.id)
          for (const id of deleted) {
            const row = id.startsWith("user_") ? yield* store.findUser(id) : yield* store.findOrganization(id)
            assert.isTrue(row._tag === "Some" && row.value.deletedAt !== null, `${id} resurrected by ${event.type}`)
          }
        }
        for (const id of deleted) {
          if (id.startsWith("org_")) assert.deepStrictEqual(yield* store.readOutbox(0, [], 1), [])
        }
      }))
    }))

  it("placeholders: real user and organization events override the data embedded in memberships", () =>
    prop(Histories.historyAndDelivery(), async (h) => {
      await run(Effect.gen(function*() {
        const store = yield* SyncStore.SyncStore
        yield* deliverAll(h.delivered)
        const real = new Set(h.events.filter((e) => /^(user|organization)\.(created|updated)$/.test(e.type)).map((e) => JSON.parse(e.body).data.id))
        for (const id of real) {
          const row = id.startsWith("user_") ? yield* store.findUser(id) : yield* store.findOrganization(id)
          assert.isTrue(row._tag === "Some" && !row.value.placeholder, `${id} is still a placeholder`)
        }
        for (const u of h.simulator.users.values()) {
          const row = yield* store.findUser(u.id)
          if (row._tag === "Some" && !u.deleted && real.has(u.id)) assert.strictEqual(row.value.firstName, u.firstName)
        }
      }))
    }))

  it("same-millisecond events are all applied in order (none dropped as stale or as a duplicate)", () =>
    prop(Histories.history(), async ({ simulator }) => {
      await run(Effect.gen(function*() {
        const steps = yield* deliverAll(simulator.events)
        for (const step of steps) {
          const handled = step.event.type !== "session.created"
          assert.strictEqual(step.result.status, handled ? "processed" : "ignored")
          if (handled) assert.isTrue(step.result.applied, `${step.event.type} ${step.event.svixId} was dropped`)
        }
      }))
    }))

  it("same-millisecond updates of one user: the later wins whatever the arrival order, and both count", async () => {
    const clerk = new ClerkSimulator.ClerkSimulator({ startAt: 1_767_225_600_000 })
    const u = clerk.createUser({ firstName: "A" })
    clerk.tick()
    clerk.updateUser(u, { firstName: "B" })
    clerk.updateUser(u, { firstName: "C" }) // same millisecond as B
    const [created, b, c] = clerk.events
    for (const order of [[created!, b!, c!], [created!, c!, b!], [c!, b!, created!]]) {
      const steps = await run(deliverAll(order))
      assert.isTrue(steps.every((s) => s.result.status === "processed"))
      const state = await run(Effect.andThen(deliverAll(order), Canonical.ofSimulator(clerk)))
      assert.strictEqual((state.users[u] as { firstName: string }).firstName, "C")
    }
    const inOrder = await run(deliverAll([created!, b!, c!]))
    assert.deepStrictEqual(inOrder.map((s) => s.notified.map((n) => n.payload.name)), [["user.created"], ["user.updated"], ["user.updated"]])
  })

  it("stale and duplicate events emit no notification", () =>
    prop(Histories.historyAndDelivery(), async (h) => {
      const steps = await run(deliverAll(h.delivered))
      for (const step of steps) {
        if (step.result.status !== "processed" || !step.result.applied) assert.deepStrictEqual(step.notified, [], step.event.type)
      }
    }))

  it("every notification goes to exactly the audiences entitled to it, with client-safe payloads", () =>
    prop(Histories.historyAndDelivery(), async (h) => {
      const steps = await run(deliverAll(h.delivered))
      const emails = [...h.simulator.users.values()].flatMap((u) => (u.email ? [u.email] : []))
      for (const n of steps.flatMap((s) => s.notified)) {
        const p = n.payload
        const text = JSON.stringify(p)
        assert.notInclude(text, "private", "no private metadata")
        assert.notInclude(text, "192.0.2.1", "no IP address")
        switch (p.name) {
          case "user.created":
          case "user.updated":
          case "user.deleted":
            assert.deepStrictEqual(n.audiences, [`user:${p.user.clerkUserId}`, "admin"])
            break
          case "organization.created":
          case "organization.updated":
          case "organization.deleted":
            assert.deepStrictEqual(n.audiences, [`org:${p.organization.clerkOrgId}`, "admin"])
            break
          default:
            assert.deepStrictEqual(n.audiences, [`org:${p.membership.organization.clerkOrgId}`, `user:${p.membership.user.clerkUserId}`, "admin"])
            for (const email of emails) assert.notInclude(text, email, "emails only to the user's own audience")
        }
        if (p.name === "membership.updated") assert.strictEqual(p.role, p.membership.role)
      }
    }))
})
