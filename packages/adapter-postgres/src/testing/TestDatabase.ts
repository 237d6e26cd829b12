/**
 * Test databases on the run's shared PostgreSQL server.
 *
 * The root `vitest.config.ts` registers `packages/adapter-postgres/test/utils/global-setup.ts`,
 * which starts ONE real PostgreSQL 15 server for the whole test run and provides its URL to every
 * test file (`inject("clerkSyncPostgresUrl")`). Each test file then makes databases of its own with
 * {@link createTestDatabase}, so files running in parallel never see each other's rows.
 *
 * Tests that stop or crash the server must not do it to the shared one: they start a dedicated
 * server with `startPostgresServer()`.
 *
 * @example
 * import { createTestDatabase } from "@clerk-sync/adapter-postgres/testing"
 * const db = await createTestDatabase()
 * // db.url === "postgres://postgres@127.0.0.1:41234/t_socketio_1a2b3c"
 * await db.drop()
 *
 * @since 0.1.0
 */
import pg from "pg"
import type {} from "vitest"

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the `postgres` database of the run's shared PostgreSQL server (superuser). */
    clerkSyncPostgresUrl: string
  }
}

/** The environment variable naming an existing server to use instead of starting one. @category constants */
export const URL_ENV = "CLERK_SYNC_TEST_DATABASE_URL"

/**
 * URL of the shared server's `postgres` database. (vitest is loaded only here, so that the rest of
 * this module, and `startPostgresServer`, work outside vitest too: in benchmarks, say.)
 *
 * @category accessors
 */
export const sharedServerUrl = async (): Promise<string> => {
  let url: string | undefined
  try {
    const { inject } = await import("vitest")
    url = inject("clerkSyncPostgresUrl")
  } catch {
    // not inside a vitest worker
  }
  url ??= process.env[URL_ENV]
  if (!url) {
    throw new Error(
      `No PostgreSQL server for tests: register packages/adapter-postgres/test/utils/global-setup.ts as a vitest ` +
        `globalSetup (the root vitest.config.ts does), or set ${URL_ENV} to a superuser URL.`
    )
  }
  return url
}

/** @category models */
export interface TestDatabase {
  readonly name: string
  readonly url: string
  /** Drops the database (closing its remaining connections). */
  readonly drop: () => Promise<void>
}

const withUrl = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

let counter = 0

const admin = async <A>(serverUrl: string, f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: serverUrl })
  client.on("error", () => {})
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * Creates a fresh, empty database (from `template0`) on the shared server, or on `serverUrl`.
 *
 * @category constructors
 */
export const createTestDatabase = async (options: { readonly prefix?: string; readonly serverUrl?: string } = {}): Promise<TestDatabase> => {
  const serverUrl = options.serverUrl ?? (await sharedServerUrl())
  const prefix = (options.prefix ?? "t").toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 30)
  const name = `${prefix}_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 8)}`
  await admin(serverUrl, (client) => client.query(`CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`))
  return {
    name,
    url: withUrl(serverUrl, name),
    drop: () => admin(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined)
  }
}
