/**
 * Test helpers: a populated Clerk instance (simulator), layers wired to a fake API, and a check
 * that a store holds what Clerk holds.
 */
import { assert } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { ClerkSimulator, MemoryStore, SyncStore } from "@clerk-sync/core"
import { ClerkApi } from "@clerk-sync/backfill"
import type { FakeClerkApi } from "./FakeClerkApi.ts"

export const T0 = Date.UTC(2026, 0, 1)

export interface Sizes {
  readonly users: number
  readonly organizations: number
  readonly memberships: number
  /** Every n-th user exists without a `user.created` webhook (created before the webhook was set up). */
  readonly existingEvery?: number
}

/** A small deterministic generator (mulberry32), so instances are the same on every run. */
export const random = (seed: number) => {
  let state = seed >>> 0
  return (n: number): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296 * n) | 0
  }
}

export interface Instance {
  readonly simulator: ClerkSimulator.ClerkSimulator
  readonly users: ReadonlyArray<string>
  readonly organizations: ReadonlyArray<string>
}

/**
 * Populates a simulator: users, organizations, memberships (roles mixed), a third of the
 * creations sharing their millisecond with the previous one.
 */
export const populate = (sizes: Sizes, options: { readonly idPrefix?: string; readonly seed?: number } = {}): Instance => {
  const simulator = new ClerkSimulator.ClerkSimulator({ startAt: T0, idPrefix: options.idPrefix ?? "" })
  const rnd = random(options.seed ?? 7)
  const users: Array<string> = []
  const organizations: Array<string> = []
  for (let i = 0; i < sizes.users; i++) {
    simulator.tick(rnd(3) === 0 ? 0 : 1)
    const fields = { firstName: `First${i}`, lastName: `Last${i}`, email: `user${i}@example.com` }
    users.push(sizes.existingEvery !== undefined && i % sizes.existingEvery === 0 ? simulator.existingUser(fields) : simulator.createUser(fields))
  }
  for (let i = 0; i < sizes.organizations; i++) {
    simulator.tick(rnd(3) === 0 ? 0 : 1)
    organizations.push(simulator.createOrganization({ name: `Org ${i}` }))
  }
  let made = 0
  for (let attempt = 0; made < sizes.memberships && attempt < sizes.memberships * 4; attempt++) {
    const u = users[rnd(users.length)]!
    const o = organizations[rnd(organizations.length)]!
    if (simulator.memberships.get(`${u}|${o}`)?.live) continue
    simulator.tick(rnd(3) === 0 ? 0 : 1)
    simulator.addMember(u, o, rnd(5) === 0 ? "org:admin" : "org:member")
    made++
  }
  return { simulator, users, organizations }
}

/** A client pointed at the fake, fast: a high rate and short backoffs unless overridden. */
export const apiLayer = (fake: FakeClerkApi, options: Partial<ClerkApi.Options> = {}) =>
  ClerkApi.layer({
    secretKey: fake.secretKey,
    apiUrl: fake.url,
    rate: { limit: 100_000, window: 1_000, burst: 1_000 },
    backoff: 5,
    maxBackoff: 50,
    ...options
  })

export const memoryLayers = (fake: FakeClerkApi, options: Partial<ClerkApi.Options> = {}) =>
  Layer.merge(MemoryStore.layer, apiLayer(fake, options))

/**
 * Asserts the store holds what Clerk holds now: every live user, organization and membership with
 * its fields, and no other live rows.
 */
export const assertMatchesClerk = (simulator: ClerkSimulator.ClerkSimulator) =>
  Effect.gen(function*() {
    const store = yield* SyncStore.SyncStore
    let liveUsers = 0
    for (const u of simulator.users.values()) {
      if (u.deleted) continue
      liveUsers++
      const row = Option.getOrUndefined(yield* store.findUser(u.id))
      assert.isDefined(row, `user ${u.id} is stored`)
      assert.deepStrictEqual(
        [row!.email, row!.firstName, row!.lastName, row!.updatedAt, row!.createdAt, row!.placeholder, row!.deletedAt],
        [u.email, u.firstName, u.lastName, u.updatedAt, u.createdAt, false, null],
        `user ${u.id}`
      )
    }
    let liveOrgs = 0
    for (const o of simulator.organizations.values()) {
      if (o.deleted) continue
      liveOrgs++
      const row = Option.getOrUndefined(yield* store.findOrganization(o.id))
      assert.isDefined(row, `organization ${o.id} is stored`)
      assert.deepStrictEqual([row!.name, row!.slug, row!.updatedAt, row!.placeholder, row!.deletedAt], [o.name, o.slug, o.updatedAt, false, null])
    }
    const live = simulator.liveMemberships()
    for (const m of live) {
      const row = Option.getOrUndefined(yield* store.findMembership(m.userId, m.organizationId))
      assert.isDefined(row, `membership ${m.userId}|${m.organizationId} is stored`)
      assert.deepStrictEqual([row!.role, row!.clerkMembershipId, row!.updatedAt], [m.role, m.id, m.updatedAt])
    }
    const counts = yield* store.counts
    assert.deepStrictEqual(
      [counts.users, counts.organizations, counts.memberships],
      [liveUsers, liveOrgs, live.length],
      "no other live rows"
    )
  })
