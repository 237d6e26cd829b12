import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Backfill, ClerkApi } from "@clerk-sync/backfill"
import { FakeClerkApi, membershipJson, organizationJson, userJson } from "./utils/FakeClerkApi.ts"
import { apiLayer, assertMatchesClerk, memoryLayers, populate } from "./utils/Instance.ts"

const withFake = <A, E, R>(
  instance: ReturnType<typeof populate>,
  f: (fake: FakeClerkApi) => Effect.Effect<A, E, R>,
  options?: Parameters<typeof FakeClerkApi.start>[1]
) =>
  Effect.acquireUseRelease(
    Effect.promise(() => FakeClerkApi.start(instance.simulator, options)),
    f,
    (fake) => Effect.promise(() => fake.close())
  )

describe("ClerkApi against the fake Backend API", () => {
  it("the fake serves the simulator's webhook shapes", () => {
    const { simulator, users, organizations } = populate({ users: 3, organizations: 2, memberships: 0 })
    simulator.addMember(users[0]!, organizations[0]!, "org:admin")
    const dataOf = (i: number) => JSON.parse(simulator.events[i]!.body).data
    assert.deepStrictEqual(userJson(simulator.users.get(users[0]!)!), dataOf(0))
    assert.deepStrictEqual(organizationJson(simulator.organizations.get(organizations[0]!)!), dataOf(3))
    assert.deepStrictEqual(membershipJson(simulator, simulator.liveMemberships()[0]!), dataOf(5))
  })

  it.live("lists oldest first, filters by ids, answers None for what is gone", () => {
    const instance = populate({ users: 30, organizations: 5, memberships: 20 })
    instance.simulator.deleteUser(instance.users[7]!)
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const api = yield* ClerkApi.ClerkApi
        const page = yield* api.list("users", { offset: 0, limit: 10 })
        assert.deepStrictEqual(page.map((u) => u.id), instance.users.slice(0, 7).concat(instance.users.slice(8, 11)))
        assert.isTrue(page.every((u, i) => i === 0 || u.createdAt >= page[i - 1]!.createdAt))
        const orgs = yield* api.list("organizations", { offset: 2, limit: 10 })
        assert.deepStrictEqual(orgs.map((o) => o.id), instance.organizations.slice(2))
        const members = yield* api.list("organization_memberships", { offset: 0, limit: 500 })
        assert.strictEqual(members.length, instance.simulator.liveMemberships().length)
        const some = yield* api.listByIds("user", [instance.users[1]!, instance.users[7]!, "user_nope"])
        assert.deepStrictEqual(some.map((u) => u.id), [instance.users[1]!])
        const someOrgs = yield* api.listByIds("organization", [instance.organizations[4]!])
        assert.deepStrictEqual(someOrgs.map((o) => o.id), [instance.organizations[4]!])
        assert.isTrue(Option.isSome(yield* api.get("user", instance.users[1]!)))
        assert.isTrue(Option.isNone(yield* api.get("user", instance.users[7]!)))
        assert.isTrue(Option.isNone(yield* api.get("organization", "org_nope")))
        assert.isTrue(Option.isNone(yield* api.listOrganizationMemberships("org_nope", { offset: 0, limit: 10 })))
        assert.deepStrictEqual(fake.log.map((r) => r.status).filter((s) => s !== 200 && s !== 404), [])
      }).pipe(Effect.provide(apiLayer(fake))))
  })

  it.live("a wrong secret key fails at once with Unauthorized, never retried, never echoed", () => {
    const instance = populate({ users: 3, organizations: 0, memberships: 0 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(ClerkApi.ClerkApi.use((api) => api.list("users", { offset: 0, limit: 10 })))
        assert.strictEqual(error.reason, "Unauthorized")
        assert.strictEqual(error.status, 401)
        assert.notInclude(error.message, "sk_test_wrong")
        assert.strictEqual(fake.requests, 1)
      }).pipe(Effect.provide(apiLayer(fake, { secretKey: "sk_test_wrong" }))))
  })

  it.live("honours 429 Retry-After: the next request waits the pause out", () => {
    const instance = populate({ users: 5, organizations: 0, memberships: 0 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        fake.inject429(1, 1)
        const api = yield* ClerkApi.ClerkApi
        const page = yield* api.list("users", { offset: 0, limit: 10 })
        assert.strictEqual(page.length, 5)
        assert.deepStrictEqual(fake.log.map((r) => r.status), [429, 200])
        assert.isAtLeast(fake.log[1]!.at - fake.log[0]!.at, 990)
        assert.deepStrictEqual(yield* api.stats, { requests: 2, rateLimited: 1, retries: 0 })
      }).pipe(Effect.provide(apiLayer(fake))))
  })

  it.live("retries server errors with backoff, and gives up with Unavailable", () => {
    const instance = populate({ users: 5, organizations: 0, memberships: 0 })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const api = yield* ClerkApi.ClerkApi
        fake.failNext(2, 503)
        assert.strictEqual((yield* api.list("users", { offset: 0, limit: 10 })).length, 5)
        fake.failNext(10, 500)
        const error = yield* Effect.flip(api.list("users", { offset: 0, limit: 10 }))
        assert.strictEqual(error.reason, "Unavailable")
        assert.strictEqual(error.status, 500)
        assert.deepStrictEqual(yield* api.stats, { requests: 3 + 4, rateLimited: 0, retries: 2 + 3 })
        fake.heal()
      }).pipe(Effect.provide(apiLayer(fake, { maxRetries: 3 }))))
  })

  it("reads Retry-After as seconds or an HTTP date", () => {
    assert.strictEqual(ClerkApi.parseRetryAfter("3", 0), 3_000)
    assert.strictEqual(ClerkApi.parseRetryAfter("0.5", 0), 500)
    assert.strictEqual(ClerkApi.parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000)
    assert.isUndefined(ClerkApi.parseRetryAfter("soon", 0))
    assert.isUndefined(ClerkApi.parseRetryAfter(undefined, 0))
  })
})

describe("Backfill under Clerk's rate limit", () => {
  it.live("stays under an enforced limit: no 429, never more than the limit in any window", () => {
    const instance = populate({ users: 300, organizations: 10, memberships: 60 })
    return withFake(
      instance,
      (fake) =>
        Effect.gen(function*() {
          const summary = yield* Backfill.run({ pageSize: 10, overlap: 2 })
          yield* assertMatchesClerk(instance.simulator)
          assert.strictEqual(summary.rateLimited, 0)
          assert.isAtLeast(summary.requests, 40)
          assert.isAtMost(fake.maxInWindow(1_000), 20)
        }).pipe(Effect.provide(memoryLayers(fake, { rate: { limit: 15, window: 1_000 } }))),
      { enforce: { limit: 20, window: 1_000 } }
    )
  }, 30_000)

  it.live("a client set faster than the instance allows is slowed down by 429s and still completes", () => {
    const instance = populate({ users: 200, organizations: 5, memberships: 30 })
    return withFake(
      instance,
      (fake) =>
        Effect.gen(function*() {
          const summary = yield* Backfill.run({ pageSize: 10, overlap: 2 })
          yield* assertMatchesClerk(instance.simulator)
          assert.isAtLeast(summary.rateLimited, 1)
          assert.strictEqual(fake.log.filter((r) => r.status === 429).length, summary.rateLimited)
          // After each 429 the client waited Retry-After (1 s) before the next request.
          for (let i = 0; i + 1 < fake.log.length; i++) {
            if (fake.log[i]!.status === 429) assert.isAtLeast(fake.log[i + 1]!.at - fake.log[i]!.at, 950)
          }
        }).pipe(Effect.provide(memoryLayers(fake, { rate: { limit: 1_000, window: 1_000, burst: 100 } }))),
      { enforce: { limit: 20, window: 1_000, retryAfterSeconds: 1 } }
    )
  }, 30_000)
})
