/**
 * A page's objects are ingested concurrently (so the Postgres store's group commit can share a
 * transaction among them): an interruption then finds part of a page applied, in no particular
 * order. The checkpoint must still never run ahead of what is stored, and the resumed run must
 * neither miss an object nor count one twice.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option } from "effect"
import { MemoryStore, SyncStore } from "@clerk-sync/core"
import { Backfill } from "@clerk-sync/backfill"
import { FakeClerkApi } from "./utils/FakeClerkApi.ts"
import { apiLayer, assertMatchesClerk, populate } from "./utils/Instance.ts"

/**
 * The in-memory store behind a gate: ingests yield first (so concurrent ones really overlap), the
 * gate can hold chosen deliveries for ever, and every ingest that completes is tallied.
 */
const gatedStore = () => {
  const held = new Set<string>()
  let onHeld: (svixId: string) => void = () => {}
  const completed = new Map<string, number>()
  let inFlight = 0
  let maxInFlight = 0
  const layer = Layer.effect(
    SyncStore.SyncStore,
    Effect.map(Effect.service(SyncStore.SyncStore), (inner) =>
      SyncStore.SyncStore.of({
        ...inner,
        ingest: (request, options) =>
          Effect.suspend(() => {
            const id = request.inbox.svixId
            inFlight++
            maxInFlight = Math.max(maxInFlight, inFlight)
            const gate = held.has(id) ? Effect.andThen(Effect.sync(() => onHeld(id)), Effect.never) : Effect.yieldNow
            return gate.pipe(
              Effect.andThen(inner.ingest(request, options)),
              Effect.tap(() => Effect.sync(() => void completed.set(id, (completed.get(id) ?? 0) + 1))),
              Effect.ensuring(Effect.sync(() => void inFlight--))
            )
          })
      }))
  ).pipe(Layer.provideMerge(MemoryStore.layer))
  return {
    layer,
    held,
    completed,
    get maxInFlight() {
      return maxInFlight
    },
    onHeld: (f: (svixId: string) => void) => void (onHeld = f)
  }
}

const userDelivery = (instance: ReturnType<typeof populate>, index: number) => {
  const u = instance.simulator.users.get(instance.users[index]!)!
  return `backfill:user:${u.id}:${u.updatedAt}`
}

describe("Backfill with concurrent ingests", () => {
  it.live("interrupted in the middle of a page, it resumes without missing or counting twice any object", () => {
    const instance = populate({ users: 400, organizations: 10, memberships: 200 }, { idPrefix: "conc" })
    const store = gatedStore()
    // Page 2 (users 100–199) stalls on three of its objects while the others go on around them.
    const stalled = [120, 135, 150].map((i) => userDelivery(instance, i))
    for (const id of stalled) store.held.add(id)
    return Effect.acquireUseRelease(
      Effect.promise(() => FakeClerkApi.start(instance.simulator)),
      (fake) =>
        Effect.gen(function*() {
          const allHeld = yield* Deferred.make<void>()
          const waiting = new Set<string>()
          store.onHeld((id) => {
            waiting.add(id)
            if (waiting.size === stalled.length) Deferred.doneUnsafe(allHeld, Effect.void)
          })
          const first = yield* Effect.forkChild(Backfill.run({ pageSize: 100, concurrency: 8 }))
          yield* Deferred.await(allHeld)
          yield* Fiber.interrupt(first)
          assert.isAbove(store.maxInFlight, 1, "objects of a page were ingested side by side")

          const saved = Option.getOrThrow(yield* Backfill.readCheckpoint("default", "user"))
          assert.deepStrictEqual([saved.cursor.offset, saved.counts.fetched, saved.done], [100, 100, false], "the checkpoint is at the end of page 1")
          const onPage2 = Array.from({ length: 100 }, (_, i) => userDelivery(instance, 100 + i))
          const appliedEarly = onPage2.filter((id) => store.completed.has(id))
          assert.isAbove(appliedEarly.length, 0, "part of page 2 was applied")
          assert.isBelow(appliedEarly.length, 100 - stalled.length, "and part of it was not")
          assert.strictEqual((yield* (yield* SyncStore.SyncStore).counts).users, 100 + appliedEarly.length)

          store.held.clear()
          const resumed = yield* Backfill.run({ pageSize: 100, concurrency: 8 })
          assert.isTrue(resumed.resumed)
          yield* assertMatchesClerk(instance.simulator)
          // Page 2's objects applied before the interruption are found current, not applied again.
          assert.deepStrictEqual(resumed.counts.user, {
            fetched: 400,
            applied: 400 - appliedEarly.length,
            unchanged: appliedEarly.length,
            duplicate: 0,
            failed: 0
          })
          assert.deepStrictEqual(
            [resumed.counts.organization.applied, resumed.counts.membership.applied, resumed.counts.membership.fetched],
            [10, 200, 200]
          )
          for (const [id, n] of store.completed) assert.strictEqual(n, 1, `${id} was ingested once`)
          assert.strictEqual(store.completed.size, 400 + 10 + 200, "every object was ingested")
        }).pipe(Effect.provide(Layer.merge(store.layer, apiLayer(fake)))),
      (fake) => Effect.promise(() => fake.close())
    )
  }, 30_000)

  it.live("a first import checks only its first page for objects already current; a repair checks every page", () => {
    const instance = populate({ users: 300, organizations: 4, memberships: 50 }, { idPrefix: "chk" })
    return Effect.acquireUseRelease(
      Effect.promise(() => FakeClerkApi.start(instance.simulator)),
      (fake) =>
        Effect.gen(function*() {
          const store = yield* SyncStore.SyncStore
          let reads = 0
          const counting = Effect.provideService(SyncStore.SyncStore, SyncStore.SyncStore.of({
            ...store,
            findUser: (id) => Effect.andThen(Effect.sync(() => void reads++), store.findUser(id))
          }))
          const first = yield* Backfill.run({ pageSize: 100, only: ["user"] }).pipe(counting)
          assert.deepStrictEqual(first.counts.user, { fetched: 300, applied: 300, unchanged: 0, duplicate: 0, failed: 0 })
          assert.strictEqual(reads, 100, "page 1 held nothing: pages 2 and 3 go straight to ingest")
          reads = 0
          const before = yield* store.counts
          const again = yield* Backfill.run({ pageSize: 100, only: ["user"] }).pipe(counting)
          assert.deepStrictEqual(again.counts.user, { fetched: 300, applied: 0, unchanged: 300, duplicate: 0, failed: 0 })
          assert.strictEqual(reads, 300, "every page is checked")
          assert.deepStrictEqual(yield* store.counts, before, "nothing written")
        }).pipe(Effect.provide(Layer.merge(MemoryStore.layer, apiLayer(fake)))),
      (fake) => Effect.promise(() => fake.close())
    )
  })
})
