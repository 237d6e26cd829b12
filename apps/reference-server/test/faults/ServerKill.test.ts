/**
 * The server process killed (SIGKILL) mid-stream and started again: no event half-applied (the
 * state is exactly the expected one), every retried event ends processed once, the outbox drains,
 * and a realtime client that rode out the crash has every notification in `seq` order.
 */
import { createTestDatabase, type TestDatabase } from "@clerk-sync/adapter-postgres/testing"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { generate } from "../../../../bench/load/History.ts"
import { type ServerHandle, startClerkSync } from "../../../../bench/load/Processes.ts"
import { patient, send } from "../../../../bench/load/Sender.ts"
import * as State from "../../../../bench/load/State.ts"
import { eventually, RealtimeClient, readInbox, readOutbox, receivedAll, size } from "./utils/Harness.ts"

const EVENTS = size(1_200, 20_000)
const KILLS = size(1, 3)

describe("fault: server process killed mid-stream", () => {
  let db: TestDatabase
  const servers: Array<ServerHandle> = []
  let client: RealtimeClient | undefined

  beforeAll(async () => {
    db = await createTestDatabase({ prefix: "fault_kill" })
  })

  afterAll(async () => {
    client?.close()
    for (const s of servers) await s.kill()
    await db?.drop()
  })

  it(`${EVENTS} events, ${KILLS} SIGKILL(s) and restart(s): nothing half-applied, each processed once, outbox drained`, async () => {
    const first = await startClerkSync({ databaseUrl: db.url })
    servers.push(first)
    client = new RealtimeClient(first.url, first.adminToken)
    assert.isTrue(await client.connected())

    const history = generate({ events: EVENTS, seed: 99, idPrefix: "kill" })
    const expected = await State.expected(history.events)
    let accepted = 0
    const sending = send(history.events, {
      url: first.url,
      secret: first.secret,
      concurrency: 16,
      retry: patient,
      keepAttempts: false,
      onAttempt: (a) => {
        if (a.status >= 200 && a.status < 300) accepted++
      }
    })
    for (let k = 1; k <= KILLS; k++) {
      assert.isTrue(await eventually(() => accepted >= (history.events.length * k) / (KILLS + 1), 120_000, 10))
      const victim = servers[servers.length - 1]!
      await victim.kill()
      assert.strictEqual(victim.child.signalCode, "SIGKILL")
      // Same port, secrets and data directory: what a supervisor restarting the process does.
      servers.push(await startClerkSync({
        databaseUrl: db.url,
        port: victim.port,
        secret: victim.secret,
        adminToken: victim.adminToken,
        dataDir: victim.env["CLERK_SYNC_DATA_DIR"]!
      }))
    }
    const result = await sending
    assert.deepStrictEqual(result.givenUp, [], "no delivery given up")
    assert.strictEqual(result.accepted, history.events.length)
    assert.isAbove(result.statuses["0"] ?? 0, 0, `the crash was seen by the sender: ${JSON.stringify(result.statuses)}`)

    const inbox = await readInbox(db.url)
    assert.strictEqual(inbox.rows, history.events.length, "one inbox row per delivery")
    assert.strictEqual((inbox.byStatus["processed"] ?? 0) + (inbox.byStatus["ignored"] ?? 0), history.events.length, JSON.stringify(inbox.byStatus))

    const d = State.diff(expected, await State.readClerkSync(db.url))
    assert.strictEqual(d.count, 0, d.examples.join("\n"))

    let outbox = await readOutbox(db.url)
    assert.isTrue(await eventually(async () => (outbox = await readOutbox(db.url)).pending === 0, 60_000), `the outbox drains (${outbox.pending} pending)`)
    assert.isTrue(await eventually(() => client!.seqs.length >= outbox.seqs.length, 60_000), `the client gets every notification (${client.seqs.length} of ${outbox.seqs.length})`)
    assert.isAbove(client.connects, 1, "the client reconnected")
    assert.strictEqual(client.outOfOrder, 0, "in seq order")
    assert.isTrue(receivedAll(client, outbox.seqs), "exactly the outbox's notifications, each once, in order")
  }, 300_000)
})
