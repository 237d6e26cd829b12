import { assert, describe, it } from "@effect/vitest"
import { statSync } from "node:fs"
import pg from "pg"
import { createTestDatabase, sharedServerUrl } from "../src/testing/index.ts"

const query = async (url: string, text: string): Promise<ReadonlyArray<Record<string, unknown>>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text)).rows
  } finally {
    await client.end()
  }
}

describe("test harness: the run's PostgreSQL server", () => {
  it("is a real PostgreSQL server (15, unless CLERK_SYNC_PG_BIN names another), fsync on, not run by root", async () => {
    const [row] = await query(await sharedServerUrl(), "SELECT current_setting('server_version_num')::int AS v, current_setting('fsync') AS fsync")
    assert.isAtLeast(Number(row!["v"]), 150000)
    if (process.env["CLERK_SYNC_PG_BIN"] === undefined && process.env["CLERK_SYNC_TEST_DATABASE_URL"] === undefined) {
      assert.isBelow(Number(row!["v"]), 160000)
    }
    assert.strictEqual(row!["fsync"], "on")
    // PostgreSQL refuses to run as root; its data directory belongs to the user it runs as.
    const [dir] = await query(await sharedServerUrl(), "SELECT current_setting('data_directory') AS d")
    if (process.env["CLERK_SYNC_TEST_DATABASE_URL"] === undefined) assert.notStrictEqual(statSync(String(dir!["d"])).uid, 0)
  })

  it("makes isolated databases per test file", async () => {
    const a = await createTestDatabase({ prefix: "harness" })
    const b = await createTestDatabase({ prefix: "harness" })
    try {
      assert.notStrictEqual(a.url, b.url)
      await query(a.url, "CREATE TABLE only_in_a (x int)")
      const rows = await query(b.url, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'only_in_a'")
      assert.strictEqual(rows[0]!["n"], 0)
    } finally {
      await a.drop()
      await b.drop()
    }
  })
})
