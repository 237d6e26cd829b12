import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { ClerkSimulator, Ingest, MemoryStore, SyncStore } from "@clerk-sync/core"
import { Canonical, inOrderState } from "@clerk-sync/core/testing"
import { Deliveries, Reconcile } from "@clerk-sync/backfill"
import { FakeClerkApi } from "./utils/FakeClerkApi.ts"
import { apiLayer, assertMatchesClerk, populate, random } from "./utils/Instance.ts"

const deliver = (events: ReadonlyArray<ClerkSimulator.SimulatedEvent>) =>
  Effect.forEach(events, (e) => Ingest.ingest({ svixId: e.svixId, body: e.body }), { discard: true })

const withFake = <A, E, R>(simulator: ClerkSimulator.ClerkSimulator, f: (fake: FakeClerkApi) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => FakeClerkApi.start(simulator)),
    f,
    (fake) => Effect.promise(() => fake.close())
  )

describe("Reconcile", () => {
  it.live("finds what was deleted while webhooks were down: dry run reports, apply ends it, a second run finds nothing", () => {
    const { organizations, simulator: sim, users } = populate({ users: 500, organizations: 40, memberships: 1_000 }, { idPrefix: "rc" })
    const rnd = random(5)
    const synced = sim.events.length
    // Deleted in Clerk, webhooks lost: 7 users, 2 organizations, 15 memberships.
    const goneUsers = users.filter((_, i) => i % 71 === 3).slice(0, 7)
    for (const u of goneUsers) sim.tick(5).deleteUser(u)
    const goneOrgs = [organizations[4]!, organizations[17]!]
    for (const o of goneOrgs) sim.tick(5).deleteOrganization(o)
    const endedPairs: Array<string> = []
    while (endedPairs.length < 15) {
      const live = sim.liveMemberships()
      const m = live[rnd(live.length)]!
      sim.tick(5).removeMember(m.userId, m.organizationId)
      endedPairs.push(`${m.userId}|${m.organizationId}`)
    }
    const lost = sim.events.slice(synced)

    return withFake(sim, (fake) =>
      Effect.gen(function*() {
        const store = yield* SyncStore.SyncStore
        yield* deliver(sim.events.slice(0, synced))
        const before = yield* store.counts

        const dry = yield* Reconcile.run()
        assert.isTrue(dry.dryRun)
        assert.deepStrictEqual([dry.users.checked, dry.users.missing, dry.users.changed], [500, 7, 0])
        assert.deepStrictEqual([...dry.users.sample].sort(), [...goneUsers].sort())
        assert.deepStrictEqual([dry.organizations.checked, dry.organizations.missing], [40, 2])
        assert.deepStrictEqual([...dry.organizations.sample].sort(), [...goneOrgs].sort())
        assert.strictEqual(dry.memberships.missing, 15, "memberships of deleted users and organizations are not counted twice")
        assert.deepStrictEqual([...dry.memberships.sample].sort(), [...endedPairs].sort())
        assert.deepStrictEqual(yield* store.counts, before, "a dry run writes nothing")

        const applied = yield* Reconcile.run({ dryRun: false })
        assert.deepStrictEqual(
          [applied.users.changed, applied.organizations.changed, applied.memberships.changed],
          [7, 2, 15]
        )
        yield* assertMatchesClerk(sim)
        for (const u of goneUsers) {
          const row = Option.getOrThrow(yield* store.findUser(u))
          assert.isNotNull(row.deletedAt)
          assert.isNull(row.email, "personal data cleared, as for a user.deleted webhook")
        }
        const outbox = yield* store.readOutbox(0, ["admin"], 10_000)
        assert.isTrue(outbox.some((n) => n.payload.name === "user.deleted"))
        assert.isTrue(outbox.some((n) => n.payload.name === "membership.deleted"))

        const again = yield* Reconcile.run({ dryRun: false })
        assert.deepStrictEqual(
          [again.users.missing, again.organizations.missing, again.memberships.missing, again.users.changed],
          [0, 0, 0, 0]
        )

        // The lost webhooks arrive at last: the real (earlier) deletion times replace the ones
        // reconcile used, and the store ends exactly where in-order delivery puts it.
        yield* deliver(lost)
        return yield* Canonical.ofSimulator(sim)
      }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake))))).pipe(
        Effect.flatMap((actual) =>
          Effect.map(inOrderState({ simulator: sim, events: sim.events }), (expected) => assert.deepStrictEqual(actual, expected))
        )
      )
  }, 30_000)

  it.live("never tombstones on a lagging list: an id missing from the list but found by id is kept", () => {
    const { simulator: sim, users, organizations } = populate({ users: 20, organizations: 3, memberships: 10 }, { idPrefix: "lag" })
    return withFake(sim, (fake) =>
      Effect.gen(function*() {
        yield* deliver(sim.events)
        fake.hiddenFromLists.add(users[2]!)
        fake.hiddenFromLists.add(organizations[1]!)
        const report = yield* Reconcile.run({ dryRun: false, only: ["user", "organization"] })
        assert.deepStrictEqual([report.users.missing, report.organizations.missing], [0, 0])
        assert.strictEqual(fake.log.filter((r) => r.path === `/v1/users/${users[2]!}`).length, 1, "confirmed by id")
        yield* assertMatchesClerk(sim)
      }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake)))))
  })

  it.live("leaves rows changed within the grace period alone", () => {
    const sim = new ClerkSimulator.ClerkSimulator({ startAt: Date.now() - 30_000, idPrefix: "grace" })
    const old = sim.createUser({ firstName: "Old" })
    sim.tick(25_000)
    const fresh = sim.createUser({ firstName: "Fresh" })
    const synced = sim.events.length
    sim.deleteUser(old)
    sim.deleteUser(fresh)
    return withFake(sim, (fake) =>
      Effect.gen(function*() {
        yield* deliver(sim.events.slice(0, synced))
        const report = yield* Reconcile.run({ graceMs: 15_000, dryRun: false })
        assert.deepStrictEqual([report.users.missing, report.users.skippedRecent, report.users.changed], [1, 1, 1])
        assert.deepStrictEqual(report.users.sample, [old])
        const store = yield* SyncStore.SyncStore
        assert.isNull(Option.getOrThrow(yield* store.findUser(fresh)).deletedAt)
      }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake)))))
  })

  it.effect("a re-join after the check outranks reconcile's ending, whichever is applied first", () =>
    Effect.gen(function*() {
      const sim = new ClerkSimulator.ClerkSimulator({ startAt: Date.UTC(2026, 0, 1), idPrefix: "rj" })
      const u = sim.createUser({ firstName: "Ada" })
      const o = sim.createOrganization({ name: "Acme" })
      sim.addMember(u, o)
      yield* deliver(sim.events)
      const store = yield* SyncStore.SyncStore
      const member = Option.getOrThrow(yield* store.findMembership(u, o))
      const org = Option.getOrThrow(yield* store.findOrganization(o))
      const user = Option.getOrUndefined(yield* store.findUser(u))
      const checkedAt = sim.now + 60_000
      sim.tick(60_000).removeMember(u, o) // lost
      const rejoin = sim.tick(1).addMember(u, o) // after the check
      yield* Ingest.ingest(rejoin)
      const ending = yield* Ingest.ingest(Deliveries.membershipDeleted(member, org, user, checkedAt))
      assert.isFalse(ending.applied)
      assert.isTrue(Option.isSome(yield* store.findMembership(u, o)))
    }).pipe(Effect.provide(MemoryStore.layer)))

  it.live("only: checks the chosen entities", () => {
    const { simulator: sim, users } = populate({ users: 10, organizations: 2, memberships: 5 }, { idPrefix: "only" })
    return withFake(sim, (fake) =>
      Effect.gen(function*() {
        yield* deliver(sim.events)
        sim.deleteUser(users[0]!)
        const report = yield* Reconcile.run({ only: ["organization"] })
        assert.deepStrictEqual([report.users.checked, report.organizations.checked, report.memberships.checked], [0, 2, 0])
        assert.isTrue(fake.log.every((r) => !r.path.startsWith("/v1/users")))
      }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake)))))
  })
})
