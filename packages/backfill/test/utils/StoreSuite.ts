/**
 * The backfill suite run against a real store (`@clerk-sync/adapter-postgres`): one file per
 * backend, so vitest runs them side by side.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import type { ClerkSimulator } from "@clerk-sync/core"
import type { PostgresStore } from "@clerk-sync/adapter-postgres"
import { Backfill, Reconcile } from "@clerk-sync/backfill"
import { FakeClerkApi } from "./FakeClerkApi.ts"
import { apiLayer, assertMatchesClerk, populate, type Sizes } from "./Instance.ts"
import { deliver, race } from "./Scenarios.ts"

export interface Backend {
  readonly name: string
  /** A store of its own; `again` makes a second layer on the same data (a process restart). */
  readonly fresh: () => { readonly layer: PostgresStore.StoreLayer; readonly again: () => PostgresStore.StoreLayer }
  /** The size of the "fill an empty database" test, and of the race with webhooks. */
  readonly fill: Sizes
  readonly race: Sizes
}

const withFake = <A, E, R>(simulator: ClerkSimulator.ClerkSimulator, f: (fake: FakeClerkApi) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => FakeClerkApi.start(simulator)),
    f,
    (fake) => Effect.promise(() => fake.close())
  )

export const storeSuite = (backend: Backend) =>
  describe(`Backfill on ${backend.name}`, () => {
    it.live("fills an empty database with thousands of objects", () => {
      const { simulator } = populate({ ...backend.fill, existingEvery: 10 }, { idPrefix: "pgfill" })
      const store = backend.fresh()
      return withFake(simulator, (fake) =>
        Effect.gen(function*() {
          const summary = yield* Backfill.run()
          assert.deepStrictEqual(
            [summary.counts.user.applied, summary.counts.organization.applied, summary.counts.membership.applied],
            [backend.fill.users, backend.fill.organizations, backend.fill.memberships]
          )
          yield* assertMatchesClerk(simulator)
          console.info(`${backend.name}: ${summary.fetchedNow} objects in ${summary.durationMs} ms (${Math.round(summary.objectsPerSecond)}/s)`)
        }).pipe(Effect.provide(Layer.merge(store.layer, apiLayer(fake)))))
    }, 120_000)

    it.live("converges with webhooks delivered concurrently", () =>
      race({
        seed: 11,
        sizes: backend.race,
        store: backend.fresh().layer,
        webhookConcurrency: 8
      }), 120_000)

    it.live("an interrupted run resumes in a new process from the checkpoint in the database", () => {
      const { simulator } = populate({ users: 600, organizations: 10, memberships: 100 }, { idPrefix: "pgres" })
      const store = backend.fresh()
      return withFake(simulator, (fake) =>
        Effect.gen(function*() {
          fake.failFrom(3, 503)
          const error = yield* Effect.flip(Backfill.run({ pageSize: 200 }).pipe(Effect.provide(Layer.merge(store.layer, apiLayer(fake, { maxRetries: 1 })))))
          assert.strictEqual(error._tag, "ClerkApiError")
          fake.heal()
          const resumed = yield* Effect.gen(function*() {
            const saved = Option.getOrThrow(yield* Backfill.readCheckpoint("default", "user"))
            assert.deepStrictEqual([saved.cursor.offset, saved.counts.fetched], [390, 390])
            const summary = yield* Backfill.run({ pageSize: 200 })
            yield* assertMatchesClerk(simulator)
            return summary
          }).pipe(Effect.provide(Layer.merge(store.again(), apiLayer(fake))))
          assert.isTrue(resumed.resumed)
          assert.strictEqual(resumed.fetchedNow, 600 - 390 + 10 + 100)
          assert.strictEqual(fake.objectsServed("user:"), 600 + 10 * 3)
        }))
    }, 120_000)

    it.live("reconcile tombstones what Clerk deleted, by the same rules", () => {
      const { simulator, users, organizations } = populate({ users: 120, organizations: 8, memberships: 100 }, { idPrefix: "pgrec" })
      const synced = simulator.events.length
      simulator.deleteUser(users[5]!)
      simulator.deleteOrganization(organizations[2]!)
      const m = simulator.liveMemberships()[0]!
      simulator.removeMember(m.userId, m.organizationId)
      return withFake(simulator, (fake) =>
        Effect.gen(function*() {
          yield* deliver(simulator.events.slice(0, synced))
          const dry = yield* Reconcile.run()
          assert.deepStrictEqual([dry.users.missing, dry.organizations.missing, dry.memberships.missing], [1, 1, 1])
          const applied = yield* Reconcile.run({ dryRun: false })
          assert.deepStrictEqual([applied.users.changed, applied.organizations.changed, applied.memberships.changed], [1, 1, 1])
          yield* assertMatchesClerk(simulator)
          const again = yield* Reconcile.run({ dryRun: false })
          assert.deepStrictEqual([again.users.missing, again.organizations.missing, again.memberships.missing], [0, 0, 0])
        }).pipe(Effect.provide(Layer.merge(backend.fresh().layer, apiLayer(fake)))))
    }, 120_000)
  })
