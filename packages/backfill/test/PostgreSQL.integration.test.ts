/**
 * The backfill on a real PostgreSQL 15 server (the test run's shared server, a database of this
 * file's own, a schema per test).
 */
import { afterAll, beforeAll } from "vitest"
import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { createTestDatabase, type TestDatabase } from "@clerk-sync/adapter-postgres/testing"
import { storeSuite } from "./utils/StoreSuite.ts"

let database: TestDatabase | undefined
beforeAll(async () => {
  database = await createTestDatabase({ prefix: "backfill" })
})
afterAll(() => database?.drop())

let schemas = 0
storeSuite({
  name: "PostgreSQL 15",
  fill: { users: 1_000, organizations: 100, memberships: 1_500 },
  race: { users: 120, organizations: 12, memberships: 150 },
  fresh: () => {
    const schema = `backfill_${process.pid}_${++schemas}`
    const make = () => PostgresStore.layerPg({ connectionString: database!.url, schema })
    return { layer: make(), again: make }
  }
})
