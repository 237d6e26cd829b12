/**
 * Concurrent ingests of a page on a real PostgreSQL 15 server (group commit, several connections):
 * the same final state as ingesting one object at a time. Memberships are backfilled first, so
 * concurrent memberships of one organization or one user race to create the same placeholder, and
 * the later pass over users and organizations races to replace them.
 */
import { afterAll, beforeAll } from "vitest"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SyncStore } from "@clerk-sync/core"
import { Canonical } from "@clerk-sync/core/testing"
import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { createTestDatabase, type TestDatabase } from "@clerk-sync/adapter-postgres/testing"
import { Backfill } from "@clerk-sync/backfill"
import { FakeClerkApi } from "./utils/FakeClerkApi.ts"
import { apiLayer, assertMatchesClerk, populate, random } from "./utils/Instance.ts"

let database: TestDatabase | undefined
beforeAll(async () => {
  database = await createTestDatabase({ prefix: "backfill_concurrency" })
})
afterAll(() => database?.drop())

describe("Backfill concurrency on PostgreSQL 15", () => {
  it.live("a page ingested 32 objects at a time ends in the same state as one at a time", () => {
    const { simulator, users, organizations } = populate({ users: 240, organizations: 12, memberships: 500, existingEvery: 7 }, { idPrefix: "pgeq" })
    // Objects changed after their creation, so versions differ from one object to the next.
    const rnd = random(5)
    for (let i = 0; i < 150; i++) {
      simulator.tick(1 + rnd(3))
      const m = simulator.liveMemberships()[rnd(500)]
      if (i % 3 === 0) simulator.updateUser(users[rnd(users.length)]!, { firstName: `Changed${i}` })
      else if (i % 3 === 1) simulator.updateOrganization(organizations[rnd(organizations.length)]!, { name: `Renamed ${i}` })
      else if (m !== undefined) simulator.setRole(m.userId, m.organizationId, m.role === "org:admin" ? "org:member" : "org:admin")
    }
    let schemas = 0
    const backfill = (fake: FakeClerkApi, concurrency: number) =>
      Effect.gen(function*() {
        const memberships = yield* Backfill.run({ runId: "memberships", only: ["membership"], pageSize: 100, concurrency })
        const all = yield* Backfill.run({ runId: "all", pageSize: 100, concurrency })
        if (concurrency > 1) yield* assertMatchesClerk(simulator)
        return {
          state: yield* Canonical.ofSimulator(simulator),
          stored: yield* (yield* SyncStore.SyncStore).counts,
          counts: [memberships.counts, all.counts]
        }
      }).pipe(Effect.provide(Layer.merge(
        PostgresStore.layerPg({ connectionString: database!.url, schema: `backfill_conc_${process.pid}_${++schemas}` }),
        apiLayer(fake)
      )))
    return Effect.acquireUseRelease(
      Effect.promise(() => FakeClerkApi.start(simulator)),
      (fake) =>
        Effect.gen(function*() {
          const one = yield* backfill(fake, 1)
          const many = yield* backfill(fake, 32)
          assert.strictEqual(Object.keys(many.state.memberships).length, 500)
          assert.deepStrictEqual(many.state, one.state, "rows and their versions")
          assert.deepStrictEqual(many.stored, one.stored, "row, inbox and outbox counts")
          assert.deepStrictEqual(many.counts, one.counts, "the summaries' counts")
        }),
      (fake) => Effect.promise(() => fake.close())
    )
  }, 120_000)
})
