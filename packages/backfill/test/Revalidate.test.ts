import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { ClerkSimulator, ClerkSync, Ingest, MemoryStore, SyncStore } from "@clerk-sync/core"
import { ClerkBackfill, Revalidate } from "@clerk-sync/backfill"
import { FakeClerkApi } from "./utils/FakeClerkApi.ts"
import { apiLayer, assertMatchesClerk, populate, T0 } from "./utils/Instance.ts"

const withFake = <A, E, R>(simulator: ClerkSimulator.ClerkSimulator, f: (fake: FakeClerkApi) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => FakeClerkApi.start(simulator)),
    f,
    (fake) => Effect.promise(() => fake.close())
  )

const setup = () => {
  const sim = new ClerkSimulator.ClerkSimulator({ startAt: T0, idPrefix: "rv" })
  const user = sim.createUser({ firstName: "Ada", email: "ada@example.com" })
  const org = sim.createOrganization({ name: "Acme" })
  const created = sim.events.slice()
  const stale = sim.tick(10).updateUser(user, { firstName: "Ada (old)" })
  const fresh = sim.tick(10).updateUser(user, { firstName: "Ada Lovelace" })
  const orgStale = sim.tick(10).updateOrganization(org, { name: "Acme (old)" })
  sim.tick(10).updateOrganization(org, { name: "Acme Inc" })
  return { sim, user, org, created, stale, fresh, orgStale }
}

describe("Revalidate", () => {
  it.live("ingests the API's current state for user.updated / organization.updated, under the delivery's svix-id", () => {
    const { created, fresh, org, orgStale, sim, stale, user } = setup()
    return withFake(sim, (fake) =>
      Effect.gen(function*() {
        const store = yield* SyncStore.SyncStore
        for (const e of created) yield* Revalidate.ingest(e)
        assert.strictEqual(fake.requests, 0, "created events are not revalidated by default")
        const result = yield* Revalidate.ingest(stale)
        assert.deepStrictEqual([result.status, result.eventId, result.applied], ["processed", stale.svixId, true])
        assert.strictEqual(Option.getOrThrow(yield* store.findUser(user)).firstName, "Ada Lovelace")
        assert.strictEqual((yield* Revalidate.ingest(stale)).status, "duplicate", "Svix's retry is still a duplicate")
        yield* Revalidate.ingest(orgStale)
        assert.strictEqual(Option.getOrThrow(yield* store.findOrganization(org)).name, "Acme Inc")
        // The webhook of the state already fetched changes nothing visible.
        const outboxBefore = (yield* store.counts).outboxPending
        yield* Revalidate.ingest(fresh)
        assert.strictEqual((yield* store.counts).outboxPending, outboxBefore)
        yield* assertMatchesClerk(sim)
      }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake)))))
  })

  it.live("keeps the payload when the API is older (a lagging replica) or the object is gone (404)", () => {
    const { created, sim, stale, user } = setup()
    const future = JSON.parse(stale.body)
    future.data.updated_at = sim.now + 60_000
    future.data.first_name = "From the future"
    return withFake(sim, (fake) =>
      Effect.gen(function*() {
        const store = yield* SyncStore.SyncStore
        yield* Effect.forEach(created, (e) => Ingest.ingest(e))
        yield* Revalidate.ingest({ svixId: "msg_future", body: JSON.stringify(future) })
        assert.strictEqual(Option.getOrThrow(yield* store.findUser(user)).firstName, "From the future")
        const other = sim.createUser({ firstName: "Bob" })
        const bobUpdated = sim.tick(1).updateUser(other, { firstName: "Bobby" })
        yield* Ingest.ingest(sim.events[sim.events.length - 2]!)
        sim.tick(1).deleteUser(other)
        const result = yield* Revalidate.ingest(bobUpdated)
        assert.isTrue(result.applied)
        assert.strictEqual(Option.getOrThrow(yield* store.findUser(other)).firstName, "Bobby")
        assert.strictEqual(fake.log.at(-1)!.status, 404)
      }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake)))))
  })

  it.live("when the API is down: the payload by default, or StorageUnavailable (503, Svix retries) with onApiError: fail", () => {
    const { created, sim, stale, user } = setup()
    return withFake(sim, (fake) =>
      Effect.gen(function*() {
        const store = yield* SyncStore.SyncStore
        yield* Effect.forEach(created, (e) => Ingest.ingest(e))
        fake.failFrom(1, 503)
        const error = yield* Effect.flip(Revalidate.ingest(stale, { onApiError: "fail" }))
        assert.strictEqual(error._tag, "StorageUnavailable")
        assert.strictEqual(error.operation, "revalidate")
        assert.strictEqual((yield* store.listInbox({ limit: 100 })).filter((e) => e.svixId === stale.svixId).length, 0, "not recorded: a retry can redo it")
        const fallback = yield* Revalidate.ingest(stale)
        assert.strictEqual(fallback.status, "processed")
        assert.strictEqual(Option.getOrThrow(yield* store.findUser(user)).firstName, "Ada (old)")
      }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake, { maxRetries: 1 })))))
  })
})

describe("ClerkBackfill (Promise surface)", () => {
  it.live("backfill, reconcile and a revalidating ingest as async functions, on a store layer", () => {
    const { simulator: sim, users } = populate({ users: 120, organizations: 6, memberships: 80 }, { idPrefix: "pr" })
    return withFake(sim, (fake) =>
      Effect.promise(async () => {
        const backfill = ClerkBackfill.make({ store: MemoryStore.layer, secretKey: fake.secretKey, apiUrl: fake.url, rate: { limit: 10_000, window: 1_000 } })
        try {
          const summary = await backfill.backfill({ pageSize: 50 })
          assert.strictEqual(summary.counts.user.applied, 120)
          sim.deleteUser(users[0]!)
          const report = await backfill.reconcile()
          assert.strictEqual(report.users.missing, 1)
          const updated = sim.tick(1).updateUser(users[1]!, { firstName: "Changed" })
          assert.strictEqual((await backfill.ingest(updated)).status, "processed")
        } finally {
          await backfill.dispose()
        }
      }))
  })

  it.live("on an existing ClerkSync instance: the app reads what the backfill wrote", () => {
    const { simulator: sim, users } = populate({ users: 30, organizations: 2, memberships: 20 }, { idPrefix: "cs" })
    return withFake(sim, (fake) =>
      Effect.promise(async () => {
        const clerkSync = ClerkSync.make(MemoryStore.layer)
        const backfill = ClerkBackfill.make({ clerkSync, secretKey: fake.secretKey, apiUrl: fake.url, rate: { limit: 10_000, window: 1_000 } })
        try {
          await backfill.backfill()
          const user = await clerkSync.getCurrentUser({ userId: users[4]! })
          assert.strictEqual(user.firstName, "First4")
        } finally {
          await backfill.dispose()
          await clerkSync.dispose()
        }
      }))
  })
})
