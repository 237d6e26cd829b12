/**
 * A backfill racing live webhooks: whatever the interleaving, the store ends where in-order
 * delivery of all the webhooks alone would have put it (versions included: a backfill copy never
 * displaces a webhook's row).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { ClerkSimulator, Ingest, MemoryStore, SyncStore } from "@clerk-sync/core"
import { Canonical } from "@clerk-sync/core/testing"
import { Backfill, ClerkApi, Deliveries } from "@clerk-sync/backfill"
import { FakeClerkApi, membershipJson, organizationJson, userJson } from "./utils/FakeClerkApi.ts"
import { apiLayer, assertMatchesClerk, populate, random, T0 } from "./utils/Instance.ts"
import { churn, deliver, race } from "./utils/Scenarios.ts"

describe("Backfill racing live webhooks", () => {
  for (const seed of [1, 2, 3]) {
    it.live(`converges to the in-order state of all webhooks (seed ${seed})`, () =>
      race({ seed, sizes: { users: 500, organizations: 40, memberships: 1_000 }, store: MemoryStore.layer }), 60_000)
  }

  it.live("lost webhooks: a backfill alone brings a partly synced store to Clerk's current state", () => {
    const instance = populate({ users: 400, organizations: 30, memberships: 800 }, { idPrefix: "lost" })
    const sim = instance.simulator
    const rnd = random(99)
    for (let i = 0; i < 600; i++) churn(sim, rnd)
    const arrived = sim.events.filter(() => rnd(10) < 5)
    return Effect.acquireUseRelease(
      Effect.promise(() => FakeClerkApi.start(sim)),
      (fake) =>
        Effect.gen(function*() {
          yield* deliver(arrived)
          const summary = yield* Backfill.run({ pageSize: 100 })
          assert.isAbove(summary.counts.user.applied, 0)
          assert.isAbove(summary.counts.user.unchanged, 0, "some were already current")
          // Deletions are not in the API's lists: live rows of deleted objects stay until reconcile.
          const stillLive = [...sim.users.values()].filter((u) => u.deleted)
          for (const u of stillLive) {
            const row = yield* (yield* SyncStore.SyncStore).findUser(u.id)
            if (Option.isSome(row) && row.value.deletedAt === null) {
              // Make the check below about Clerk's live objects only.
              yield* Ingest.ingest(Deliveries.userDeleted(u.id, T0 + 10_000_000))
            }
          }
          for (const o of sim.organizations.values()) {
            if (!o.deleted) continue
            const row = yield* (yield* SyncStore.SyncStore).findOrganization(o.id)
            if (Option.isSome(row) && row.value.deletedAt === null) yield* Ingest.ingest(Deliveries.organizationDeleted(o.id, T0 + 10_000_000))
          }
          yield* endVanishedMemberships(sim)
          yield* assertMatchesClerk(sim)
        }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake)))),
      (fake) => Effect.promise(() => fake.close())
    )
  }, 60_000)
})

/** Ends local live memberships Clerk no longer has (what reconcile does; tested there). */
const endVanishedMemberships = (sim: ClerkSimulator.ClerkSimulator) =>
  Effect.gen(function*() {
    const store = yield* SyncStore.SyncStore
    const live = new Set(sim.liveMemberships().map((m) => `${m.userId}|${m.organizationId}`))
    for (const o of sim.organizations.values()) {
      if (o.deleted) continue
      for (const m of yield* store.listOrganizationMembers(o.id)) {
        if (live.has(`${m.clerkUserId}|${m.clerkOrgId}`)) continue
        const org = Option.getOrThrow(yield* store.findOrganization(o.id))
        yield* Ingest.ingest(Deliveries.membershipDeleted(m, org, Option.getOrUndefined(yield* store.findUser(m.clerkUserId)), T0 + 10_000_000))
      }
    }
  })

describe("Backfill copies against webhooks of the same updated_at", () => {
  const apiObject = (json: unknown) => ClerkApi.toApiObject(json)!

  for (const seconds of [false, true]) {
    it.effect(`either order ends in the same row${seconds ? " (envelope timestamps in seconds)" : ", the webhook's"}`, () =>
      Effect.gen(function*() {
        const sim = new ClerkSimulator.ClerkSimulator({ startAt: T0 + 123, idPrefix: "tie", timestampsInSeconds: seconds })
        const u = sim.createUser({ firstName: "Ada", email: "ada@example.com" })
        const o = sim.createOrganization({ name: "Acme" })
        sim.addMember(u, o, "org:admin")
        const copies = [
          Deliveries.ofObject("user", apiObject(userJson(sim.users.get(u)!))),
          Deliveries.ofObject("organization", apiObject(organizationJson(sim.organizations.get(o)!))),
          Deliveries.ofObject("membership", apiObject(membershipJson(sim, sim.liveMemberships()[0]!)))
        ]
        const webhooksFirst = yield* Effect.gen(function*() {
          yield* deliver(sim.events)
          const results = yield* Effect.forEach(copies, (c) => Ingest.ingest(c))
          return { state: yield* Canonical.ofSimulator(sim), results, outbox: (yield* (yield* SyncStore.SyncStore).counts).outboxPending }
        }).pipe(Effect.provide(MemoryStore.layer))
        const copiesFirst = yield* Effect.gen(function*() {
          yield* Effect.forEach(copies, (c) => Ingest.ingest(c))
          const results = yield* Effect.forEach(sim.events, (e) => Ingest.ingest(e))
          return { state: yield* Canonical.ofSimulator(sim), results, outbox: (yield* (yield* SyncStore.SyncStore).counts).outboxPending }
        }).pipe(Effect.provide(MemoryStore.layer))
        const strip = (state: Canonical.CanonicalState) => JSON.parse(JSON.stringify(state, (k, v) => (k === "version" ? undefined : v)))
        assert.deepStrictEqual(strip(copiesFirst.state), strip(webhooksFirst.state), "the same Clerk state either way")
        assert.strictEqual(copiesFirst.outbox, webhooksFirst.outbox, "and the same notifications: created once, no empty updates")
        if (!seconds) {
          // Webhooks (timestamp >= updated_at, ids "msg_…") outrank copies ("backfill:…"): the copy
          // that arrives second changes nothing, and the webhook arriving second takes its place.
          assert.isTrue(webhooksFirst.results.every((r) => r.status === "processed" && !r.applied))
          assert.deepStrictEqual(copiesFirst.state, webhooksFirst.state)
        }
      }))
  }
})
