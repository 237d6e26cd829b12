/**
 * The Realtime Authorization policies on a real PostgreSQL server: clerk-sync's real tables (the
 * Postgres adapter's migrations, filled by ingesting Clerk events), and a minimal Supabase shim —
 * roles `authenticated`/`anon`, `auth.jwt()` and `realtime.topic()` defined as Supabase defines them,
 * `realtime.messages` with RLS on. A join is checked the way Realtime checks it: insert a message as
 * the server, then read it back as the user, with its JWT claims and the topic set, and roll back.
 */
import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { createTestDatabase, type TestDatabase } from "@clerk-sync/adapter-postgres/testing"
import { ClerkSimulator, Ingest } from "@clerk-sync/core"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, ManagedRuntime } from "effect"
import { readFileSync } from "node:fs"
import pg from "pg"
import { applySupabasePolicies, policiesSql, removeSupabasePolicies } from "../src/Policies.ts"

const SHIM = `
DO $$ BEGIN CREATE ROLE authenticated NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE anon NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE SCHEMA auth;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''), nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;
CREATE SCHEMA realtime;
CREATE TABLE realtime.messages (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  topic text NOT NULL,
  extension text NOT NULL,
  payload jsonb,
  event text,
  private boolean DEFAULT false,
  updated_at timestamp NOT NULL DEFAULT now(),
  inserted_at timestamp NOT NULL DEFAULT now(),
  PRIMARY KEY (id, inserted_at)
);
CREATE FUNCTION realtime.topic() RETURNS text LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('realtime.topic', true), '')::text $$;
ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
GRANT USAGE ON SCHEMA realtime, auth TO authenticated, anon;
GRANT SELECT, INSERT ON realtime.messages TO authenticated, anon;
`

describe("Supabase Realtime Authorization policies", () => {
  let db: TestDatabase
  let client: pg.Client
  const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "rls_", startAt: Date.UTC(2026, 0, 1) })
  const ids: Record<string, string> = {}

  const ingest = async (schema: string, events: ReadonlyArray<ClerkSimulator.SimulatedEvent>) => {
    const runtime = ManagedRuntime.make(PostgresStore.layerPg({ connectionString: db.url, schema, groupCommit: false, poolSize: 2 }))
    try {
      await runtime.runPromise(Effect.forEach(events, (e) => Ingest.ingest(e), { discard: true }))
    } finally {
      await runtime.dispose()
    }
  }

  /** Whether a client with these claims may receive `topic` (Realtime's check, rolled back). */
  const canReceive = async (topic: string, claims: Record<string, unknown> | null, options: { role?: string; extension?: string } = {}) => {
    await client.query("BEGIN")
    try {
      await client.query("INSERT INTO realtime.messages (topic, extension, private) VALUES ($1, $2, true)", [topic, options.extension ?? "broadcast"])
      await client.query(`SET LOCAL ROLE ${options.role ?? "authenticated"}`)
      await client.query("SELECT set_config('request.jwt.claims', $1, true), set_config('realtime.topic', $2, true)", [
        claims === null ? "" : JSON.stringify(claims),
        topic
      ])
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM realtime.messages WHERE topic = $1 AND extension = $2",
        [topic, options.extension ?? "broadcast"]
      )
      return rows[0]!.n === 1
    } finally {
      await client.query("ROLLBACK")
    }
  }
  const as = (sub: string) => ({ sub, role: "authenticated", iss: "https://clerk.example" })

  beforeAll(async () => {
    db = await createTestDatabase({ prefix: "supabase_rls" })
    client = new pg.Client({ connectionString: db.url })
    await client.connect()
    await client.query(SHIM)
    ids.alice = clerk.createUser({ firstName: "Alice" })
    ids.bob = clerk.createUser({ firstName: "Bob" })
    ids.carol = clerk.createUser({ firstName: "Carol" })
    ids.gone = clerk.createUser({ firstName: "Gone" })
    ids.acme = clerk.createOrganization({ name: "Acme" })
    ids.globex = clerk.createOrganization({ name: "Globex" })
    ids.closed = clerk.createOrganization({ name: "Closed" })
    clerk.addMember(ids.alice, ids.acme)
    clerk.addMember(ids.bob, ids.globex)
    clerk.addMember(ids.carol, ids.acme)
    clerk.addMember(ids.alice, ids.closed)
    clerk.addMember(ids.gone, ids.acme)
    clerk.tick().removeMember(ids.carol, ids.acme)
    clerk.tick().deleteOrganization(ids.closed)
    clerk.tick().deleteUser(ids.gone)
    await ingest("clerk_sync", clerk.events)
    await applySupabasePolicies(client)
  }, 120_000)

  afterAll(async () => {
    await client?.end()
    await db?.drop()
  })

  it("lets a live member receive its organization's topic, and no one else", async () => {
    assert.isTrue(await canReceive(`org:${ids.acme}`, as(ids.alice)), "a member")
    assert.isFalse(await canReceive(`org:${ids.acme}`, as(ids.bob)), "a member of another organization")
    assert.isTrue(await canReceive(`org:${ids.globex}`, as(ids.bob)))
    assert.isFalse(await canReceive(`org:${ids.globex}`, as(ids.alice)))
    assert.isFalse(await canReceive("org:org_unknown", as(ids.alice)))
  })

  it("refuses a former member, a deleted organization and a deleted user", async () => {
    assert.isFalse(await canReceive(`org:${ids.acme}`, as(ids.carol)), "left the organization")
    assert.isFalse(await canReceive(`org:${ids.closed}`, as(ids.alice)), "the organization was deleted")
    assert.isFalse(await canReceive(`org:${ids.acme}`, as(ids.gone)), "the user was deleted")
    assert.isFalse(await canReceive(`user:${ids.gone}`, as(ids.gone)))
  })

  it("lets a user receive its own user topic only (even before its first webhook)", async () => {
    assert.isTrue(await canReceive(`user:${ids.alice}`, as(ids.alice)))
    assert.isFalse(await canReceive(`user:${ids.alice}`, as(ids.bob)))
    assert.isTrue(await canReceive("user:user_not_synced_yet", as("user_not_synced_yet")))
  })

  it("refuses without a subject, to anon, on presence, and the admin topic without the admin claim", async () => {
    assert.isFalse(await canReceive(`org:${ids.acme}`, null))
    assert.isFalse(await canReceive(`org:${ids.acme}`, { role: "authenticated" }))
    assert.isFalse(await canReceive(`org:${ids.acme}`, as(ids.alice), { role: "anon" }))
    assert.isFalse(await canReceive(`org:${ids.acme}`, as(ids.alice), { extension: "presence" }))
    assert.isFalse(await canReceive("admin", { ...as(ids.alice), clerk_sync_admin: "true" }))
  })

  it("follows membership changes as they are synced", async () => {
    const start = clerk.events.length
    clerk.tick().addMember(ids.bob, ids.acme)
    await ingest("clerk_sync", clerk.events.slice(start))
    assert.isTrue(await canReceive(`org:${ids.acme}`, as(ids.bob)), "joined")
    const mid = clerk.events.length
    clerk.tick().removeMember(ids.bob, ids.acme)
    await ingest("clerk_sync", clerk.events.slice(mid))
    assert.isFalse(await canReceive(`org:${ids.acme}`, as(ids.bob)), "left")
  })

  it("gives no access to clerk-sync's tables themselves", async () => {
    await client.query("BEGIN")
    try {
      await client.query("SET LOCAL ROLE authenticated")
      const error = await client.query("SELECT email FROM clerk_sync.users").then(() => null, (e: Error) => e.message)
      assert.match(error ?? "", /permission denied/)
    } finally {
      await client.query("ROLLBACK")
    }
  })

  it("is idempotent, removable, and works with another schema, a topic prefix and an admin claim", async () => {
    await applySupabasePolicies(client)
    assert.isTrue(await canReceive(`org:${ids.acme}`, as(ids.alice)))
    await removeSupabasePolicies(client)
    assert.isFalse(await canReceive(`org:${ids.acme}`, as(ids.alice)), "no policy: nothing")
    await applySupabasePolicies(client)

    const other = new ClerkSimulator.ClerkSimulator({ idPrefix: "rls2_", startAt: Date.UTC(2026, 0, 1) })
    const dave = other.createUser({ firstName: "Dave" })
    const initech = other.createOrganization({ name: "Initech" })
    other.addMember(dave, initech)
    await ingest("acme_sync", other.events)
    const options = { schema: "acme_sync", topicPrefix: "cs:", adminClaim: "clerk_sync_admin" }
    await applySupabasePolicies(client, options)
    assert.isTrue(await canReceive(`cs:org:${initech}`, as(dave)))
    assert.isFalse(await canReceive(`org:${initech}`, as(dave)), "without the prefix: not this policy's topic")
    assert.isTrue(await canReceive("cs:admin", { ...as(dave), clerk_sync_admin: "true" }))
    assert.isFalse(await canReceive("cs:admin", as(dave)))
    assert.isTrue(await canReceive(`org:${ids.acme}`, as(ids.alice)), "the default schema's policy still stands")
    await removeSupabasePolicies(client, options)
  })

  it("ships as a migration file identical to the generated SQL", () => {
    const file = readFileSync(new URL("../sql/clerk_sync_realtime_policies.sql", import.meta.url), "utf8")
    assert.strictEqual(file, policiesSql())
  })
})
