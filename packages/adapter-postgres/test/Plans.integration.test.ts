/**
 * The store's statements stay index probes when the tables grew after their plans were cached.
 *
 * Postgres caches a plan per connection (prepared statements, PL/pgSQL) sized for the tables as
 * they were when it was made. A fresh database fills up within seconds of going live, or of a
 * first backfill, long before autovacuum analyzes it: a plan made on the empty tables that scans
 * them whole then costs more at every delivery as they grow. Here the store runs on one
 * connection with `auto_explain` reporting every plan to the client: its plans are made on
 * nearly empty tables, the tables then grow to tens of thousands of rows, and the next deliveries
 * and relay claims must not scan any of them. (`LOAD 'auto_explain'` needs a superuser, as the
 * test server's `postgres` is.)
 */
import { assert, describe, it } from "@effect/vitest"
import { ClerkSimulator, Ingest, SyncStore } from "@clerk-sync/core"
import { Effect } from "effect"
import pg from "pg"
import { afterAll, beforeAll } from "vitest"
import { PostgresStore } from "../src/index.ts"
import { createTestDatabase, type TestDatabase } from "../src/testing/index.ts"

const T0 = 1_767_225_600_000
const SCHEMA = "plans"
const TABLES = ["users", "organizations", "user_organizations", "clerk_webhook_events", "outbox"]

let database: TestDatabase
let admin: pg.Pool
beforeAll(async () => {
  database = await createTestDatabase({ prefix: "plans" })
  admin = new pg.Pool({ connectionString: database.url, max: 1 })
})
afterAll(async () => {
  await admin?.end()
  await database?.drop()
})

/** A one-connection pool whose connection reports every plan it runs, nested ones included. */
const explainingPool = (plans: Array<string>): pg.Pool => {
  const pool = new pg.Pool({ connectionString: database.url, max: 1 })
  pool.on("connect", (client) => {
    client.on("notice", (notice) => void plans.push(notice.message ?? ""))
    void client.query(`LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
      SET auto_explain.log_level = notice; SET client_min_messages = notice`)
  })
  return pool
}

/** Fills the tables the way months of traffic would, straight in SQL. */
const grow = async (users: number, organizations: number) => {
  const s = SCHEMA
  await admin.query(`INSERT INTO ${s}.users (id, clerk_user_id, email, version)
    SELECT gen_random_uuid(), 'user_bulk_' || g, 'bulk' || g || '@example.com', '1.0' FROM generate_series(1, ${users}) g`)
  await admin.query(`INSERT INTO ${s}.organizations (id, clerk_org_id, name, version)
    SELECT gen_random_uuid(), 'org_bulk_' || g, 'Org ' || g, '1.0' FROM generate_series(1, ${organizations}) g`)
  await admin.query(`INSERT INTO ${s}.user_organizations (id, user_id, organization_id, role, version)
    SELECT gen_random_uuid(), u.id, o.id, 'org:member', '1.0'
    FROM ${s}.users u JOIN ${s}.organizations o ON o.clerk_org_id = 'org_bulk_' || (1 + (substr(u.clerk_user_id, 11)::int % ${organizations}))
    WHERE u.clerk_user_id LIKE 'user_bulk_%'`)
  await admin.query(`INSERT INTO ${s}.clerk_webhook_events (svix_id, type, payload, status, attempts, received_at, processed_at)
    SELECT 'msg_bulk_' || g, 'user.updated', '{}', 'processed', 1, now(), now() FROM generate_series(1, ${users}) g`)
  await admin.query(`WITH s AS (SELECT last_seq FROM ${s}.outbox_state)
    INSERT INTO ${s}.outbox (seq, audiences, event, payload, created_at, published_at)
    SELECT s.last_seq + g, ARRAY['admin'], 'user.updated', '{}', now(), now() FROM s, generate_series(1, ${users}) g`)
  await admin.query(`UPDATE ${s}.outbox_state SET last_seq = last_seq + ${users}`)
}

/** The plans that read one of the store's tables from end to end (a bitmap scan is driven by an index). */
const scans = (plans: ReadonlyArray<string>) =>
  plans.flatMap((plan) => {
    const text = plan.match(/Query Text: ([^\n]*)/)?.[1] ?? ""
    // Foreign-key checks are Postgres's own statements, not the store's.
    if (/\bFROM ONLY\b/.test(text)) return []
    return [...plan.matchAll(/Seq Scan on (\w+)/g)]
      .filter((m) => TABLES.includes(m[1]!))
      .map((m) => `Seq Scan on ${m[1]} in: ${text.slice(0, 120)}`)
  })

describe("plans on a database that grew after they were cached (PostgreSQL 15)", () => {
  it.live("ingest (alone and in bulk, deletions included) and the relay's claim probe indexes, never scan a table", () => {
    const plans: Array<string> = []
    const pool = explainingPool(plans)
    const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "p", startAt: T0 })
    let sent = 0
    const deliver = (concurrency: number) => {
      const events = clerk.events.slice(sent)
      sent = clerk.events.length
      return Effect.forEach(events, (e) => Ingest.ingest(e), { concurrency, discard: true })
    }
    return Effect.gen(function*() {
      const store = yield* SyncStore.SyncStore
      // On nearly empty tables: every statement the checks below use runs (and is planned) once.
      const acme = clerk.createOrganization({ name: "Acme" })
      const ada = clerk.createUser({ firstName: "Ada" })
      clerk.addMember(ada, acme)
      yield* deliver(1)
      for (let i = 0; i < 8; i++) clerk.updateUser(ada, { firstName: `Ada ${i}` })
      yield* deliver(8)
      clerk.deleteUser(ada)
      yield* deliver(1)
      yield* store.claimUnpublished(100)

      yield* Effect.promise(() => grow(20_000, 2_000))
      plans.length = 0

      // The same shapes again, on the grown tables.
      const globex = clerk.createOrganization({ name: "Globex" })
      const members = Array.from({ length: 12 }, (_, i) => clerk.createUser({ firstName: `M${i}` }))
      for (const m of members) clerk.addMember(m, globex)
      yield* deliver(1)
      for (const m of members) clerk.updateUser(m, { lastName: "Updated" })
      yield* deliver(12)
      clerk.deleteUser(members[0]!)
      clerk.deleteOrganization(globex)
      yield* deliver(1)
      const claimed = yield* store.claimUnpublished(500)
      assert.isAbove(claimed.length, 0, "the relay had something to claim")

      const ran = (fragment: string) => plans.some((plan) => plan.includes(fragment))
      assert.isTrue(ran("WITH req AS"), "a bulk read (a batch of several deliveries) ran")
      assert.isTrue(ran("WITH m AS"), "a single read ran")
      assert.isTrue(ran("FOR UPDATE"), "a deletion's membership locks ran")
      assert.isTrue(ran("published_at IS NULL AND seq IS NOT NULL"), "the claim's statement ran (nested in claim_outbox)")
      assert.deepStrictEqual(scans(plans), [])
    }).pipe(
      Effect.provide(PostgresStore.layerPg({ pool, schema: SCHEMA, groupCommit: true })),
      Effect.ensuring(Effect.promise(() => pool.end()))
    )
  })
})
