/**
 * PostgreSQL stopped and restarted twice (once cleanly, once as a crash) while a retrying sender
 * streams several thousand events at the reference server: every event ends processed exactly
 * once, the final state equals the expected one, and a realtime client receives every
 * notification, in `seq` order (resuming after the outage when it had to). Then SIGTERM still
 * shuts the server down cleanly: exit 0, the realtime client told why, nothing left to publish.
 */
import { startPostgresServer, type PostgresServer } from "@clerk-sync/adapter-postgres/testing"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { generate } from "../../../../bench/load/History.ts"
import { type ServerHandle, startClerkSync } from "../../../../bench/load/Processes.ts"
import { patient, send } from "../../../../bench/load/Sender.ts"
import * as State from "../../../../bench/load/State.ts"
import { eventually, RealtimeClient, readInbox, readOutbox, receivedAll, size, sleep } from "./utils/Harness.ts"

const EVENTS = size(3_000, 20_000)

describe("fault: PostgreSQL stopped and restarted during a stream", () => {
  let database: PostgresServer
  let server: ServerHandle
  let client: RealtimeClient

  beforeAll(async () => {
    database = await startPostgresServer({ name: "fault-pg-restart" })
    server = await startClerkSync({ databaseUrl: database.url })
    client = new RealtimeClient(server.url, server.adminToken)
    assert.isTrue(await client.connected(), "the admin client connects")
  })

  afterAll(async () => {
    client?.close()
    await server?.stop() // already stopped by the last test unless an earlier one failed
    await database?.destroy()
  })

  it(`${EVENTS} events, two restarts: each processed once, state as expected, every notification delivered in order`, async () => {
    const history = generate({ events: EVENTS, seed: 20261123, idPrefix: "pgr" })
    const expected = await State.expected(history.events)
    let accepted = 0
    const sending = send(history.events, {
      url: server.url,
      secret: server.secret,
      concurrency: 16,
      retry: patient,
      keepAttempts: false,
      onAttempt: (a) => {
        if (a.status >= 200 && a.status < 300) accepted++
      }
    })
    const outages: Array<string> = []
    for (const [at, mode] of [[1 / 3, "fast"], [2 / 3, "immediate"]] as const) {
      assert.isTrue(await eventually(() => accepted >= history.events.length * at, 120_000, 20), `the stream reaches ${Math.round(at * 100)}%`)
      await database.stop(mode)
      const during = accepted
      await sleep(1_500)
      await database.start()
      outages.push(`${mode} at ${during}`)
    }
    const result = await sending
    assert.deepStrictEqual(result.givenUp, [], "no delivery is given up")
    assert.strictEqual(result.accepted, history.events.length)
    assert.isAbove(result.statuses["503"] ?? 0, 0, `the outages were seen as 503 (${outages.join(", ")}): ${JSON.stringify(result.statuses)}`)
    assert.strictEqual(result.statuses["500"] ?? 0, 0, "never a 500")

    const inbox = await readInbox(database.url)
    assert.strictEqual(inbox.rows, history.events.length, "one inbox row per delivery")
    assert.strictEqual((inbox.byStatus["processed"] ?? 0) + (inbox.byStatus["ignored"] ?? 0), history.events.length, JSON.stringify(inbox.byStatus))

    const actual = await State.readClerkSync(database.url)
    const d = State.diff(expected, actual)
    assert.strictEqual(d.count, 0, d.examples.join("\n"))

    let outbox = await readOutbox(database.url)
    assert.isTrue(await eventually(async () => (outbox = await readOutbox(database.url)).pending === 0, 60_000), `the outbox drains (${outbox.pending} pending)`)
    assert.isTrue(await eventually(() => client.seqs.length >= outbox.seqs.length, 60_000), `the client gets every notification (${client.seqs.length} of ${outbox.seqs.length})`)
    assert.strictEqual(client.outOfOrder, 0, "in seq order")
    assert.isTrue(receivedAll(client, outbox.seqs), "exactly the outbox's notifications, each once, in order")
  }, 300_000)

  it("after the restarts, SIGTERM exits 0, tells the realtime client why, and leaves nothing unpublished", async () => {
    const closings: Array<string> = []
    client.socket.on("clerk-sync:closing", (c: { readonly code: string }) => void closings.push(c.code))
    // The bound only keeps a hang from stalling the suite: "timeout" means SIGTERM did not end it.
    const exit = await server.stop(60_000)
    assert.strictEqual(exit, 0, "SIGTERM ends the process after the database restarted under it")
    assert.deepStrictEqual(closings, ["shutdown"], "the realtime client is told the server is going")
    assert.notInclude(server.log(), "could not be flushed", "the outbox was flushed at shutdown")
    assert.strictEqual((await readOutbox(database.url)).pending, 0, "nothing left to publish")
  }, 120_000)
})
