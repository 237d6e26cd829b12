import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option } from "effect"
import { MemoryStore, SyncStore } from "@clerk-sync/core"
import { Backfill } from "@clerk-sync/backfill"
import { FakeClerkApi } from "./utils/FakeClerkApi.ts"
import { apiLayer, assertMatchesClerk, populate } from "./utils/Instance.ts"

const withFake = <A, E, R>(instance: ReturnType<typeof populate>, f: (fake: FakeClerkApi) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => FakeClerkApi.start(instance.simulator)),
    f,
    (fake) => Effect.promise(() => fake.close())
  )

/** Successful list requests for a collection that returned objects. */
const dataRequests = (fake: FakeClerkApi, path: string) =>
  fake.log.filter((r) => r.path === path && r.status === 200 && r.returned > 0).length

const servedMoreThan = (fake: FakeClerkApi, prefix: string, times: number) =>
  [...fake.served].filter(([key, n]) => key.startsWith(prefix) && n > times).length

describe("Backfill interruption and resume", () => {
  it.live("an API outage stops the run; the next run resumes from the checkpoint, re-reading only the overlap", () => {
    const instance = populate({ users: 2_000, organizations: 200, memberships: 5_000 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const store = yield* SyncStore.SyncStore
        // Requests 1 and 2 read user pages 1 and 2; from the 3rd on, Clerk is down.
        fake.failFrom(3, 503)
        const error = yield* Effect.flip(Backfill.run())
        assert.strictEqual(error._tag, "ClerkApiError")
        const saved = Option.getOrThrow(yield* Backfill.readCheckpoint("default", "user"))
        assert.deepStrictEqual([saved.cursor.offset, saved.done, saved.counts.fetched], [990, false, 990])
        assert.strictEqual((yield* store.counts).users, 990)
        assert.isTrue(Option.isNone(yield* Backfill.readCheckpoint("default", "membership")) ||
          !Option.getOrThrow(yield* Backfill.readCheckpoint("default", "membership")).done)

        fake.heal()
        const resumed = yield* Backfill.run()
        assert.isTrue(resumed.resumed)
        assert.deepStrictEqual(resumed.counts.user, { fetched: 2_000, applied: 2_000, unchanged: 0, duplicate: 0, failed: 0 })
        assert.strictEqual(resumed.fetchedNow, 2_000 - 990 + 200 + 5_000)
        yield* assertMatchesClerk(instance.simulator)
        // Over both runs each user was read once, but for the overlap of each later page.
        const userPages = dataRequests(fake, "/v1/users")
        assert.strictEqual(userPages, 5)
        assert.strictEqual(fake.objectsServed("user:"), 2_000 + 10 * (userPages - 1))
        assert.strictEqual(servedMoreThan(fake, "user:", 2), 0)
      }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake, { maxRetries: 2 })))))
  }, 30_000)

  it.live("an interrupted fiber (Ctrl-C) leaves a consistent checkpoint; the next run completes", () => {
    const instance = populate({ users: 1_500, organizations: 100, memberships: 2_000 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        let reached!: () => void
        const fourthRequest = new Promise<void>((resolve) => (reached = resolve))
        fake.onRequest(() => {
          if (fake.requests === 3) reached()
        })
        const fiber = yield* Effect.forkChild(Backfill.run({ pageSize: 200 }))
        yield* Effect.promise(() => fourthRequest)
        yield* Fiber.interrupt(fiber)
        fake.onRequest(null)
        const saved = Option.getOrThrow(yield* Backfill.readCheckpoint("default", "user"))
        const stored = (yield* (yield* SyncStore.SyncStore).counts).users
        assert.isAtLeast(stored, saved.counts.fetched, "the checkpoint never runs ahead of what is stored")
        assert.isAtMost(stored - saved.counts.fetched, 200, "at most the page in flight is applied beyond it")
        assert.isFalse(saved.done)

        const servedBefore = fake.objectsServed("user:")
        const resumed = yield* Backfill.run({ pageSize: 200 })
        assert.isTrue(resumed.resumed)
        yield* assertMatchesClerk(instance.simulator)
        // The second run reads from the checkpoint on, not from the start.
        assert.isAtMost(fake.objectsServed("user:") - servedBefore, 1_500 - saved.counts.fetched + 10 * 9)
        assert.strictEqual(servedMoreThan(fake, "user:", 3), 0)
      }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake)))))
  }, 30_000)

  it.live("users deleted behind the cursor while it walks do not make it skip anyone", () => {
    const instance = populate({ users: 1_200, organizations: 2, memberships: 0 }, { idPrefix: "del" })
    const sim = instance.simulator
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        let next = 0
        fake.onRequest((path) => {
          if (path !== "/v1/users") return
          // Clerk deletes 25 of the oldest users before each request: more than the overlap (10).
          for (let i = 0; i < 25 && next < instance.users.length; i++) sim.deleteUser(instance.users[next++]!)
        })
        const summary = yield* Backfill.run({ pageSize: 100, only: ["user"] })
        const store = yield* SyncStore.SyncStore
        for (const u of sim.users.values()) {
          if (!u.deleted) assert.isTrue(Option.isSome(yield* store.findUser(u.id)), `${u.id} was read`)
        }
        assert.isAbove(summary.requests, dataRequests(fake, "/v1/users") - 1)
        assert.isAbove(fake.log.filter((r) => r.path === "/v1/users").length, Math.ceil(1_200 / 100), "it stepped back")
      }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake)))))
  }, 30_000)

  it.live("restart ignores the checkpoint; an unreadable checkpoint asks for a restart", () => {
    const instance = populate({ users: 50, organizations: 2, memberships: 10 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const store = yield* SyncStore.SyncStore
        yield* store.setCheckpoint(Backfill.checkpointName("default", "user"), JSON.stringify({ v: 1, cursor: { offset: 40, anchor: { id: instance.users[39]!, createdAt: 0 } }, done: false, counts: { fetched: 40, applied: 40, unchanged: 0, duplicate: 0, failed: 0 } }))
        const resumed = yield* Backfill.run()
        assert.isTrue(resumed.resumed)
        assert.strictEqual(resumed.fetchedNow, 10 + 2 + 10, "only the users after the checkpoint were read")
        const restarted = yield* Backfill.run({ restart: true })
        assert.isFalse(restarted.resumed)
        assert.strictEqual(restarted.counts.user.fetched, 50)
        yield* store.setCheckpoint(Backfill.checkpointName("default", "organization"), "{not json")
        const error = yield* Effect.flip(Backfill.run())
        assert.strictEqual(error._tag, "CheckpointError")
        assert.match(error.message, /restart/)
        assert.strictEqual((yield* Backfill.run({ restart: true })).counts.organization.fetched, 2)
      }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake)))))
  })
})
