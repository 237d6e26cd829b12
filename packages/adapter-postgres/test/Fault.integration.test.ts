/**
 * Crash safety, on a PostgreSQL 15 server of this file's own (the run's shared server is never
 * stopped): the server crashes (immediate shutdown: no checkpoint, WAL replay at restart) while
 * deliveries are in flight, one of them provably in the middle of its transaction. Afterwards
 * nothing is half-written, everything acknowledged survived, and once the server is back, ingest
 * resumes on the same store (its pool reconnects) and converges.
 */
import { assert, describe, it } from "@effect/vitest"
import { ClerkSimulator, Ingest, SyncStore } from "@clerk-sync/core"
import { Canonical, inOrderState } from "@clerk-sync/core/testing"
import { Cause, Effect, Exit, Fiber, Layer } from "effect"
import pg from "pg"
import { afterAll, beforeAll } from "vitest"
import { PostgresStore } from "../src/index.ts"
import { type PostgresServer, startPostgresServer } from "../src/testing/index.ts"

const T0 = 1_767_225_600_000
let server: PostgresServer

beforeAll(async () => {
  server = await startPostgresServer({ name: "fault" })
})
afterAll(async () => {
  await server?.destroy()
})

const withClient = async <A>(f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: server.url })
  client.on("error", () => {})
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end().catch(() => {})
  }
}

describe("a server crash in the middle of ingests", () => {
  for (const groupCommit of [false, true]) {
    it.live(`leaves nothing half-written, keeps what was acknowledged, and ingest resumes (${groupCommit ? "group commit" : "one transaction per delivery"})`, () =>
      Effect.gen(function*() {
        const schema = `fault_${groupCommit ? "group" : "single"}`
        const store = yield* Layer.build(PostgresStore.layerPg({ connectionString: server.url, schema, groupCommit, poolSize: 8 }))

        // Before: a user whose row another session will hold locked.
        const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: `crash${groupCommit}`, startAt: T0 })
        const held = clerk.createUser({ firstName: "Held" })
        yield* Ingest.ingest(clerk.events[0]!).pipe(Effect.provide(store))
        const before = clerk.events.length

        // The stream: many users, each joining an organization (every delivery writes several rows
        // and a notification), and an update of the held user, which will block mid-transaction.
        const acme = clerk.createOrganization({ name: "Acme" })
        const update = clerk.tick().updateUser(held, { firstName: "Changed" })
        for (let i = 0; i < 60; i++) {
          const u = clerk.createUser({ firstName: `U${i}` })
          clerk.addMember(u, acme)
        }
        const stream = clerk.events.slice(before)

        const locker = new pg.Client({ connectionString: server.url })
        locker.on("error", () => {})
        yield* Effect.promise(() => locker.connect())
        // Whatever happens, the lock goes before the store closes (it waits for its transactions).
        yield* Effect.addFinalizer(() => Effect.promise(() => locker.end().catch(() => {})))
        yield* Effect.promise(() => locker.query("BEGIN"))
        yield* Effect.promise(() => locker.query(`SELECT 1 FROM ${schema}.users WHERE clerk_user_id = $1 FOR UPDATE`, [held]))

        const acknowledged = new Set<string>()
        const deliver = (events: ReadonlyArray<ClerkSimulator.SimulatedEvent>) =>
          Effect.forEach(events, (e) =>
            Ingest.ingest(e).pipe(
              Effect.tap(() => Effect.sync(() => acknowledged.add(e.svixId))),
              Effect.exit
            ), { concurrency: 8 }).pipe(Effect.provide(store))
        const countWaiting = () =>
          withClient((c) => c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"))
            .then((r) => r.rows[0].n as number)
        const until = async (condition: () => Promise<boolean>, what: string) => {
          for (let i = 0; i < 500; i++) {
            if (await condition()) return
            await new Promise((resolve) => setTimeout(resolve, 20))
          }
          throw new Error(`never happened: ${what}`)
        }

        // The update goes first and blocks inside its transaction (its inbox row written, waiting
        // for the row lock); then the stream flows around it.
        const blocked = yield* Effect.forkChild(deliver([update]))
        yield* Effect.promise(() => until(async () => (await countWaiting()) > 0, "the update blocks"))
        const rest = stream.filter((e) => e.svixId !== update.svixId)
        const deliveries = yield* Effect.forkChild(deliver(rest))
        yield* Effect.promise(() => until(async () => acknowledged.size >= 10, "deliveries commit around the blocked one"))
        yield* Effect.promise(() => server.stop("immediate"))
        const exits = [...(yield* Fiber.join(blocked)), ...(yield* Fiber.join(deliveries))]

        // Every delivery ended, either acknowledged or with StorageUnavailable (no defect, no hang).
        for (const exit of exits) {
          if (Exit.isFailure(exit)) {
            const error = Cause.squash(exit.cause) as { readonly _tag?: string }
            assert.strictEqual(error._tag, "StorageUnavailable")
          }
        }
        assert.isFalse(acknowledged.has(update.svixId), "the blocked update was never acknowledged")

        yield* Effect.promise(() => server.start())

        const rows = yield* Effect.promise(() =>
          withClient(async (c) => ({
            inbox: (await c.query(`SELECT svix_id FROM ${schema}.clerk_webhook_events`)).rows.map((r) => r.svix_id as string),
            users: (await c.query(`SELECT clerk_user_id, first_name, placeholder FROM ${schema}.users`)).rows as Array<{ clerk_user_id: string; first_name: string; placeholder: boolean }>,
            members: (await c.query(`SELECT u.clerk_user_id FROM ${schema}.user_organizations m JOIN ${schema}.users u ON u.id = m.user_id`)).rows.map((r) => r.clerk_user_id as string),
            notified: (await c.query(`SELECT event, payload FROM ${schema}.outbox`)).rows as Array<{ event: string; payload: any }>
          }))
        )
        const inbox = new Set(rows.inbox)
        // Acknowledged means durable: fsync is on and the commit was flushed before the answer.
        for (const id of acknowledged) assert.isTrue(inbox.has(id), `acknowledged ${id} survived the crash`)
        // The update held mid-transaction left nothing: no inbox row, no change, no notification.
        assert.isFalse(inbox.has(update.svixId))
        assert.strictEqual(rows.users.find((u) => u.clerk_user_id === held)?.first_name, "Held")
        assert.isFalse(rows.notified.some((n) => n.event === "user.updated"))
        // Every delivery is all or nothing: a user.created is recorded iff its user and its
        // notification exist; a membership.created iff its membership and its notification do.
        for (const e of stream) {
          const body = JSON.parse(e.body) as { type: string; data: { id: string; public_user_data?: { user_id: string } } }
          if (body.type === "user.created") {
            const hasRow = rows.users.some((u) => u.clerk_user_id === body.data.id && !u.placeholder)
            const hasNotice = rows.notified.some((n) => n.event === "user.created" && n.payload.user.clerkUserId === body.data.id)
            assert.strictEqual(hasRow && hasNotice, inbox.has(e.svixId), `${e.svixId}: all or nothing`)
            if (!inbox.has(e.svixId)) assert.isFalse(hasNotice, `${e.svixId}: no notification without its delivery`)
          }
          if (body.type === "organizationMembership.created") {
            const userId = body.data.public_user_data!.user_id
            const hasRow = rows.members.includes(userId)
            const hasNotice = rows.notified.some((n) => n.event === "membership.created" && n.payload.membership.user.clerkUserId === userId)
            assert.strictEqual(hasRow && hasNotice, inbox.has(e.svixId), `${e.svixId}: all or nothing`)
          }
        }
        assert.isBelow(inbox.size, clerk.events.length, "the crash really cut the stream short")

        // Svix retries everything it has no 2xx for; here, everything. The same store resumes.
        const retried = yield* Effect.forEach(clerk.events, (e) => Ingest.ingest(e), { concurrency: 8 }).pipe(Effect.provide(store))
        assert.isTrue(retried.every((r) => r.status === "processed" || r.status === "duplicate"))
        const expected = yield* inOrderState({ simulator: clerk, events: clerk.events })
        const actual = yield* Canonical.ofSimulator(clerk).pipe(Effect.provide(store))
        assert.deepStrictEqual(actual, expected)
        const counts = yield* SyncStore.SyncStore.use((s) => s.counts).pipe(Effect.provide(store))
        assert.strictEqual(counts.inbox.processed, clerk.events.length)
      }).pipe(Effect.scoped), 120_000)
  }
})
