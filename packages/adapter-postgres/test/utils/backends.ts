/**
 * The backends every store test runs against, Kysely-style: the same assertions on PGlite and on
 * the run's real PostgreSQL 15 server. Each `layer()` call gets a schema of its own (which also
 * exercises custom schema names), so tests sharing a database never see each other's rows.
 */
import { PGlite } from "@electric-sql/pglite"
import { afterAll, beforeAll } from "vitest"
import { PostgresStore } from "../../src/index.ts"
import { createTestDatabase, type TestDatabase } from "../../src/testing/index.ts"

export interface Backend {
  readonly name: string
  /** Whether it has several connections (lock contention can only be shown on those). */
  readonly concurrent: boolean
  readonly layer: (options?: PostgresStore.Options) => PostgresStore.StoreLayer
  /** A superuser connection string (real server only), for inspecting and breaking things. */
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
  beforeAll(async () => {
    ;[pglite, database] = await Promise.all([PGlite.create(), createTestDatabase({ prefix })])
  })
  afterAll(async () => {
    await pglite?.close()
    await database?.drop()
  })
  return [
    {
      name: "PGlite",
      concurrent: false,
      layer: (options = {}) => PostgresStore.layerPGlite({ schema: freshSchema(), ...options, pglite: pglite! }),
      url: () => undefined
    },
    {
      name: "PostgreSQL 15",
      concurrent: true,
      layer: (options = {}) => PostgresStore.layerPg({ schema: freshSchema(), ...options, connectionString: database!.url }),
      url: () => database!.url
    }
  ]
}
