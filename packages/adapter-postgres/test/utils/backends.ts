/**
 * The backends every store test runs against, Kysely-style: the same assertions on PGlite and on
 * the run's real PostgreSQL 15 server. Each `layer()` call gets a schema of its own unless told
 * otherwise (which also exercises custom schema names), so tests sharing a database never see
 * each other's rows.
 */
import { PGlite } from "@electric-sql/pglite"
import pg from "pg"
import { afterAll, beforeAll } from "vitest"
import { PostgresStore } from "../../src/index.ts"
import { createTestDatabase, type TestDatabase } from "../../src/testing/index.ts"

export interface Backend {
  readonly name: string
  /** Whether it has several connections (lock contention can only be shown on those). */
  readonly concurrent: boolean
  readonly layer: (options?: PostgresStore.Options & { readonly poolSize?: number }) => PostgresStore.StoreLayer
  /** Runs SQL directly (superuser), for inspecting and breaking things. */
  readonly query: <R = Record<string, unknown>>(text: string, values?: ReadonlyArray<unknown>) => Promise<Array<R>>
  /** The database URL (real server only). */
  readonly url: () => string | undefined
}

let counter = 0
export const freshSchema = (prefix = "s") => `${prefix}_${process.pid}_${++counter}`

/**
 * Registers the file's backends: one PGlite instance and one database on the shared server,
 * made before the tests and dropped after.
 */
export const backends = (prefix: string): ReadonlyArray<Backend> => {
  let pglite: PGlite | undefined
  let database: TestDatabase | undefined
  let pool: pg.Pool | undefined
  beforeAll(async () => {
    ;[pglite, database] = await Promise.all([PGlite.create(), createTestDatabase({ prefix })])
    pool = new pg.Pool({ connectionString: database.url, max: 4 })
    pool.on("error", () => {})
  })
  afterAll(async () => {
    await pglite?.close()
    await pool?.end()
    await database?.drop()
  })
  return [
    {
      name: "PGlite",
      concurrent: false,
      layer: (options = {}) => PostgresStore.layerPGlite({ schema: freshSchema(), ...options, pglite: pglite! }),
      query: async (text, values = []) => (await pglite!.query(text, [...values])).rows as Array<any>,
      url: () => undefined
    },
    {
      name: "PostgreSQL 15",
      concurrent: true,
      layer: (options = {}) => PostgresStore.layerPg({ schema: freshSchema(), ...options, connectionString: database!.url }),
      query: async (text, values = []) => (await pool!.query(text, [...values])).rows,
      url: () => database!.url
    }
  ]
}
