/**
 * Scenarios shared by the in-memory and the Postgres test files.
 */
import { assert } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { type ClerkSimulator, Ingest, type SyncStore } from "@clerk-sync/core"
import { Canonical, inOrderState } from "@clerk-sync/core/testing"
import { Backfill } from "@clerk-sync/backfill"
import { FakeClerkApi } from "./FakeClerkApi.ts"
import { apiLayer, populate, random, type Sizes } from "./Instance.ts"

export const deliver = (events: ReadonlyArray<ClerkSimulator.SimulatedEvent>) =>
  Effect.forEach(events, (e) => Ingest.ingest({ svixId: e.svixId, body: e.body }), { discard: true })

/** Random Clerk activity: updates, role changes, leaves and joins, deletions, new users. */
export const churn = (sim: ClerkSimulator.ClerkSimulator, rnd: (n: number) => number) => {
  const users = [...sim.users.values()].filter((u) => !u.deleted)
  const orgs = [...sim.organizations.values()].filter((o) => !o.deleted)
  const members = sim.liveMemberships()
  sim.tick(rnd(3))
  switch (rnd(8)) {
    case 0:
    case 1: {
      const u = users[rnd(users.length)]
      if (u) sim.updateUser(u.id, { firstName: `Changed${rnd(1000)}` })
      break
    }
    case 2: {
      const o = orgs[rnd(orgs.length)]
      if (o) sim.updateOrganization(o.id, { name: `Renamed ${rnd(1000)}` })
      break
    }
    case 3: {
      const m = members[rnd(members.length)]
      if (m) sim.setRole(m.userId, m.organizationId, m.role === "org:admin" ? "org:member" : "org:admin")
      break
    }
    case 4: {
      const m = members[rnd(members.length)]
      if (m) sim.removeMember(m.userId, m.organizationId)
      break
    }
    case 5: {
      const u = users[rnd(users.length)]
      const o = orgs[rnd(orgs.length)]
      if (u && o && !sim.memberships.get(`${u.id}|${o.id}`)?.live) sim.addMember(u.id, o.id)
      break
    }
    case 6: {
      const u = users[rnd(users.length)]
      if (u && rnd(2) === 0) sim.deleteUser(u.id, { cascade: rnd(2) === 0 })
      else if (orgs.length > 3 && rnd(4) === 0) sim.deleteOrganization(orgs[rnd(orgs.length)]!.id, { cascade: true })
      break
    }
    default:
      sim.createUser({ firstName: `New${rnd(1000)}`, email: `new${sim.users.size}@example.com` })
  }
}

/**
 * A partly synced store (60% of the history delivered, the rest late), a backfill paging through
 * Clerk while Clerk keeps changing (25 changes before every API request) and Svix delivers the late
 * and the new webhooks in random order with duplicates, concurrently. Then everything left is
 * delivered, and the store must equal in-order delivery of all webhooks on a fresh in-memory store.
 */
export const race = <E>(options: {
  readonly seed: number
  readonly sizes: Sizes
  readonly store: Layer.Layer<SyncStore.SyncStore, E>
  readonly webhookConcurrency?: number
}) => {
  const { seed } = options
  const { simulator: sim } = populate(options.sizes, { seed, idPrefix: `r${seed}x` })
  const rnd = random(seed * 7919)
  const before = sim.events.slice()
  const early = before.filter(() => rnd(10) < 6)
  const late = before.filter((e) => !early.includes(e))
  const concurrency = options.webhookConcurrency ?? 4
  return Effect.acquireUseRelease(
    Effect.promise(() => FakeClerkApi.start(sim)),
    (fake) =>
      Effect.gen(function*() {
        yield* deliver(early)
        let delivered = sim.events.length
        const queue: Array<ClerkSimulator.SimulatedEvent> = late.slice()
        fake.onRequest(() => {
          for (let i = 0; i < 25; i++) churn(sim, rnd)
          queue.push(...sim.events.slice(delivered))
          delivered = sim.events.length
        })
        let backfillDone = false
        const webhooks = yield* Effect.forkChild(Effect.gen(function*() {
          while (!backfillDone || queue.length > 0) {
            const batch = queue.splice(0, 1 + rnd(8))
            for (let i = batch.length - 1; i > 0; i--) {
              const j = rnd(i + 1)
              ;[batch[i], batch[j]] = [batch[j]!, batch[i]!]
            }
            if (batch.length > 0 && rnd(4) === 0) batch.push(batch[0]!)
            yield* Effect.forEach(batch, (e) => Ingest.ingest({ svixId: e.svixId, body: e.body }), { concurrency, discard: true })
            yield* Effect.sleep(1)
          }
        }))
        const summary = yield* Backfill.run({ pageSize: 50, overlap: 5, concurrency: 4 })
        backfillDone = true
        fake.onRequest(null)
        queue.push(...sim.events.slice(delivered))
        yield* Fiber.join(webhooks)
        assert.isAbove(summary.counts.user.applied, 0, "the backfill brought something")
        assert.isAbove(sim.events.length, before.length + 100, "Clerk changed a lot during the backfill")
        return yield* Canonical.ofSimulator(sim)
      }).pipe(Effect.provide(Layer.merge(options.store, apiLayer(fake)))),
    (fake) => Effect.promise(() => fake.close())
  ).pipe(
    // Not nested in the provide above: a nested `Effect.provide(MemoryStore.layer)` would reuse
    // the store under test instead of making a fresh one.
    Effect.flatMap((actual) =>
      Effect.map(inOrderState({ simulator: sim, events: sim.events }), (expected) => {
        assert.isAbove(Object.keys(expected.users).length, options.sizes.users)
        assert.deepStrictEqual(actual, expected)
      })
    )
  )
}
