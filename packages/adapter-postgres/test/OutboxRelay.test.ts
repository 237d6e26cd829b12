/**
 * The relay primitives: wake-ups (local, and across processes through NOTIFY), coalescing, one
 * leader across processes with fail-over, and the core's relay running on top of them.
 */
import { assert, describe, it } from "@effect/vitest"
import { ClerkSimulator, Ingest, type Notification, Publisher, SyncStore } from "@clerk-sync/core"
import { Deferred, Effect, Fiber, Layer, Option, Schedule } from "effect"
import { OutboxRelay } from "../src/index.ts"
import { backends, freshSchema } from "./utils/backends.ts"

const T0 = 1_767_225_600_000
const SLOW_POLL = { pollInterval: "60 seconds" } as const

const users = (prefix: string, n: number) => {
  const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: prefix, startAt: T0 })
  for (let i = 0; i < n; i++) clerk.createUser({ firstName: `U${i}` })
  return clerk.events
}

const deliver = (events: ReadonlyArray<{ readonly svixId: string; readonly body: string }>, concurrency = 8) =>
  Effect.forEach(events, (e) => Ingest.ingest(e), { concurrency, discard: true })

/** Whether `effect` completes within `ms`. */
const within = (ms: number, effect: Effect.Effect<void>) => Effect.map(Effect.timeoutOption(effect, ms), Option.isSome)

const BACKENDS = backends("relay")

for (const backend of BACKENDS) {
  describe(`OutboxRelay on ${backend.name}`, () => {
    it.live("wakes the relay right after a commit, and a burst of commits wakes it once or twice", () =>
      Effect.gen(function*() {
        const relay = yield* OutboxRelay.OutboxRelay
        // The first wake-up comes when the listener is in place (it may have missed something).
        assert.isTrue(yield* within(10_000, relay.wakeup))
        assert.isFalse(yield* within(200, relay.wakeup), "nothing happened: no wake-up before the fallback poll")
        const waiting = yield* Effect.forkChild(relay.wakeup)
        yield* deliver(users("wake", 1))
        assert.isTrue(yield* within(2_000, Fiber.join(waiting)), "woken by the commit")
        yield* deliver(users("burst", 60), 16)
        yield* Effect.sleep(300) // NOTIFYs of the burst arrive
        let wakeups = 0
        while (yield* within(150, relay.wakeup)) wakeups++
        assert.isAtLeast(wakeups, 1)
        assert.isAtMost(wakeups, 2, `60 commits woke the relay ${wakeups} times`)
      }).pipe(Effect.provide(backend.layer({ relay: SLOW_POLL }))))

    it.live("runs the core's relay: every notification published once, in seq order, then marked", () =>
      Effect.gen(function*() {
        const published: Array<Notification.Stored> = []
        const publisher = Publisher.Publisher.of({ name: "test", publish: (batch) => Effect.sync(() => void published.push(...batch)) })
        const relay = yield* Effect.forkChild(OutboxRelay.runRelay({ batchSize: 7 }).pipe(Effect.provideService(Publisher.Publisher, publisher)))
        yield* deliver(users("pub", 40), 16)
        const store = yield* SyncStore.SyncStore
        while (published.length < 40) yield* Effect.sleep(20)
        yield* Fiber.interrupt(relay)
        const seqs = published.map((n) => n.seq)
        assert.deepStrictEqual(seqs, [...seqs].sort((a, b) => a - b))
        assert.strictEqual(new Set(seqs).size, 40)
        assert.strictEqual((yield* store.counts).outboxPending, 0)
      }).pipe(Effect.provide(backend.layer({ relay: SLOW_POLL }))))

    it.live("lets one relay lead at a time", () =>
      Effect.gen(function*() {
        const relay = yield* OutboxRelay.OutboxRelay
        const leading = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const first = yield* Effect.forkChild(relay.asLeader(Effect.andThen(Deferred.succeed(leading, undefined), Deferred.await(release))))
        yield* Deferred.await(leading)
        const second = yield* Effect.forkChild(relay.asLeader(Effect.succeed("second")))
        assert.isFalse(yield* within(500, Effect.asVoid(Fiber.join(second))), "the second waits while the first leads")
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(first)
        assert.strictEqual(yield* Fiber.join(second), "second")
      }).pipe(Effect.provide(backend.layer({ relay: { leaderRetryInterval: "100 millis" } }))))
  })
}

const postgres = BACKENDS.find((b) => b.concurrent)!

describe("OutboxRelay across processes (PostgreSQL 15)", () => {
  it.live("a commit in one process wakes the relay of another, through NOTIFY", () =>
    Effect.gen(function*() {
      const schema = freshSchema("notify")
      const writer = yield* Layer.build(postgres.layer({ schema, relay: SLOW_POLL }))
      const reader = yield* Layer.build(postgres.layer({ schema, relay: SLOW_POLL, migrate: false }))
      const relay = yield* OutboxRelay.OutboxRelay.pipe(Effect.provide(reader))
      assert.isTrue(yield* within(10_000, relay.wakeup), "listening")
      const waiting = yield* Effect.forkChild(relay.wakeup)
      yield* deliver(users("xproc", 1)).pipe(Effect.provide(writer))
      assert.isTrue(yield* within(3_000, Fiber.join(waiting)), "woken by the other process's commit")
    }).pipe(Effect.scoped))

  it.live("the leader's relay publishes at once what it and what other processes commit", () =>
    Effect.gen(function*() {
      const schema = freshSchema("leadwake")
      const leader = yield* Layer.build(postgres.layer({ schema, relay: SLOW_POLL }))
      const follower = yield* Layer.build(postgres.layer({ schema, relay: SLOW_POLL, migrate: false }))
      const published: Array<Notification.Stored> = []
      const publisher = Publisher.Publisher.of({ name: "test", publish: (batch) => Effect.sync(() => void published.push(...batch)) })
      yield* Effect.forkChild(OutboxRelay.runRelay().pipe(Effect.provideService(Publisher.Publisher, publisher), Effect.provide(leader)))
      const publishedWithin = (n: number, ms: number) =>
        within(ms, Effect.asVoid(Effect.repeat(Effect.sync(() => published.length >= n), { until: (ok) => ok, schedule: Schedule.spaced("20 millis") })))
      yield* deliver(users("own", 3)).pipe(Effect.provide(leader))
      assert.isTrue(yield* publishedWithin(3, 5_000), "the leader's own commits wake its relay")
      yield* deliver(users("other", 3)).pipe(Effect.provide(follower))
      assert.isTrue(yield* publishedWithin(6, 5_000), "a follower's commits wake the leader (NOTIFY)")
      yield* deliver(users("own2", 3)).pipe(Effect.provide(leader))
      assert.isTrue(yield* publishedWithin(9, 5_000))
      assert.deepStrictEqual(published.map((n) => n.seq), [...published.map((n) => n.seq)].sort((a, b) => a - b))
    }).pipe(Effect.scoped))

  it.live("one leader across processes: a leader that loses its connection stops at once; when it dies, another takes over", () =>
    Effect.gen(function*() {
      const schema = freshSchema("lead")
      const options = { schema, relay: { leaderRetryInterval: "100 millis", heartbeatInterval: "200 millis" } } as const
      const a = yield* OutboxRelay.OutboxRelay.pipe(Effect.provide(yield* Layer.build(postgres.layer(options))))
      const b = yield* OutboxRelay.OutboxRelay.pipe(Effect.provide(yield* Layer.build(postgres.layer({ ...options, migrate: false }))))
      // Who leads, and the most that ever led at once.
      const leading = new Set<string>()
      let most = 0
      const lead = (name: string) =>
        Effect.andThen(
          Effect.sync(() => {
            leading.add(name)
            most = Math.max(most, leading.size)
          }),
          Effect.never
        ).pipe(Effect.onInterrupt(() => Effect.sync(() => leading.delete(name))))
      const until = (condition: () => boolean) =>
        within(5_000, Effect.asVoid(Effect.repeat(Effect.sync(condition), { until: (ok) => ok, schedule: Schedule.spaced("20 millis") })))

      const fiberA = yield* Effect.forkChild(a.asLeader(lead("a")))
      assert.isTrue(yield* until(() => leading.has("a")))
      yield* Effect.forkChild(b.asLeader(lead("b")))
      assert.isFalse(yield* within(600, Effect.asVoid(Effect.repeat(Effect.sync(() => leading.has("b")), { until: (ok) => ok, schedule: Schedule.spaced("20 millis") }))), "b waits while a leads")

      // a's connection is cut (a network failure): a stops relaying at once, and the leadership
      // goes to whichever process takes the lock first.
      const killLeader = Effect.promise(() =>
        postgres.query<{ ok: boolean }>(
          // The session holding this schema's leader lock (a bigint advisory key shows in pg_locks
          // as its two 32-bit halves).
          `SELECT pg_terminate_backend(l.pid) AS ok FROM pg_locks l, (SELECT hashtextextended($1, 0) AS k) h
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
            AND l.classid::bigint = ((h.k >> 32) & 4294967295) AND l.objid::bigint = (h.k & 4294967295)`,
          [`clerk-sync:relay:${schema}`]
        )
      )
      assert.deepStrictEqual((yield* killLeader).map((k) => k.ok), [true])
      assert.isTrue(yield* until(() => !leading.has("a") || leading.has("b")), "a stops")
      assert.isTrue(yield* until(() => leading.size === 1), "someone leads again")

      // a's process dies: b leads (at once if it already did, else once a's lock is gone).
      yield* Fiber.interrupt(fiberA)
      assert.isTrue(yield* until(() => leading.has("b")), "b takes over")
      assert.strictEqual(most, 1, "never two leaders at once")
    }).pipe(Effect.scoped))
})
