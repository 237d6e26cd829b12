/**
 * Shutting down a node clustered over a real PostgreSQL after the database dropped its connections
 * (a restart, a failover): closing the realtime gives back every connection the Socket.IO adapter
 * held, so the application's `pool.end()` completes and the process can exit.
 */
import { MemoryStore } from "@clerk-sync/core"
import { createTestDatabase, type TestDatabase } from "@clerk-sync/adapter-postgres/testing"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import pg from "pg"
import { ADMIN_TOKEN, connectReady, sleep, startServer } from "./utils/harness.ts"

const APP = "clerk-sync-socketio-shutdown-test"

/** Resolves with "ended", or "still open" if `pool.end()` has not completed within the bound. */
const ends = async (pool: pg.Pool, boundMs: number): Promise<"ended" | "still open"> => {
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    pool.end().then(() => "ended" as const),
    new Promise<"still open">((ok) => (timer = setTimeout(() => ok("still open"), boundMs)))
  ])
  clearTimeout(timer)
  return outcome
}

const eventually = async (check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(50)
  }
}

const listeners = async (admin: pg.Client, db: TestDatabase): Promise<Array<number>> => {
  const { rows } = await admin.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND query LIKE 'LISTEN%'",
    [db.name, APP]
  )
  return rows.map((r) => r.pid)
}

describe("a clustered node shutting down after the database dropped its connections", () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined)
  })

  it("releases the adapter's LISTEN connection: pool.end() completes, nothing left open", async () => {
    const db = await createTestDatabase({ prefix: "socketio_shutdown" })
    cleanups.push(() => db.drop())
    const admin = new pg.Client({ connectionString: db.url })
    await admin.connect()
    cleanups.push(() => admin.end())
    const pool = new pg.Pool({ connectionString: db.url, max: 4, application_name: APP })
    pool.on("error", () => {})
    const server = await startServer(await Effect.runPromise(MemoryStore.make), { postgres: { pool }, pollIntervalMs: 0 })
    let closed = false
    cleanups.push(async () => {
      if (!closed) await server.close()
    })
    const client = await connectReady(server.url, { token: ADMIN_TOKEN })
    cleanups.push(async () => client.close())

    let first: Array<number> = []
    await eventually(async () => (first = await listeners(admin, db)).length === 1, "the adapter LISTENs")
    // What a restart does to it; the adapter reconnects on its own.
    await admin.query("SELECT pg_terminate_backend($1)", [first[0]])
    await eventually(async () => {
      const now = await listeners(admin, db)
      return now.length === 1 && now[0] !== first[0]
    }, "the adapter LISTENs again")

    await server.close()
    closed = true
    // The bound only keeps a leak from stalling the suite.
    assert.strictEqual(await ends(pool, 20_000), "ended", "no connection is still checked out by the adapter")
    assert.strictEqual(pool.totalCount, 0)
    assert.deepStrictEqual(await listeners(admin, db), [], "nothing LISTENs any more")
  }, 90_000)
})
