import { assert, describe, it } from "@effect/vitest"
import { SyncStore } from "@clerk-sync/core"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import pg from "pg"
import { Migrations, PostgresStore } from "../src/index.ts"
import { checksum, migrations } from "../src/internal/migrations.ts"
import { createTestDatabase } from "../src/testing/index.ts"
import { backends, freshSchema } from "./utils/backends.ts"
import { runScript } from "./utils/run-script.ts"

const query = async <R = Record<string, unknown>>(url: string, text: string, values: ReadonlyArray<unknown> = []): Promise<Array<R>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text, [...values])).rows as Array<R>
  } finally {
    await client.end()
  }
}

const build = <E>(layer: PostgresStore.StoreLayer<E>) => Effect.scoped(Layer.build(layer))

describe("Migrations", () => {
  for (const backend of backends("migrations")) {
    describe(backend.name, () => {
      it.effect("a fresh install creates the schema; running again is a no-op", () =>
        Effect.gen(function*() {
          const schema = freshSchema("mig")
          yield* build(backend.layer({ schema }))
          yield* build(backend.layer({ schema }))
          const counts = yield* Effect.provide(SyncStore.SyncStore.use((store) => store.counts), backend.layer({ schema }))
          assert.strictEqual(counts.users, 0)
        }).pipe(Effect.scoped))
    })
  }
})

describe("Migrations on PostgreSQL 15", () => {
  it("fresh install: every object in the configured schema, nothing in public, versions tracked", async () => {
    const db = await createTestDatabase({ prefix: "mig_fresh" })
    try {
      const first = await Migrations.runPromise({ connectionString: db.url, schema: "tenant_sync" })
      assert.deepStrictEqual(first, { applied: migrations.map((m) => m.version), current: Migrations.latest })
      const again = await Migrations.runPromise({ connectionString: db.url, schema: "tenant_sync" })
      assert.deepStrictEqual(again, { applied: [], current: Migrations.latest })

      const tables = await query<{ table_name: string }>(db.url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'tenant_sync' ORDER BY 1")
      assert.deepStrictEqual(tables.map((t) => t.table_name), [
        "checkpoints",
        "clerk_webhook_events",
        "organizations",
        "outbox",
        "outbox_state",
        "schema_migrations",
        "user_organizations",
        "users"
      ])
      const stray = await query(db.url, `SELECT c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('tenant_sync', 'pg_catalog', 'information_schema', 'pg_toast')`)
      assert.deepStrictEqual(stray, [], "no object outside the schema")
      const versions = await query<{ version: number; checksum: string }>(db.url, "SELECT version, checksum FROM tenant_sync.schema_migrations ORDER BY version")
      assert.deepStrictEqual(versions, migrations.map((m) => ({ version: m.version, checksum: checksum(m) })))
    } finally {
      await db.drop()
    }
  })

  it("has the tables, columns and indexes tools outside the project rely on", async () => {
    const db = await createTestDatabase({ prefix: "mig_shape" })
    try {
      await Migrations.runPromise({ connectionString: db.url })
      const columns = await query<{ table_name: string; column_name: string; data_type: string }>(db.url,
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'clerk_sync'")
      const has = (table: string, column: string, type: string) =>
        assert.isTrue(columns.some((c) => c.table_name === table && c.column_name === column && c.data_type === type), `${table}.${column} ${type}`)
      has("users", "id", "uuid")
      for (const c of ["clerk_user_id", "email", "first_name", "last_name", "image_url", "version"]) has("users", c, "text")
      has("users", "deleted_at", "timestamp with time zone")
      has("organizations", "id", "uuid")
      for (const c of ["clerk_org_id", "name", "slug", "image_url"]) has("organizations", c, "text")
      has("organizations", "deleted_at", "timestamp with time zone")
      has("user_organizations", "user_id", "uuid")
      has("user_organizations", "organization_id", "uuid")
      has("user_organizations", "role", "text")
      has("user_organizations", "permissions", "ARRAY")
      has("user_organizations", "deleted_at", "timestamp with time zone")
      has("clerk_webhook_events", "svix_id", "text")
      has("clerk_webhook_events", "payload", "jsonb")
      has("clerk_webhook_events", "status", "text")
      has("clerk_webhook_events", "attempts", "integer")
      has("clerk_webhook_events", "received_at", "timestamp with time zone")
      has("clerk_webhook_events", "processed_at", "timestamp with time zone")
      has("outbox", "seq", "bigint")
      has("outbox", "audiences", "ARRAY")
      has("outbox", "event", "text")
      has("outbox", "published_at", "timestamp with time zone")
      const indexes = await query<{ indexname: string }>(db.url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'clerk_sync'")
      const names = indexes.map((i) => i.indexname)
      for (const i of ["users_clerk_user_id_key", "users_email_idx", "organizations_clerk_org_id_key", "user_organizations_user_id_organization_id_key", "clerk_webhook_events_svix_id_key", "clerk_webhook_events_unprocessed_idx"]) {
        assert.include(names, i)
      }
      const fks = await query<{ conname: string }>(db.url, "SELECT conname FROM pg_constraint WHERE contype = 'f' AND connamespace = 'clerk_sync'::regnamespace ORDER BY 1")
      assert.strictEqual(fks.length, 2)
      // Versions compare byte-wise, as the core compares them.
      const [collation] = await query<{ collation_name: string }>(db.url,
        "SELECT collation_name FROM information_schema.columns WHERE table_schema = 'clerk_sync' AND table_name = 'users' AND column_name = 'version'")
      assert.strictEqual(collation!.collation_name, "C")
    } finally {
      await db.drop()
    }
  })

  it("two processes migrating at once apply each migration once", async () => {
    const db = await createTestDatabase({ prefix: "mig_race" })
    // Hold the migration lock, so both processes are surely inside `migrate` at the same time
    // (both blocked on the lock), then let them race.
    const holder = new pg.Client({ connectionString: db.url })
    await holder.connect()
    try {
      await holder.query("SELECT pg_advisory_lock(hashtextextended('clerk-sync:migrations:raced', 0))")
      const processes = [0, 1].map(() => runScript("migrate-process.ts", [db.url, "raced"]))
      for (let waiting = 0; waiting < 2;) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        const [row] = (await holder.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows
        waiting = row.n
      }
      await holder.query("SELECT pg_advisory_unlock(hashtextextended('clerk-sync:migrations:raced', 0))")
      const reports = (await Promise.all(processes)) as Array<Migrations.Report>
      const applied = reports.flatMap((r) => r.applied).sort()
      assert.deepStrictEqual(applied, migrations.map((m) => m.version), "each migration applied by exactly one process")
      for (const r of reports) assert.strictEqual(r.current, Migrations.latest)
      const [row] = await query<{ n: string }>(db.url, "SELECT count(*) AS n FROM raced.schema_migrations")
      assert.strictEqual(Number(row!.n), migrations.length)
    } finally {
      await holder.end()
      await db.drop()
    }
  })

  it("refuses to start when an applied migration was edited", async () => {
    const db = await createTestDatabase({ prefix: "mig_edit" })
    try {
      await Migrations.runPromise({ connectionString: db.url })
      await query(db.url, "UPDATE clerk_sync.schema_migrations SET checksum = 'edited' WHERE version = 1")
      const exit = await Effect.runPromiseExit(Migrations.run({ connectionString: db.url }))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const reason = exit.cause.reasons[0]
        assert.strictEqual(reason?._tag === "Fail" ? reason.error._tag : undefined, "MigrationError")
      }
    } finally {
      await db.drop()
    }
  })

  it("SKIP_DB_MIGRATIONS=true leaves the database untouched", async () => {
    const db = await createTestDatabase({ prefix: "mig_skip" })
    try {
      const env = ConfigProvider.fromEnv({ env: { DATABASE_URL: db.url, SKIP_DB_MIGRATIONS: "true", CLERK_SYNC_SCHEMA: "skipped" } })
      await Effect.runPromise(build(PostgresStore.layerConfig).pipe(Effect.provideService(ConfigProvider.ConfigProvider, env)))
      const schemas = await query(db.url, "SELECT 1 FROM pg_namespace WHERE nspname = 'skipped'")
      assert.strictEqual(schemas.length, 0)
      const migrated = ConfigProvider.fromEnv({ env: { DATABASE_URL: db.url, CLERK_SYNC_SCHEMA: "skipped" } })
      await Effect.runPromise(build(PostgresStore.layerConfig).pipe(Effect.provideService(ConfigProvider.ConfigProvider, migrated)))
      assert.strictEqual((await query(db.url, "SELECT 1 FROM pg_namespace WHERE nspname = 'skipped'")).length, 1)
    } finally {
      await db.drop()
    }
  })

  it("rejects a schema name that is not a plain identifier", () => {
    assert.throws(() => PostgresStore.layerPg({ connectionString: "postgres://x", schema: 'x"; DROP TABLE users; --' }), /Invalid schema name/)
    assert.throws(() => PostgresStore.layerPGlite({ schema: "Public" }), /Invalid schema name/)
  })
})
