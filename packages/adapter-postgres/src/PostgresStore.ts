/**
 * The {@link SyncStore} on PostgreSQL: a server through `pg` ({@link layerPg}), or PGlite — real
 * Postgres compiled to WASM, in-process, persisted to a directory — for zero-setup use
 * ({@link layerPGlite}). Both layers also provide the {@link OutboxRelay} primitives.
 *
 * Everything lives in one schema (default `clerk_sync`, so it can sit beside the app's own
 * tables): `users`, `organizations`, `user_organizations`, `clerk_webhook_events` (the inbox),
 * `outbox`, plus bookkeeping (`outbox_state`, `checkpoints`, `schema_migrations`).
 *
 * @example
 * import { Effect } from "effect"
 * import { Ingest } from "@clerk-sync/core"
 * import { PostgresStore } from "@clerk-sync/adapter-postgres"
 * const StoreLive = PostgresStore.layerPg({ connectionString: process.env.DATABASE_URL!, groupCommit: true })
 * await Effect.runPromise(Ingest.ingest({ svixId, body }).pipe(Effect.provide(StoreLive)))
 *
 * // Without Effect: the core's Promise surface over the same layer
 * import { ClerkSync } from "@clerk-sync/core"
 * const sync = ClerkSync.make(PostgresStore.layerPg({ connectionString: process.env.DATABASE_URL! }))
 * await sync.ingest({ svixId, body })
 *
 * @since 0.1.0
 */
import { PGlite } from "@electric-sql/pglite"
import { SyncStore } from "@clerk-sync/core"
import { Config, Context, Effect, Layer, Option, Redacted, type Scope } from "effect"
import { CompiledQuery, Kysely, PGliteDialect, PostgresDialect } from "kysely"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import pg from "pg"
import * as Db from "./internal/database.ts"
import type * as GroupCommit from "./internal/groupCommit.ts"
import { preparingPool } from "./internal/prepared.ts"
import * as Store from "./internal/store.ts"
import { schemaName } from "./internal/text.ts"
import { migrate, type MigrationError } from "./Migrations.ts"
import { makePg, makePGlite, type Signals } from "./internal/relay.ts"
import { OutboxRelay, type RelayOptions } from "./OutboxRelay.ts"

/** The default schema. @category constants */
export const DEFAULT_SCHEMA = "clerk_sync"

/** @category models */
export interface GroupCommitOptions {
  /** Most deliveries per transaction (default 48). */
  readonly maxBatch?: number
  /** Batches in flight at once (default 4). */
  readonly workers?: number
}

/** @category models */
export interface Options {
  /** The schema holding every table (default `clerk_sync`). Lower-case letters, digits, `_`. */
  readonly schema?: string
  /** Apply pending migrations at start-up (default true; `SKIP_DB_MIGRATIONS=true` turns it off in {@link layerConfig}). */
  readonly migrate?: boolean
  /**
   * Let concurrent ingests share a transaction (default true): one fsync for many deliveries. A
   * failing delivery fails alone (the others are retried without it).
   */
  readonly groupCommit?: boolean | GroupCommitOptions
  /** Wake-up and leadership timings of the {@link OutboxRelay}. */
  readonly relay?: RelayOptions
}

/** @category models */
export interface PgOptions extends Options {
  /** A `postgres://` URL. */
  readonly connectionString?: string | Redacted.Redacted<string>
  /** A pool of yours (it stays open when the layer closes). Use instead of `connectionString`. */
  readonly pool?: pg.Pool
  /** Connections of the pool the layer makes (default 10). */
  readonly poolSize?: number
}

/** @category models */
export interface PGliteOptions extends Options {
  /** Directory of the database files; omitted, the database lives in memory. */
  readonly dataDir?: string
  /** A PGlite instance of yours (it stays open when the layer closes). Use instead of `dataDir`. */
  readonly pglite?: PGlite
}

/** @category models */
export interface DatabaseShape {
  readonly kysely: Kysely<any>
  /** The schema of clerk-sync's tables (put the app's own tables beside them, or elsewhere). */
  readonly schema: string
  readonly dialect: "pg" | "pglite"
  /**
   * Runs queries of your own. Use it rather than `kysely` directly: on PGlite (one connection) it
   * waits for the store's transaction in progress; failures are `StorageUnavailable`, sanitized.
   */
  readonly run: <A>(f: (db: Kysely<any>) => Promise<A>) => Effect.Effect<A, SyncStore.StorageUnavailable>
}

/**
 * The store's database, for the app's own tables and queries beside the synced ones.
 *
 * @example
 * const db = yield* PostgresStore.Database
 * const rows = yield* db.run((k) => k.withSchema(db.schema).selectFrom("users").selectAll().where("email", "=", email).execute())
 *
 * @category services
 */
export class Database extends Context.Service<Database, DatabaseShape>()("@clerk-sync/adapter-postgres/Database") {}

/** Either store layer: the port, the relay primitives and the database. @category models */
export type StoreLayer<E = never> = Layer.Layer<SyncStore.SyncStore | OutboxRelay | Database, SyncStore.StorageUnavailable | MigrationError | E>

const groupCommitOf = (options: Options): false | GroupCommit.Options =>
  options.groupCommit === false ? false : options.groupCommit === true || options.groupCommit === undefined ? {} : options.groupCommit

const services = (
  db: Db.Database,
  options: Options,
  makeSignals: Effect.Effect<Signals, never, Scope.Scope>
): Effect.Effect<Context.Context<SyncStore.SyncStore | OutboxRelay | Database>, SyncStore.StorageUnavailable | MigrationError, Scope.Scope> =>
  Effect.gen(function*() {
    if (options.migrate !== false) yield* migrate(db.kysely, db.schema)
    const groupCommit = groupCommitOf(options)
    const signals = yield* makeSignals
    const store = yield* Store.make(db, { committed: signals.committed, ...(groupCommit === false ? {} : { groupCommit }) })
    const database = Database.of({
      kysely: db.kysely,
      schema: db.schema,
      dialect: db.dialect,
      run: (f) => Effect.mapError(db.run(f), (cause) => new SyncStore.StorageUnavailable({ operation: "query", cause }))
    })
    return Context.make(SyncStore.SyncStore, store).pipe(Context.add(OutboxRelay, signals.relay), Context.add(Database, database))
  })

/**
 * The store on a PostgreSQL server. Throws at once on an invalid schema name.
 *
 * @category layers
 */
export const layerPg = (options: PgOptions): StoreLayer => {
  const schema = schemaName(options.schema ?? DEFAULT_SCHEMA)
  return Layer.effectContext(Effect.gen(function*() {
    const owned = options.pool === undefined
    const connectionString = options.connectionString === undefined
      ? undefined
      : Redacted.isRedacted(options.connectionString)
      ? Redacted.value(options.connectionString)
      : options.connectionString
    if (owned && connectionString === undefined) return yield* Effect.die(new Error("layerPg needs a connectionString or a pool"))
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const p = options.pool ?? new pg.Pool({
          connectionString,
          max: options.poolSize ?? 10,
          connectionTimeoutMillis: 10_000,
          idleTimeoutMillis: 30_000,
          application_name: "clerk-sync",
          keepAlive: true,
          // A delivery never waits long for a lock held by another delivery; a lock held by
          // something stuck fails it (503, Svix retries) instead of stalling its batch for ever.
          lock_timeout: 30_000,
          // A transaction abandoned by a hung process does not hold its locks for ever.
          idle_in_transaction_session_timeout: 60_000
        })
        // A connection that dies (server restart, network) must not crash the process: an idle one
        // is replaced by the pool, and the query in flight, or the next one, on a checked-out one
        // fails with StorageUnavailable. (pg emits `error` on a client with no listener otherwise.)
        if (owned) p.on("error", () => {})
        p.on("connect", (client) => void client.on("error", () => {}))
        return p
      }),
      (p) => (owned ? Effect.promise(() => p.end().catch(() => undefined)) : Effect.void)
    )
    // Kysely owns no pool: the pool is closed above, only if the layer made it.
    const kysely = new Kysely<any>({
      dialect: new PostgresDialect({
        pool: preparingPool(pool),
        // The store's prepared statements run with generic plans: planned once per connection,
        // not at every execution (their parameters are keys and arrays of keys: one plan fits
        // all). Only named statements are affected; the app's own queries are not.
        onCreateConnection: (connection) => connection.executeQuery(CompiledQuery.raw("SET plan_cache_mode = force_generic_plan")).then(() => undefined)
      })
    })
    const db = Db.make(kysely, "pg", schema)
    const clientConfig: pg.ClientConfig = owned ? { connectionString: connectionString! } : (pool as unknown as { options: pg.ClientConfig }).options
    return yield* services(db, options, makePg(db, clientConfig, options.relay))
  }))
}

/** Directories this process has open. */
const openDirectories = new Set<string>()

/**
 * PGlite serves one process, and one instance: two opening the same directory would corrupt it. A
 * lock file (with the holder's pid; a dead holder's lock is taken over) makes the second one fail
 * at start-up, saying why.
 */
const lockDirectory = (dir: string) =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const locked = (holder: number) =>
        Effect.die(
          new Error(
            `The PGlite database in ${dir} is already open (process ${holder}). PGlite serves one process: ` +
              `to run several, use PostgreSQL (set DATABASE_URL).`
          )
        )
      if (openDirectories.has(dir)) return locked(process.pid)
      const file = join(dir, "clerk-sync.lock")
      try {
        mkdirSync(dir, { recursive: true })
        for (let attempt = 0; attempt < 2; attempt++) {
          try {
            writeFileSync(file, String(process.pid), { flag: "wx" })
            openDirectories.add(dir)
            return Effect.succeed(file)
          } catch (error) {
            if ((error as { code?: string }).code !== "EEXIST") throw error
            const holder = Number(readFileSync(file, "utf8").trim())
            if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) return locked(holder)
            rmSync(file, { force: true })
          }
        }
        throw new Error(`could not lock ${dir}`)
      } catch (cause) {
        return Effect.fail(new SyncStore.StorageUnavailable({ operation: "open PGlite", cause: Db.toDbError(cause) }))
      }
    }),
    (file) =>
      Effect.sync(() => {
        openDirectories.delete(dir)
        rmSync(file, { force: true })
      })
  )

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"
  }
}

/**
 * The store on PGlite: Postgres in-process, no server. One process owns a data directory.
 *
 * @category layers
 */
export const layerPGlite = (options: PGliteOptions = {}): StoreLayer => {
  const schema = schemaName(options.schema ?? DEFAULT_SCHEMA)
  return Layer.effectContext(Effect.gen(function*() {
    const dir = options.pglite === undefined && options.dataDir !== undefined ? resolve(options.dataDir) : undefined
    if (dir !== undefined) yield* lockDirectory(dir)
    const pglite = options.pglite ?? (yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => PGlite.create(dir),
        catch: (cause) => new SyncStore.StorageUnavailable({ operation: "open PGlite", cause: Db.toDbError(cause) })
      }),
      (p) => Effect.promise(() => p.close().catch(() => undefined))
    ))
    // Kysely would close the instance on destroy; the instance is closed above (or is the caller's).
    const kysely = new Kysely<any>({ dialect: new PGliteDialect({ pglite }) })
    const db = Db.make(kysely, "pglite", schema)
    return yield* services(db, options, makePGlite(options.relay))
  }))
}

/**
 * The store from the environment: `DATABASE_URL` set, a server ({@link layerPg}); unset, PGlite
 * persisted in `CLERK_SYNC_PGLITE_DIR` (default `.clerk-sync/pglite`). `CLERK_SYNC_SCHEMA` names
 * the schema, `SKIP_DB_MIGRATIONS=true` skips migrations, `CLERK_SYNC_GROUP_COMMIT=false` turns
 * group commit off, `DATABASE_POOL_SIZE` sizes the pool.
 *
 * @category layers
 */
export const layerConfig: StoreLayer<Config.ConfigError> = Layer.unwrap(Effect.gen(function*() {
  const url = yield* Config.option(Config.Redacted("DATABASE_URL"))
  const schema = yield* Config.String("CLERK_SYNC_SCHEMA").pipe(Config.withDefault(DEFAULT_SCHEMA))
  const skip = yield* Config.Boolean("SKIP_DB_MIGRATIONS").pipe(Config.withDefault(false))
  const groupCommit = yield* Config.Boolean("CLERK_SYNC_GROUP_COMMIT").pipe(Config.withDefault(true))
  const common: Options = { schema, migrate: !skip, groupCommit }
  if (Option.isSome(url)) {
    const poolSize = yield* Config.Int("DATABASE_POOL_SIZE").pipe(Config.withDefault(10))
    return layerPg({ ...common, connectionString: url.value, poolSize })
  }
  const dataDir = yield* Config.String("CLERK_SYNC_PGLITE_DIR").pipe(Config.withDefault(".clerk-sync/pglite"))
  return layerPGlite({ ...common, dataDir })
}))
