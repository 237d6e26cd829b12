/**
 * The schema's migrations: versioned, tracked in `<schema>.schema_migrations`, applied under an
 * advisory lock (processes starting together apply each migration once), each in its own
 * transaction, never rewritten once applied (a changed migration is refused by checksum).
 *
 * The store layers run them at start-up unless `migrate: false` (`SKIP_DB_MIGRATIONS=true`); run
 * them yourself from a deploy step with {@link run}.
 *
 * @example
 * import { Migrations } from "@clerk-sync/adapter-postgres"
 * await Migrations.runPromise({ connectionString: process.env.DATABASE_URL!, schema: "clerk_sync" })
 * // { applied: [1], current: 1 } the first time, { applied: [], current: 1 } afterwards
 *
 * @since 0.1.0
 */
import { SyncStore } from "@clerk-sync/core"
import { Data, Effect } from "effect"
import { Kysely, PostgresDialect } from "kysely"
import pg from "pg"
import { toDbError } from "./internal/database.ts"
import { MigrationMismatch, type MigrationReport, migrations, runMigrations } from "./internal/migrations.ts"
import { schemaName } from "./internal/text.ts"

/** An applied migration does not match its source: the code or the database is not what it should be. @category errors */
export class MigrationError extends Data.TaggedError("MigrationError")<{ readonly message: string }> {}

/** @category models */
export type Report = MigrationReport

/** The latest schema version this code knows. @category constants */
export const latest: number = Math.max(...migrations.map((m) => m.version))

/**
 * Applies pending migrations through a Kysely instance (any dialect of this package).
 *
 * @category programs
 */
export const migrate = (db: Kysely<any>, schema: string): Effect.Effect<Report, MigrationError | SyncStore.StorageUnavailable> =>
  Effect.tryPromise({
    try: () => runMigrations(db, schemaName(schema)),
    catch: (cause) =>
      cause instanceof MigrationMismatch
        ? new MigrationError({ message: cause.message })
        : new SyncStore.StorageUnavailable({ operation: "migrate", cause: toDbError(cause) })
  })

/**
 * Connects, applies pending migrations, disconnects.
 *
 * @category programs
 */
export const run = (options: { readonly connectionString: string; readonly schema?: string }): Effect.Effect<Report, MigrationError | SyncStore.StorageUnavailable> =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const pool = new pg.Pool({ connectionString: options.connectionString, max: 1 })
      pool.on("error", () => {})
      return new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
    }),
    (db) => migrate(db, options.schema ?? "clerk_sync"),
    (db) => Effect.promise(() => db.destroy())
  )

/** {@link run} as a Promise. @category programs */
export const runPromise = (options: { readonly connectionString: string; readonly schema?: string }): Promise<Report> =>
  Effect.runPromise(run(options))
