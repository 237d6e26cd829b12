import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { SyncStore } from "@clerk-sync/core"
import { Backfill } from "@clerk-sync/backfill"
import { FakeClerkApi } from "./utils/FakeClerkApi.ts"
import { assertMatchesClerk, memoryLayers, populate } from "./utils/Instance.ts"

const withFake = <A, E, R>(instance: ReturnType<typeof populate>, f: (fake: FakeClerkApi) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => FakeClerkApi.start(instance.simulator)),
    f,
    (fake) => Effect.promise(() => fake.close())
  )

describe("Backfill", () => {
  it.live("fills an empty store with thousands of users, organizations and memberships", () => {
    const instance = populate({ users: 2_000, organizations: 200, memberships: 5_000, existingEvery: 10 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const summary = yield* Backfill.run()
        yield* assertMatchesClerk(instance.simulator)
        assert.deepStrictEqual(summary.counts.user, { fetched: 2_000, applied: 2_000, unchanged: 0, duplicate: 0, failed: 0 })
        assert.deepStrictEqual(summary.counts.organization, { fetched: 200, applied: 200, unchanged: 0, duplicate: 0, failed: 0 })
        assert.deepStrictEqual(summary.counts.membership, { fetched: 5_000, applied: 5_000, unchanged: 0, duplicate: 0, failed: 0 })
        assert.isFalse(summary.resumed)
        // 500 per page, 10 re-read per later page: users 5 pages, organizations 1, memberships 11.
        assert.strictEqual(summary.requests, 5 + 1 + 11)
        assert.strictEqual(fake.requests, summary.requests)
        assert.strictEqual(fake.objectsServed(), 2_000 + 200 + 5_000 + 10 * (4 + 0 + 10))
        console.info(`backfill: ${summary.fetchedNow} objects in ${summary.durationMs} ms (${Math.round(summary.objectsPerSecond)}/s)`)
      }).pipe(Effect.provide(memoryLayers(fake))))
  })

  it.live("a second run is a new pass that only reads: every object is already current, nothing is written", () => {
    const instance = populate({ users: 300, organizations: 20, memberships: 400 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        yield* Backfill.run({ pageSize: 100 })
        const before = yield* (yield* SyncStore.SyncStore).counts
        const again = yield* Backfill.run({ pageSize: 100 })
        assert.isFalse(again.resumed)
        assert.deepStrictEqual(again.counts.user, { fetched: 300, applied: 0, unchanged: 300, duplicate: 0, failed: 0 })
        assert.strictEqual(again.counts.membership.unchanged, 400)
        const after = yield* (yield* SyncStore.SyncStore).counts
        assert.deepStrictEqual(after, before, "not even an inbox row")
        assert.strictEqual(after.outboxPending, before.outboxPending, "no new notifications")
      }).pipe(Effect.provide(memoryLayers(fake))))
  })

  it.live("a changed object is applied on the next pass, the others are already current", () => {
    const instance = populate({ users: 50, organizations: 5, memberships: 40 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        yield* Backfill.run()
        instance.simulator.tick(1000).updateUser(instance.users[3]!, { firstName: "Renamed" })
        instance.simulator.updateOrganization(instance.organizations[1]!, { name: "Renamed Org" })
        const again = yield* Backfill.run()
        assert.deepStrictEqual([again.counts.user.applied, again.counts.user.unchanged], [1, 49])
        assert.deepStrictEqual([again.counts.organization.applied, again.counts.organization.unchanged], [1, 4])
        // Memberships embed the organization, but their own updated_at did not move: current.
        assert.strictEqual(again.counts.membership.unchanged, 40)
        yield* assertMatchesClerk(instance.simulator)
        const row = yield* (yield* SyncStore.SyncStore).findUser(instance.users[3]!)
        assert.strictEqual(Option.getOrThrow(row).firstName, "Renamed")
      }).pipe(Effect.provide(memoryLayers(fake))))
  })

  it.live("notify: false writes no client notifications; the default writes them as webhooks would", () => {
    const instance = populate({ users: 30, organizations: 3, memberships: 20 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const quiet = yield* Effect.gen(function*() {
          yield* Backfill.run({ notify: false })
          return yield* (yield* SyncStore.SyncStore).counts
        }).pipe(Effect.provide(memoryLayers(fake)))
        assert.strictEqual(quiet.outboxPending, 0)
        assert.deepStrictEqual([quiet.users, quiet.organizations, quiet.memberships], [30, 3, 20])
        const loud = yield* Effect.gen(function*() {
          yield* Backfill.run()
          return yield* (yield* SyncStore.SyncStore).counts
        }).pipe(Effect.provide(memoryLayers(fake)))
        assert.strictEqual(loud.outboxPending, 30 + 3 + 20)
      }))
  })

  it.live("only: reads the chosen entities; memberships alone create placeholders that a later pass fills", () => {
    const instance = populate({ users: 40, organizations: 4, memberships: 30 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const store = yield* SyncStore.SyncStore
        const first = yield* Backfill.run({ only: ["membership"], runId: "m" })
        assert.strictEqual(first.counts.user.fetched, 0)
        assert.strictEqual(first.counts.membership.applied, 30)
        const someMember = instance.simulator.liveMemberships()[0]!
        assert.isTrue(Option.getOrThrow(yield* store.findUser(someMember.userId)).placeholder)
        yield* Backfill.run({ only: ["user", "organization"], runId: "uo" })
        assert.isFalse(Option.getOrThrow(yield* store.findUser(someMember.userId)).placeholder)
        yield* assertMatchesClerk(instance.simulator)
      }).pipe(Effect.provide(memoryLayers(fake))))
  })

  it.live("an object the decoder rejects is counted and reported as failed; the rest goes on", () => {
    const instance = populate({ users: 20, organizations: 1, memberships: 0 })
    const broken = instance.simulator.users.get(instance.users[5]!)!
    broken.updatedAt = Number.NaN // serialized as null: no version
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const summary = yield* Backfill.run()
        assert.strictEqual(summary.counts.user.failed, 1)
        assert.strictEqual(summary.counts.user.applied, 19)
        assert.strictEqual(summary.failures.length, 1)
        assert.strictEqual(summary.failures[0]!.eventId, `backfill:user:${broken.id}:none`)
        assert.match(summary.failures[0]!.error, /updated_at/)
        const failed = yield* (yield* SyncStore.SyncStore).listInbox({ status: "failed", limit: 10 })
        assert.strictEqual(failed.length, 1)
      }).pipe(Effect.provide(memoryLayers(fake))))
  })

  it.live("reports progress while it runs and once at the end", () => {
    const instance = populate({ users: 600, organizations: 10, memberships: 100 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const seen: Array<Backfill.Summary["counts"]> = []
        fake.onRequest(() => {
          // slow the API a little so the 20 ms reporter fires mid-run
          const until = Date.now() + 15
          while (Date.now() < until) { /* busy */ }
        })
        yield* Backfill.run({ pageSize: 100, progressInterval: 20, onProgress: (s) => seen.push(s.counts) })
        assert.isAtLeast(seen.length, 3)
        const last = seen[seen.length - 1]!
        assert.strictEqual(last.user.fetched, 600)
        assert.isTrue(seen.some((c) => c.user.fetched > 0 && c.user.fetched < 600), "an intermediate snapshot")
      }).pipe(Effect.provide(memoryLayers(fake))))
  })
})
