/**
 * The contract suite of the {@link SyncStore} port. Every store — the in-memory one, the Postgres
 * adapter on PGlite and on a real server, a contributor's new adapter — runs this same suite:
 *
 * ```ts
 * import { syncStoreContract } from "@clerk-sync/core/testing"
 * syncStoreContract("my store", () => MyStore.layer(...))
 * ```
 *
 * `makeLayer` is called once per test (and once per property run when `freshStorePerRun` is set);
 * the convergence property reuses one store across runs otherwise: each generated history has
 * Clerk ids of its own, so histories do not interfere.
 *
 * @since 0.1.0
 */
import { Effect, Exit, Layer, Option } from "effect"
import * as fc from "fast-check"
import { assert, describe, it } from "vitest"
import { ClerkSimulator } from "../ClerkSimulator.ts"
import * as Ingest from "../Ingest.ts"
import * as MemoryStore from "../MemoryStore.ts"
import { stale } from "../Plan.ts"
import { defaultSettings } from "../Planner.ts"
import { type IngestRequest, SyncStore } from "../SyncStore.ts"
import * as Canonical from "./Canonical.ts"
import * as Histories from "./Histories.ts"

/** @category models */
export interface ContractOptions {
  /** Runs of the convergence property (default 100). */
  readonly runs?: number
  /** How many deliveries are ingested at once in the convergence property (default 1). */
  readonly concurrency?: number
  /** Test timeout in ms for the property (default 120 s). */
  readonly timeout?: number
}

const T0 = 1_767_225_600_000

const deliver = (events: ReadonlyArray<{ readonly svixId: string; readonly body: string }>, concurrency = 1) =>
  Effect.forEach(events, (e) => Ingest.ingest({ svixId: e.svixId, body: e.body }), { concurrency })

/** The in-order state of a history, on a fresh in-memory store: the reference for convergence. */
export const inOrderState = (history: Histories.History) =>
  Effect.gen(function*() {
    yield* deliver(history.events)
    return yield* Canonical.ofSimulator(history.simulator)
  }).pipe(Effect.provide(Layer.fresh(MemoryStore.layer)))

/**
 * Registers the contract suite for a store.
 *
 * @category contract
 */
export const syncStoreContract = <E>(name: string, makeLayer: () => Layer.Layer<SyncStore, E>, options: ContractOptions = {}) =>
  describe(`SyncStore contract: ${name}`, () => {
    const run = <A, X>(effect: Effect.Effect<A, X, SyncStore>): Promise<A> =>
      Effect.runPromise(effect.pipe(Effect.provide(makeLayer())) as Effect.Effect<A, X | E>)

    it("records a delivery once: a redelivered svix-id is a duplicate and changes nothing", () =>
      run(Effect.gen(function*() {
        const clerk = new ClerkSimulator({ idPrefix: "dup", startAt: T0 })
        const user = clerk.createUser({ firstName: "Ada", email: "ada@example.com" })
        const [created] = clerk.events
        const first = yield* Ingest.ingest(created!)
        const again = yield* Ingest.ingest(created!)
        assert.strictEqual(first.status, "processed")
        assert.isTrue(first.applied)
        assert.strictEqual(again.status, "duplicate")
        const store = yield* SyncStore
        const counts = yield* store.counts
        assert.strictEqual(counts.inbox.processed, 1)
        assert.strictEqual(counts.users, 1)
        assert.strictEqual((yield* store.readOutbox(0, [`user:${user}`], 100)).length, 1)
      })))

    it("records unknown event types as ignored and undecodable ones as failed, with the error", () =>
      run(Effect.gen(function*() {
        const ignored = yield* Ingest.ingest({ svixId: "msg_ign", body: JSON.stringify({ type: "session.created", object: "event", timestamp: T0, data: {} }) })
        const failed = yield* Ingest.ingest({ svixId: "msg_bad", body: JSON.stringify({ type: "user.created", object: "event", timestamp: T0, data: { id: 42 } }) })
        const notJson = yield* Ingest.ingest({ svixId: "msg_txt", body: "{not json" })
        assert.deepStrictEqual([ignored.status, failed.status, notJson.status], ["ignored", "failed", "failed"])
        assert.include(failed.error ?? "", "data.id")
        const store = yield* SyncStore
        const rows = yield* store.listInbox({ limit: 10 })
        assert.strictEqual(rows.length, 3)
        const bad = rows.find((r) => r.svixId === "msg_bad")!
        assert.strictEqual(bad.status, "failed")
        assert.strictEqual(bad.type, "user.created")
        assert.include(bad.error ?? "", "data.id")
        assert.deepStrictEqual(bad.payload, { type: "user.created", object: "event", timestamp: T0, data: { id: 42 } })
        assert.strictEqual(rows.find((r) => r.svixId === "msg_txt")!.payload, "{not json")
        const failedOnly = yield* store.listInbox({ status: "failed", limit: 10 })
        assert.deepStrictEqual(failedOnly.map((r) => r.svixId).sort(), ["msg_bad", "msg_txt"])
        assert.deepStrictEqual((yield* store.counts).inbox, { received: 0, processed: 0, ignored: 1, failed: 2 })
      })))

    it("rolls back everything when planning fails, and a retry then applies once", () =>
      run(Effect.gen(function*() {
        const store = yield* SyncStore
        const clerk = new ClerkSimulator({ idPrefix: "rb", startAt: T0 })
        const user = clerk.createUser({ firstName: "Ada" })
        const good = Ingest.request(clerk.events[0]!, T0, defaultSettings)
        assert.strictEqual(good._tag, "Apply")
        if (good._tag !== "Apply") return
        const broken: IngestRequest = { ...good, plan: () => { throw new Error("boom") } }
        const exit = yield* Effect.exit(store.ingest(broken))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const reason = exit.cause.reasons[0]
          assert.strictEqual(reason?._tag === "Fail" ? reason.error._tag : reason?._tag, "StorageUnavailable")
        }
        assert.isTrue(Option.isNone(yield* store.findUser(user)))
        assert.strictEqual((yield* store.listInbox({ limit: 10 })).length, 0)
        assert.strictEqual((yield* store.claimUnpublished(10)).length, 0)
        const retried = yield* store.ingest(good)
        assert.deepStrictEqual(retried, { _tag: "Processed", applied: true, notifications: 1 })
        assert.isTrue(Option.isSome(yield* store.findUser(user)))
      })))

    it("reprocesses failed rows (once), never processed ones", () =>
      run(Effect.gen(function*() {
        const store = yield* SyncStore
        const clerk = new ClerkSimulator({ idPrefix: "rp", startAt: T0 })
        clerk.createUser({ firstName: "Ada" })
        const good = Ingest.request(clerk.events[0]!, T0, defaultSettings)
        const failed = yield* store.ingest({ _tag: "Fail", inbox: good.inbox, error: "decoder too old" })
        assert.strictEqual(failed._tag, "Failed")
        assert.strictEqual((yield* store.ingest(good))._tag, "Duplicate")
        assert.deepStrictEqual((yield* store.listReprocessable(T0 + 1, 10)).map((r) => r.svixId), [good.inbox.svixId])
        const rerun = yield* store.ingest(good, { reprocess: true })
        assert.strictEqual(rerun._tag, "Processed")
        assert.strictEqual((yield* store.ingest(good, { reprocess: true }))._tag, "Duplicate")
        const [row] = yield* store.listInbox({ limit: 1 })
        assert.strictEqual(row!.status, "processed")
        assert.strictEqual(row!.attempts, 2)
        assert.isNull(row!.error)
        assert.strictEqual((yield* store.listReprocessable(T0 + 1, 10)).length, 0)
        assert.strictEqual((yield* store.counts).users, 1)
      })))

    it("serves the auth-helper reads: live rows, live memberships, organizations by name", () =>
      run(Effect.gen(function*() {
        const store = yield* SyncStore
        const clerk = new ClerkSimulator({ idPrefix: "rd", startAt: T0 })
        const alice = clerk.createUser({ firstName: "Alice", email: "alice@example.com" })
        const bob = clerk.createUser({ firstName: "Bob" })
        const zeta = clerk.createOrganization({ name: "Zeta" })
        const acme = clerk.createOrganization({ name: "Acme" })
        const gone = clerk.createOrganization({ name: "Gone" })
        clerk.tick().addMember(alice, zeta, "org:admin")
        clerk.addMember(alice, acme, "basic_member")
        clerk.addMember(alice, gone)
        clerk.addMember(bob, acme)
        clerk.tick().removeMember(bob, acme)
        clerk.tick().deleteOrganization(gone)
        yield* deliver(clerk.events)

        const user = yield* store.findUser(alice)
        assert.strictEqual(Option.getOrThrow(user).email, "alice@example.com")
        assert.isTrue(Option.isNone(yield* store.findUser("user_nobody")))
        assert.strictEqual(Option.getOrThrow(yield* store.findMembership(alice, acme)).role, "org:member")
        assert.isTrue(Option.isNone(yield* store.findMembership(bob, acme)), "an ended membership is not returned")
        assert.isTrue(Option.isNone(yield* store.findMembership(alice, gone)), "a deleted organization ends memberships")
        assert.isNotNull(Option.getOrThrow(yield* store.findOrganization(gone)).deletedAt)
        const orgs = yield* store.listUserOrganizations(alice)
        assert.deepStrictEqual(orgs.map((o) => [o.organization.name, o.membership.role]), [["Acme", "org:member"], ["Zeta", "org:admin"]])
        assert.deepStrictEqual(yield* store.listUserOrganizations(bob), [])
        assert.strictEqual((yield* store.listUsers(10)).length, 2)
        assert.strictEqual((yield* store.listOrganizations(10)).length, 3)
        assert.strictEqual((yield* store.listMemberships(10)).length, 4)
        const counts = yield* store.counts
        assert.deepStrictEqual([counts.users, counts.organizations, counts.memberships], [2, 2, 2])
      })))

    it("lists organization members, live Clerk ids in keyset pages, and keeps checkpoints", () =>
      run(Effect.gen(function*() {
        const store = yield* SyncStore
        const clerk = new ClerkSimulator({ idPrefix: "ls", startAt: T0 })
        const users = [clerk.createUser(), clerk.createUser(), clerk.createUser(), clerk.createUser()]
        const acme = clerk.createOrganization({ name: "Acme" })
        const gone = clerk.createOrganization({ name: "Gone" })
        for (const u of users) clerk.addMember(u, acme)
        clerk.tick().removeMember(users[1]!, acme)
        clerk.deleteUser(users[2]!)
        clerk.deleteOrganization(gone)
        yield* deliver(clerk.events)
        const members = yield* store.listOrganizationMembers(acme)
        assert.deepStrictEqual(members.map((m) => m.clerkUserId).sort(), [users[0]!, users[3]!])
        const page1 = yield* store.listClerkIds("user", null, 2)
        const page2 = yield* store.listClerkIds("user", page1[page1.length - 1]!, 2)
        assert.deepStrictEqual([...page1, ...page2], [users[0]!, users[1]!, users[3]!])
        assert.deepStrictEqual(yield* store.listClerkIds("organization", null, 10), [acme])
        assert.isTrue(Option.isNone(yield* store.getCheckpoint("backfill:users")))
        yield* store.setCheckpoint("backfill:users", "cursor-1")
        yield* store.setCheckpoint("backfill:users", "cursor-2")
        assert.strictEqual(Option.getOrThrow(yield* store.getCheckpoint("backfill:users")), "cursor-2")
      })))

    it("keeps an outbox in seq order, filtered by audience, claimable and prunable", () =>
      run(Effect.gen(function*() {
        const store = yield* SyncStore
        const clerk = new ClerkSimulator({ idPrefix: "ob", startAt: T0 })
        const alice = clerk.createUser({ firstName: "Alice" })
        const acme = clerk.createOrganization({ name: "Acme" })
        clerk.tick().addMember(alice, acme)
        clerk.tick().deleteOrganization(acme)
        yield* deliver(clerk.events)

        const all = yield* store.claimUnpublished(100)
        assert.deepStrictEqual(all.map((n) => n.payload.name), [
          "user.created",
          "organization.created",
          "membership.created",
          "organization.deleted",
          "membership.deleted"
        ])
        for (let i = 1; i < all.length; i++) assert.isTrue(all[i]!.seq > all[i - 1]!.seq, "seq increases")
        const orgRoom = yield* store.readOutbox(0, [`org:${acme}`], 100)
        assert.deepStrictEqual(orgRoom.map((n) => n.payload.name), ["organization.created", "membership.created", "organization.deleted", "membership.deleted"])
        const afterFirst = yield* store.readOutbox(orgRoom[0]!.seq, [`org:${acme}`, `user:${alice}`], 2)
        assert.deepStrictEqual(afterFirst.map((n) => n.seq), orgRoom.slice(1, 3).map((n) => n.seq))
        assert.deepStrictEqual(yield* store.readOutbox(0, ["org:org_other"], 100), [])
        assert.strictEqual(yield* store.outboxFloor, all[0]!.seq)

        yield* store.markPublished(all.slice(0, 3).map((n) => n.seq))
        assert.deepStrictEqual((yield* store.claimUnpublished(100)).map((n) => n.seq), all.slice(3).map((n) => n.seq))
        assert.strictEqual((yield* store.counts).outboxPending, 2)

        const createdAt = all[0]!.createdAt
        const pruned = yield* store.prune({ inboxBefore: createdAt + 60_000, outboxBefore: createdAt + 60_000 })
        assert.deepStrictEqual(pruned, { inbox: clerk.events.length, outbox: 3 })
        assert.strictEqual(yield* store.outboxFloor, all[3]!.seq, "resume below the floor must resync")
        assert.deepStrictEqual((yield* store.readOutbox(0, ["admin"], 100)).map((n) => n.seq), all.slice(3).map((n) => n.seq))
        assert.strictEqual((yield* store.prune({ inboxBefore: createdAt - 1, outboxBefore: createdAt - 1 })).outbox, 0)
      })))

    it(`converges: any order, any duplicates, ${options.concurrency ?? 1} at a time, ends in the in-order state`, () =>
      run(Effect.gen(function*() {
        const store = yield* SyncStore
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(Histories.historyAndDelivery(), (h) =>
              Effect.runPromise(Effect.gen(function*() {
                const expected = yield* inOrderState(h)
                const results = yield* deliver(h.delivered, options.concurrency ?? 1)
                const actual = yield* Canonical.ofSimulator(h.simulator)
                assert.deepStrictEqual(actual, expected)
                const recorded = results.filter((r) => r.status === "processed" || r.status === "ignored")
                assert.strictEqual(recorded.length, h.events.length, "each delivery is recorded exactly once")
              }).pipe(Effect.provideService(SyncStore, store)))),
            { numRuns: options.runs ?? 100 }
          )
        )
      })), options.timeout ?? 120_000)

    it("a stale event plans nothing: the plan is not even written", () =>
      run(Effect.gen(function*() {
        const store = yield* SyncStore
        const clerk = new ClerkSimulator({ idPrefix: "st", startAt: T0 })
        clerk.createUser({ firstName: "Ada" })
        const good = Ingest.request(clerk.events[0]!, T0, defaultSettings)
        if (good._tag !== "Apply") return assert.fail("expected Apply")
        const outcome = yield* store.ingest({ ...good, plan: () => stale })
        assert.deepStrictEqual(outcome, { _tag: "Processed", applied: false, notifications: 0 })
        assert.strictEqual((yield* store.counts).users, 0)
      })))
  })
