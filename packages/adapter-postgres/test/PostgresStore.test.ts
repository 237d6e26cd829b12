/**
 * What the contract suite does not show: exact round trips, odd payloads, reprocess, group commit's
 * failure isolation, and concurrency on a real server (several connections, several processes).
 */
import { assert, describe, it } from "@effect/vitest"
import { ClerkSimulator, Domain, Ingest, MemoryStore, Plan, Planner, SyncStore } from "@clerk-sync/core"
import { Canonical, inOrderState } from "@clerk-sync/core/testing"
import { Cause, ConfigProvider, Effect, Exit, Fiber, Layer, Option } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { PostgresStore } from "../src/index.ts"
import { backends, freshSchema } from "./utils/backends.ts"
import { runTogether } from "./utils/run-script.ts"

const T0 = 1_767_225_600_000
const Store = SyncStore.SyncStore

const deliver = (events: ReadonlyArray<{ readonly svixId: string; readonly body: string }>, concurrency: number | "unbounded" = 1) =>
  Effect.forEach(events, (e) => Ingest.ingest({ svixId: e.svixId, body: e.body }), { concurrency })

/** Every row of the store, by Clerk ids, without the internal ids (which each store makes its own). */
const dump = Effect.gen(function*() {
  const store = yield* Store
  const strip = (row: object, ...keys: ReadonlyArray<string>) => {
    const copy: Record<string, unknown> = { ...row }
    for (const k of keys) delete copy[k]
    return copy
  }
  const users = [...(yield* store.listUsers(1000))].sort((a, b) => (a.clerkUserId < b.clerkUserId ? -1 : 1)).map((u) => strip(u, "id"))
  const organizations = [...(yield* store.listOrganizations(1000))].sort((a, b) => (a.clerkOrgId < b.clerkOrgId ? -1 : 1)).map((o) => strip(o, "id"))
  const memberships = [...(yield* store.listMemberships(1000))]
    .sort((a, b) => (`${a.clerkUserId}|${a.clerkOrgId}` < `${b.clerkUserId}|${b.clerkOrgId}` ? -1 : 1))
    .map((m) => strip(m, "id", "userId", "organizationId"))
  const withoutIds = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(withoutIds)
      : typeof value === "object" && value !== null
      ? Object.fromEntries(Object.entries(value).filter(([k]) => k !== "id").map(([k, v]) => [k, withoutIds(v)]))
      : value
  const outbox = (yield* store.readOutbox(0, ["admin"], 1000)).map((n) => ({ audiences: n.audiences, payload: withoutIds(n.payload) }))
  return { users, organizations, memberships, outbox }
})

/** A small history touching every kind of row, with data Postgres must round-trip exactly. */
const richHistory = () => {
  const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: `rich${Math.random().toString(36).slice(2, 7)}`, startAt: T0 + 123 })
  const ada = clerk.createUser({
    firstName: "Ada ✓ 日本 🚀",
    lastName: "O'Lovelace \"quoted\" \\ back",
    email: "ada@example.com",
    publicMetadata: { plan: "pro", nested: { list: [1, 2.5, true, null, "x"], emoji: "🎉" }, zeta: 1, alpha: 2 }
  })
  const acme = clerk.createOrganization({ name: "Acme ☃", publicMetadata: { tier: 3 } })
  clerk.tick(7).addMember(ada, acme, "org:admin")
  clerk.tick(1).updateUser(ada, { lastName: "Byron" })
  const bob = clerk.createUser({ firstName: "Bob" })
  clerk.addMember(bob, acme)
  clerk.tick(1000).setRole(bob, acme, "org:billing")
  clerk.tick().removeMember(bob, acme)
  clerk.tick().deleteUser(bob)
  return clerk
}

const BACKENDS = backends("store")

for (const backend of BACKENDS) {
  describe(`PostgresStore on ${backend.name}`, () => {
    it.live("round-trips every field of every row exactly, as the in-memory reference holds it", () =>
      Effect.gen(function*() {
        const clerk = richHistory()
        const expected = yield* Effect.provide(Effect.andThen(deliver(clerk.events), dump), MemoryStore.layer)
        const actual = yield* Effect.provide(Effect.andThen(deliver(clerk.events), dump), backend.layer())
        assert.deepStrictEqual(actual.users, expected.users)
        assert.deepStrictEqual(actual.organizations, expected.organizations)
        assert.deepStrictEqual(actual.memberships, expected.memberships)
        assert.deepStrictEqual(actual.outbox, expected.outbox)
      }))

    it.live("stores what Postgres cannot hold as text (U+0000, lone surrogates) instead of failing forever", () =>
      Effect.gen(function*() {
        const odd = "a\u0000b\ud800c\\u0000d"
        const ignored = yield* Ingest.ingest({ svixId: "msg_odd_1", body: JSON.stringify({ type: "session.created", object: "event", timestamp: T0, data: { x: odd } }) })
        const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "odd", startAt: T0 })
        const user = clerk.createUser({ firstName: odd, publicMetadata: { [odd]: odd } })
        const processed = yield* Ingest.ingest(clerk.events[0]!)
        const notJson = yield* Ingest.ingest({ svixId: "msg_odd_2", body: `{"x": "\u0000` })
        assert.deepStrictEqual([ignored.status, processed.status, notJson.status], ["ignored", "processed", "failed"])
        const row = Option.getOrThrow(yield* (yield* Store).findUser(user))
        assert.strictEqual(row.firstName, "a\ufffdb\ufffdc\\u0000d")
        assert.deepStrictEqual(row.publicMetadata, { "a\ufffdb\ufffdc\\u0000d": "a\ufffdb\ufffdc\\u0000d" })
      }).pipe(Effect.provide(backend.layer())))

    it.live("reprocess re-runs failed rows and stale `received` rows, once", () =>
      Effect.gen(function*() {
        const schema = freshSchema("rp")
        const layer = backend.layer({ schema })
        const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "rp", startAt: T0 })
        const ada = clerk.createUser({ firstName: "Ada" })
        const bob = clerk.createUser({ firstName: "Bob" })
        const [adaCreated, bobCreated] = clerk.events
        yield* Effect.gen(function*() {
          const store = yield* Store
          // Ada's delivery failed (an older decoder); Bob's was left `received` by a crashed writer.
          const failed = Ingest.request(adaCreated!, T0, Planner.defaultSettings)
          assert.strictEqual((yield* store.ingest({ _tag: "Fail", inbox: failed.inbox, error: "decoder too old" }))._tag, "Failed")
          yield* Effect.promise(() =>
            backend.query(
              `INSERT INTO ${schema}.clerk_webhook_events (svix_id, type, payload, status, attempts, received_at) VALUES ($1, 'user.created', $2::jsonb, 'received', 1, to_timestamp(0))`,
              [bobCreated!.svixId, bobCreated!.body]
            )
          )
          const now = Date.now()
          const results = yield* Ingest.reprocess({ receivedBefore: now, limit: 10 })
          // Oldest first: Bob's stale row was received long before Ada's failed one.
          assert.deepStrictEqual(results.map((r) => [r.eventId, r.status, r.applied]), [
            [bobCreated!.svixId, "processed", true],
            [adaCreated!.svixId, "processed", true]
          ])
          assert.deepStrictEqual(yield* Ingest.reprocess({ receivedBefore: now, limit: 10 }), [])
          assert.isTrue(Option.isSome(yield* store.findUser(ada)))
          assert.isTrue(Option.isSome(yield* store.findUser(bob)))
          const inbox = yield* store.listInbox({ limit: 10 })
          assert.deepStrictEqual(inbox.map((r) => [r.status, r.attempts]), [["processed", 2], ["processed", 2]])
          assert.strictEqual((yield* store.readOutbox(0, ["admin"], 10)).length, 2, "each applied once")
        }).pipe(Effect.provide(layer))
      }))

    it.live("group commit: a delivery whose plan throws, or whose writes fail, fails alone", () =>
      Effect.gen(function*() {
        const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "gc", startAt: T0 })
        for (let i = 0; i < 12; i++) clerk.createUser({ firstName: `User ${i}` })
        const requests = clerk.events.map((e) => Ingest.request(e, T0, Planner.defaultSettings))
        const throwing = requests[3]!
        const dangling = requests[7]!
        if (throwing._tag !== "Apply" || dangling._tag !== "Apply") return assert.fail("expected Apply")
        const broken: ReadonlyArray<SyncStore.IngestRequest> = requests.map((r, i) =>
          i === 3 && r._tag === "Apply"
            ? { ...r, plan: () => { throw new Error("planner bug") } }
            : i === 7 && r._tag === "Apply"
            // A membership whose user and organization do not exist: a foreign-key violation.
            ? { ...r, plan: (s: Plan.Snapshot) => ({ ...r.plan(s), memberships: [danglingMembership()] }) }
            : r
        )
        const store = yield* Store
        const exits = yield* Effect.forEach(broken, (r) => Effect.exit(store.ingest(r)), { concurrency: "unbounded" })
        const failed = exits.flatMap((e, i) => (Exit.isFailure(e) ? [i] : []))
        assert.deepStrictEqual(failed, [3, 7])
        for (const i of failed) {
          const reason = (exits[i] as Exit.Failure<unknown, SyncStore.StorageUnavailable>).cause.reasons[0]
          assert.strictEqual(reason?._tag === "Fail" ? reason.error._tag : reason?._tag, "StorageUnavailable")
        }
        const counts = yield* store.counts
        assert.strictEqual(counts.users, 10)
        assert.strictEqual(counts.inbox.processed, 10)
        assert.strictEqual((yield* store.claimUnpublished(100)).length, 10)
      }).pipe(Effect.provide(backend.layer({ groupCommit: { workers: 1 } }))))

    it.live("group commit: a batch of deliveries sharing keys (one organization's members) ends in the in-order state", () =>
      Effect.gen(function*() {
        const schema = freshSchema("waves")
        const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "waves", startAt: T0 })
        const org = clerk.createOrganization({ name: "Busy" })
        const users = Array.from({ length: 12 }, (_, i) => clerk.createUser({ firstName: `U${i}` }))
        for (const u of users) clerk.tick().addMember(u, org)
        for (const u of users.slice(0, 6)) clerk.tick().setRole(u, org, "org:admin")
        clerk.tick().updateOrganization(org, { name: "Busier" })
        clerk.tick().removeMember(users[0]!, org)
        clerk.tick().deleteUser(users[1]!)
        clerk.tick().updateUser(users[2]!, { firstName: "Renamed" })
        // Everything at once, duplicates included, into one worker: large batches with hot keys.
        const deliveries = [...clerk.events, ...clerk.events.slice(0, 10)]
        const layer = backend.layer({ schema, groupCommit: { workers: 1 } })
        const outcomes = yield* Effect.forEach(deliveries, (e) => Ingest.ingest({ svixId: e.svixId, body: e.body }), { concurrency: "unbounded" }).pipe(
          Effect.provide(layer)
        )
        assert.strictEqual(outcomes.filter((o) => o.status === "duplicate").length, 10)
        const expected = yield* inOrderState({ simulator: clerk, events: clerk.events })
        const actual = yield* Canonical.ofSimulator(clerk).pipe(Effect.provide(backend.layer({ schema, migrate: false })))
        assert.deepStrictEqual(actual, expected)
      }))

    it.live("group commit shares transactions between concurrent ingests", () =>
      Effect.gen(function*() {
        const schema = freshSchema("gcs")
        const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "gcs", startAt: T0 })
        for (let i = 0; i < 40; i++) clerk.createUser({ firstName: `User ${i}` })
        yield* deliver(clerk.events, "unbounded").pipe(Effect.provide(backend.layer({ schema, groupCommit: { workers: 1 } })))
        // now() is the transaction's start: rows written by one transaction share it.
        const [row] = yield* Effect.promise(() =>
          backend.query<{ users: number; transactions: number }>(`SELECT count(*)::int AS users, count(DISTINCT synced_at)::int AS transactions FROM ${schema}.users`)
        )
        assert.strictEqual(row!.users, 40)
        assert.isBelow(row!.transactions, 20, `40 ingests in ${row!.transactions} transactions`)
      }))

  })
}

describe("PostgresStore on PGlite: embedded", () => {
  it.live("a PGlite database persists to its directory, and layerConfig picks PGlite without DATABASE_URL", () =>
    Effect.acquireUseRelease(Effect.sync(() => mkdtempSync(join(tmpdir(), "clerk-sync-pglite-"))), (dir) =>
      Effect.gen(function*() {
        const env = ConfigProvider.fromEnv({ env: { CLERK_SYNC_PGLITE_DIR: dir, CLERK_SYNC_SCHEMA: "embedded" } })
        const layer = () => PostgresStore.layerConfig.pipe(Layer.provide(ConfigProvider.layer(env)))
        const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "disk", startAt: T0 })
        const ada = clerk.createUser({ firstName: "Ada" })
        yield* deliver(clerk.events).pipe(Effect.provide(layer()))
        // PGlite serves one instance: a second opening of the directory is refused, saying why,
        // in this process or while another live process holds it; a dead holder's lock is taken over.
        const refused = (exit: Exit.Exit<unknown, unknown>, why: string) => {
          assert.isTrue(Exit.isFailure(exit))
          if (Exit.isFailure(exit)) assert.include(String(Cause.squash(exit.cause)), why)
        }
        yield* Effect.scoped(Effect.gen(function*() {
          const reopened = yield* Layer.build(layer())
          const found = yield* Store.use((s) => s.findUser(ada)).pipe(Effect.provide(reopened))
          assert.strictEqual(Option.getOrThrow(found).firstName, "Ada")
          refused(yield* Effect.exit(Effect.scoped(Layer.build(layer()))), "already open")
        }))
        writeFileSync(join(dir, "clerk-sync.lock"), "1") // init: alive
        refused(yield* Effect.exit(Effect.scoped(Layer.build(layer()))), "process 1")
        writeFileSync(join(dir, "clerk-sync.lock"), "999999999") // no such process
        yield* Effect.scoped(Layer.build(layer()))
      }), (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))), 60_000)
})

const danglingMembership = (): Domain.MembershipRow => ({
  id: crypto.randomUUID(),
  clerkMembershipId: null,
  userId: crypto.randomUUID(),
  organizationId: crypto.randomUUID(),
  clerkUserId: "user_missing",
  clerkOrgId: "org_missing",
  role: "org:member",
  permissions: [],
  publicMetadata: {},
  version: "1.x",
  createdAt: null,
  updatedAt: null,
  deletedAt: null
})

const postgres = BACKENDS.find((b) => b.concurrent)

describe("PostgresStore on PostgreSQL 15: concurrency (several connections, several processes)", () => {
  // PGlite has a single connection: nothing there can wait for a lock. These run on the real server.
  for (const groupCommit of [false, true]) {
    const mode = groupCommit ? "group commit" : "one transaction per delivery"

    it.live(`concurrent updates of one user: the newest version wins, no lost update (${mode})`, () =>
      Effect.gen(function*() {
        const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: `lw${groupCommit}`, startAt: T0 })
        const ada = clerk.createUser({ firstName: "v0" })
        for (let i = 1; i <= 40; i++) clerk.tick(i % 3).updateUser(ada, { firstName: `v${i}` })
        const shuffled = [...clerk.events].sort(() => Math.random() - 0.5)
        yield* deliver(shuffled, "unbounded")
        const row = Option.getOrThrow(yield* Store.use((s) => s.findUser(ada)))
        assert.strictEqual(row.firstName, "v40")
      }).pipe(Effect.provide(postgres!.layer({ groupCommit, poolSize: 12 }))))

    it.live(`the same delivery on many connections at once is recorded once (${mode})`, () =>
      Effect.gen(function*() {
        const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: `dup${groupCommit}`, startAt: T0 })
        clerk.createUser({ firstName: "Ada" })
        const results = yield* deliver(Array.from({ length: 24 }, () => clerk.events[0]!), "unbounded")
        assert.deepStrictEqual(results.map((r) => r.status).sort(), [...Array.from({ length: 23 }, () => "duplicate" as const), "processed"])
        assert.strictEqual((yield* Store.use((s) => s.readOutbox(0, ["admin"], 100))).length, 1)
      }).pipe(Effect.provide(postgres!.layer({ groupCommit, poolSize: 12 }))))

    it.live(`a user's and an organization's deletions racing end their shared membership once (${mode})`, () =>
      Effect.gen(function*() {
        // The two deletions share no Clerk id, but both end the (ada, acme) membership: without a
        // lock on the membership rows both would, and clients would hear of it twice. Two store
        // instances (two pools, as two processes would have) so that the deletions run in two
        // transactions, whatever the batching.
        const schema = freshSchema("race")
        const one = yield* Layer.build(postgres!.layer({ schema, groupCommit }))
        const two = yield* Layer.build(postgres!.layer({ schema, groupCommit, migrate: false }))
        for (let round = 0; round < 10; round++) {
          const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: `race${groupCommit}${round}x`, startAt: T0 })
          const ada = clerk.createUser({ firstName: "Ada" })
          const acme = clerk.createOrganization({ name: "Acme" })
          const others = [clerk.createOrganization({ name: "B" }), clerk.createOrganization({ name: "C" })]
          const colleagues = [clerk.createUser({ firstName: "D" }), clerk.createUser({ firstName: "E" })]
          clerk.tick().addMember(ada, acme)
          for (const o of others) clerk.addMember(ada, o)
          for (const u of colleagues) clerk.addMember(u, acme)
          yield* deliver(clerk.events).pipe(Effect.provide(one))
          const [userDeleted, orgDeleted] = [clerk.tick().deleteUser(ada), clerk.deleteOrganization(acme)]
          yield* Effect.all([
            deliver([userDeleted]).pipe(Effect.provide(round % 2 === 0 ? one : two)),
            deliver([orgDeleted]).pipe(Effect.provide(round % 2 === 0 ? two : one))
          ], { concurrency: "unbounded" })
          const ended = yield* Store.use((s) => s.readOutbox(0, [`org:${acme}`], 1000)).pipe(Effect.provide(one))
          const adaLeft = ended.filter((n) => n.payload.name === "membership.deleted" && n.payload.membership.user.clerkUserId === ada)
          assert.strictEqual(adaLeft.length, 1, `round ${round}: the (ada, acme) membership ends once`)
          assert.isTrue(Option.isNone(yield* Store.use((s) => s.findMembership(ada, acme)).pipe(Effect.provide(one))))
        }
      }).pipe(Effect.scoped))
  }

  it.live("group commit: when a batch's COMMIT fails, nothing of it is written, and only the bad delivery fails", () => {
    const schema = freshSchema("commitfail")
    return Effect.gen(function*() {
      const store = yield* Store
      const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "cf", startAt: T0 })
      const held = clerk.createUser({ firstName: "Held" })
      yield* deliver(clerk.events)
      // A deferred constraint: checked at COMMIT, so the batch's commit itself fails. And a count of
      // attempts to write a user (a sequence: not rolled back).
      yield* Effect.promise(() =>
        postgres!.query(`CREATE FUNCTION ${schema}.poison() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN IF NEW.first_name = 'Poison' THEN RAISE EXCEPTION 'poisoned at commit'; END IF; RETURN NEW; END $$;
          CREATE CONSTRAINT TRIGGER poison AFTER INSERT OR UPDATE ON ${schema}.users DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION ${schema}.poison();
          CREATE SEQUENCE ${schema}.attempts;
          CREATE FUNCTION ${schema}.count_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN PERFORM nextval('${schema}.attempts'); RETURN NEW; END $$;
          CREATE TRIGGER count_attempt AFTER INSERT ON ${schema}.users FOR EACH ROW EXECUTE FUNCTION ${schema}.count_attempt()`)
      )
      // The one worker is kept busy by a delivery blocked on a row lock, so the next deliveries
      // queue up and form one batch.
      const locker = new pg.Client({ connectionString: postgres!.url()! })
      yield* Effect.promise(() => locker.connect())
      yield* Effect.addFinalizer(() => Effect.promise(() => locker.end().catch(() => {})))
      yield* Effect.promise(() => locker.query("BEGIN"))
      yield* Effect.promise(() => locker.query(`SELECT 1 FROM ${schema}.users WHERE clerk_user_id = $1 FOR UPDATE`, [held]))
      const update = clerk.tick().updateUser(held, { firstName: "Updated" })
      const first = yield* Effect.forkChild(Ingest.ingest(update))
      yield* Effect.promise(async () => {
        while ((await postgres!.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"))[0]!.n === 0) {
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      })
      const names = ["A", "B", "Poison", "C", "D"]
      for (const name of names) clerk.createUser({ firstName: name })
      const batch = clerk.events.slice(-names.length)
      const exits = yield* Effect.forkChild(Effect.forEach(batch, (e) => Effect.exit(Ingest.ingest(e)), { concurrency: "unbounded" }))
      yield* Effect.sleep(200) // all five queued behind the blocked batch
      yield* Effect.promise(() => locker.query("COMMIT"))
      assert.strictEqual((yield* Fiber.join(first)).status, "processed")
      const outcomes = (yield* Fiber.join(exits)).map((exit) =>
        Exit.isSuccess(exit) ? exit.value.status : (Cause.squash(exit.cause) as { _tag: string })._tag
      )
      assert.deepStrictEqual(outcomes, ["processed", "processed", "StorageUnavailable", "processed", "processed"])
      const [attempts] = yield* Effect.promise(() => postgres!.query<{ n: string }>(`SELECT last_value AS n FROM ${schema}.attempts`))
      assert.strictEqual(Number(attempts!.n), 10, "each of the five was written once in the failed batch, then once alone")
      const counts = yield* store.counts
      assert.strictEqual(counts.users, 5)
      assert.strictEqual(counts.inbox.processed, 6)
      assert.isTrue(Option.isNone(yield* store.findUser(JSON.parse(batch[2]!.body).data.id)), "nothing of the bad delivery")
    }).pipe(Effect.provide(postgres!.layer({ schema, groupCommit: { workers: 1 } })), Effect.scoped)
  })

  it.live("deliveries racing from several processes converge to the in-order state", () =>
    Effect.gen(function*() {
      const schema = freshSchema("procs")
      // A history with plenty of contention: few users and organizations, many events.
      const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "procs", startAt: T0 })
      const users = Array.from({ length: 4 }, (_, i) => clerk.createUser({ firstName: `U${i}` }))
      const orgs = Array.from({ length: 3 }, (_, i) => clerk.createOrganization({ name: `O${i}` }))
      for (let step = 0; step < 120; step++) {
        const u = users[step % users.length]!
        const o = orgs[step % orgs.length]!
        const member = clerk.liveMemberships().some((m) => m.userId === u && m.organizationId === o)
        clerk.tick(step % 2)
        if (step % 11 === 0) clerk.updateOrganization(o, { name: `O${step}` })
        else if (step % 5 === 0) clerk.updateUser(u, { firstName: `U${step}` })
        else if (!member) clerk.addMember(u, o, step % 2 === 0 ? "org:admin" : "org:member")
        else if (step % 3 === 0) clerk.removeMember(u, o)
        else clerk.setRole(u, o, step % 2 === 0 ? "org:member" : "org:admin")
      }
      clerk.tick().deleteUser(users[0]!)
      clerk.deleteOrganization(orgs[0]!)
      const file = join(mkdtempSync(join(tmpdir(), "clerk-sync-events-")), "events.json")
      writeFileSync(file, JSON.stringify(clerk.events))
      // Make the schema first, so the processes race on ingest, not on migrations.
      yield* Effect.scoped(Layer.build(postgres!.layer({ schema })))
      const reports = (yield* Effect.promise(() =>
        runTogether([1, 2, 3].map((seed) => ({ script: "ingest-process.ts", args: [postgres!.url()!, schema, file, String(seed)] })))
      )) as ReadonlyArray<{ readonly processed: number }>
      const processed = reports.reduce((n, r) => n + r.processed, 0)
      const ignoredOrProcessed = clerk.events.length
      assert.strictEqual(processed, ignoredOrProcessed, "each delivery processed by exactly one process")
      const expected = yield* inOrderState({ simulator: clerk, events: clerk.events })
      const actual = yield* Canonical.ofSimulator(clerk).pipe(Effect.provide(postgres!.layer({ schema, migrate: false })))
      assert.deepStrictEqual(actual, expected)
    }), 120_000)

  it.live("outbox seq order is visibility order: a reader following along never misses a row", () =>
    Effect.gen(function*() {
      const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "seq", startAt: T0 })
      for (let i = 0; i < 150; i++) clerk.createUser({ firstName: `U${i}` })
      const store = yield* Store
      let done = false
      const follow = (seen: Array<number>) =>
        Effect.gen(function*() {
          while (true) {
            const finished = done
            const batch = yield* store.readOutbox(seen.at(-1) ?? 0, ["admin"], 1000)
            seen.push(...batch.map((n) => n.seq))
            if (finished && batch.length === 0) return seen
          }
        })
      // Two followers, each sequencing as it reads, racing the writers and each other.
      const [, first, second] = yield* Effect.all([
        Effect.ensuring(deliver(clerk.events, 24), Effect.sync(() => (done = true))),
        follow([]),
        follow([])
      ], { concurrency: "unbounded" })
      const all = (yield* store.readOutbox(0, ["admin"], 1000)).map((n) => n.seq)
      assert.strictEqual(all.length, 150)
      assert.deepStrictEqual(all, Array.from({ length: 150 }, (_, i) => all[0]! + i), "gapless")
      assert.deepStrictEqual(first, all, "a follower saw every row, in order, once")
      assert.deepStrictEqual(second, all, "so did the other")
    }).pipe(Effect.provide(postgres!.layer({ poolSize: 12 }))))

  it.live("a row whose transaction commits late is given a later seq than every row already read", () => {
    const schema = freshSchema("late")
    return Effect.gen(function*() {
      const store = yield* Store
      // A writer that allocated its outbox row first but commits last (a slow fsync, say).
      const slow = new pg.Client({ connectionString: postgres!.url()! })
      yield* Effect.promise(() => slow.connect())
      yield* Effect.addFinalizer(() => Effect.promise(() => slow.end()))
      yield* Effect.promise(async () => {
        await slow.query("BEGIN")
        await slow.query(`INSERT INTO ${schema}.outbox (audiences, event, payload, created_at) VALUES ('{admin}', 'user.updated', '{"name":"user.updated"}', now())`)
      })
      const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "late", startAt: T0 })
      clerk.createUser({ firstName: "Ada" })
      yield* deliver(clerk.events)
      const first = yield* store.readOutbox(0, ["admin"], 100)
      assert.deepStrictEqual(first.map((n) => n.payload.name), ["user.created"])
      yield* Effect.promise(() => slow.query("COMMIT"))
      const next = yield* store.readOutbox(first[0]!.seq, ["admin"], 100)
      assert.deepStrictEqual(next.map((n) => n.payload.name), ["user.updated"], "resuming after what was read finds the late row")
      assert.isAbove(next[0]!.seq, first[0]!.seq)
    }).pipe(Effect.provide(postgres!.layer({ schema })), Effect.scoped)
  })

  it.live("a database that cannot be reached is StorageUnavailable, and no secret leaks into the error", () =>
    Effect.gen(function*() {
      const layer = PostgresStore.layerPg({ connectionString: "postgres://clerk:s3cr3t-pw@127.0.0.1:1/nowhere", migrate: false })
      const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "down", startAt: T0 })
      clerk.createUser({ firstName: "Ada", email: "ada-secret@example.com" })
      const exit = yield* Effect.exit(deliver(clerk.events).pipe(Effect.provide(layer)))
      assert.isTrue(Exit.isFailure(exit))
      if (!Exit.isFailure(exit)) return
      const reason = exit.cause.reasons[0]
      const error = reason?._tag === "Fail" ? reason.error : undefined
      assert.strictEqual(error?._tag, "StorageUnavailable")
      const text = `${String(error)} ${error?.message} ${JSON.stringify(error)} ${JSON.stringify((error as { cause?: unknown }).cause)}`
      assert.notInclude(text, "s3cr3t")
      assert.notInclude(text, "ada-secret")
    }))
})
