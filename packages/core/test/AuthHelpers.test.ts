import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { AuthHelpers, ClerkSimulator, ClerkSync, Ingest, MemoryStore } from "@clerk-sync/core"

const clerk = new ClerkSimulator.ClerkSimulator({ startAt: 1_767_225_600_000 })
const alice = clerk.createUser({ firstName: "Alice", email: "alice@example.com" })
const bob = clerk.createUser({ firstName: "Bob" })
const eve = clerk.createUser({ firstName: "Eve" })
const acme = clerk.createOrganization({ name: "Acme" })
const globex = clerk.createOrganization({ name: "Globex" })
const doomed = clerk.createOrganization({ name: "Doomed" })
clerk.tick().addMember(alice, acme, "org:admin")
clerk.addMember(bob, acme, "basic_member")
clerk.addMember(bob, globex, "org:billing")
clerk.addMember(eve, acme)
clerk.addMember(bob, doomed)
clerk.tick().removeMember(eve, acme)
clerk.deleteOrganization(doomed)
const gone = clerk.createUser({ firstName: "Gone" })
clerk.tick().deleteUser(gone)

/** A store holding the world above. */
const World = Layer.effectDiscard(Effect.forEach(clerk.events, (e) => Ingest.ingest(e), { discard: true })).pipe(
  Layer.provideMerge(MemoryStore.layer)
)

const failure = <A, E>(effect: Effect.Effect<A, E, any>) => Effect.map(Effect.flip(effect), (e) => (e as { _tag: string })._tag)

describe("AuthHelpers", () => {
  it.effect("getCurrentUser: the synced user, or a typed failure", () =>
    Effect.gen(function*() {
      const user = yield* AuthHelpers.getCurrentUser({ userId: alice })
      assert.strictEqual(user.email, "alice@example.com")
      assert.strictEqual(yield* failure(AuthHelpers.getCurrentUser({ userId: null })), "NotSignedIn")
      assert.strictEqual(yield* failure(AuthHelpers.getCurrentUser({})), "NotSignedIn")
      const notYet = yield* Effect.flip(AuthHelpers.getCurrentUser({ userId: "user_brand_new" }))
      assert.deepInclude(notYet, { _tag: "NotSyncedYet", entity: "user", deleted: false })
      const deleted = yield* Effect.flip(AuthHelpers.getCurrentUser({ userId: gone }))
      assert.deepInclude(deleted, { _tag: "NotSyncedYet", deleted: true })
    }).pipe(Effect.provide(World)))

  it.effect("getCurrentOrganization: the organization and the user's role in it", () =>
    Effect.gen(function*() {
      const current = yield* AuthHelpers.getCurrentOrganization({ userId: bob, orgId: acme })
      assert.strictEqual(current.organization.name, "Acme")
      assert.strictEqual(current.role, "org:member")
      assert.strictEqual(yield* failure(AuthHelpers.getCurrentOrganization({ userId: bob })), "NotAMember")
      assert.strictEqual(yield* failure(AuthHelpers.getCurrentOrganization({ userId: eve, orgId: acme })), "NotAMember")
      assert.strictEqual(yield* failure(AuthHelpers.getCurrentOrganization({ userId: alice, orgId: globex })), "NotAMember")
      assert.strictEqual(yield* failure(AuthHelpers.getCurrentOrganization({ userId: bob, orgId: "org_unknown" })), "NotSyncedYet")
      assert.strictEqual(yield* failure(AuthHelpers.getCurrentOrganization({ userId: bob, orgId: doomed })), "NotSyncedYet")
      assert.strictEqual(yield* failure(AuthHelpers.getCurrentOrganization({ orgId: acme })), "NotSignedIn")
    }).pipe(Effect.provide(World)))

  it.effect("getAuthContext: user alone, or user and organization", () =>
    Effect.gen(function*() {
      const solo = yield* AuthHelpers.getAuthContext({ userId: eve })
      assert.isNull(solo.organization)
      const both = yield* AuthHelpers.getAuthContext({ userId: alice, orgId: acme })
      assert.strictEqual(both.organization?.role, "org:admin")
      assert.strictEqual(yield* failure(AuthHelpers.getAuthContext({ userId: eve, orgId: acme })), "NotAMember")
    }).pipe(Effect.provide(World)))

  it.effect("requireAuthContext: roles (legacy names too) and permissions, else Forbidden", () =>
    Effect.gen(function*() {
      const ok = yield* AuthHelpers.requireAuthContext({ userId: alice, orgId: acme }, { role: "admin" })
      assert.strictEqual(ok.user.firstName, "Alice")
      yield* AuthHelpers.requireAuthContext({ userId: alice, orgId: acme }, { permission: "org:sys_memberships:manage" })
      yield* AuthHelpers.requireAuthContext({ userId: bob, orgId: acme }, { role: ["org:admin", "org:member"] })
      yield* AuthHelpers.requireAuthContext({ userId: bob, orgId: acme }, { permission: "org:sys_memberships:read" })
      assert.strictEqual(yield* failure(AuthHelpers.requireAuthContext({ userId: bob, orgId: acme }, { role: "org:admin" })), "Forbidden")
      assert.strictEqual(
        yield* failure(AuthHelpers.requireAuthContext({ userId: bob, orgId: acme }, { permission: ["org:sys_memberships:read", "org:sys_profile:delete"] })),
        "Forbidden"
      )
      assert.strictEqual(yield* failure(AuthHelpers.requireAuthContext({ userId: bob })), "NotAMember")
      assert.strictEqual(yield* failure(AuthHelpers.requireAuthContext({ userId: null, orgId: acme })), "NotSignedIn")
    }).pipe(Effect.provide(World)))

  it.effect("getUserOrganizations: live memberships in live organizations only", () =>
    Effect.gen(function*() {
      const orgs = yield* AuthHelpers.getUserOrganizations({ userId: bob })
      assert.deepStrictEqual(orgs.map((o) => [o.organization.name, o.membership.role]), [["Acme", "org:member"], ["Globex", "org:billing"]])
      assert.deepStrictEqual(yield* AuthHelpers.getUserOrganizations({ userId: eve }), [])
      assert.strictEqual(yield* failure(AuthHelpers.getUserOrganizations({ userId: undefined })), "NotSignedIn")
    }).pipe(Effect.provide(World)))
})

describe("ClerkSync (Promise surface)", () => {
  it("ingests and answers auth questions with plain promises, rejecting with the typed errors", async () => {
    const sync = ClerkSync.make(MemoryStore.layer)
    try {
      for (const e of clerk.events) await sync.ingest(e)
      assert.strictEqual((await sync.ingest(clerk.events[0]!)).status, "duplicate")
      assert.strictEqual((await sync.getCurrentUser({ userId: alice })).firstName, "Alice")
      assert.strictEqual((await sync.requireAuthContext({ userId: alice, orgId: acme }, { role: "org:admin" })).organization.role, "org:admin")
      assert.strictEqual((await sync.getUserOrganizations({ userId: bob })).length, 2)
      const rejected = await sync.requireAuthContext({ userId: bob, orgId: acme }, { role: "org:admin" }).catch((e: unknown) => e)
      assert.instanceOf(rejected, AuthHelpers.Forbidden)
      assert.strictEqual((rejected as Error).message, "forbidden: missing role or permission")
    } finally {
      await sync.dispose()
    }
  })

  it("keeps personal data on deletion when configured to retain it", async () => {
    const sync = ClerkSync.make(MemoryStore.layer, { planner: { personalData: "retain" } })
    for (const e of clerk.events) await sync.ingest(e)
    const row = await sync.runtime.runPromise(Effect.flatMap(Effect.service(MemoryStoreTag), (s) => s.findUser(gone)))
    assert.strictEqual(row._tag === "Some" && row.value.firstName, "Gone")
    await sync.dispose()
  })
})

import { SyncStore } from "@clerk-sync/core"
const MemoryStoreTag = SyncStore.SyncStore
