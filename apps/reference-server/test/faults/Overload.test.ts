/**
 * Overload: far more concurrent requests than the database pool can serve. The server keeps a
 * bounded queue (`WEBHOOK_MAX_IN_FLIGHT` ingests at once) and answers the rest at once with 503 and
 * `Retry-After`; memory stays bounded; and everything it accepted is processed (the retried rest
 * too, in the end: the final state is the expected one).
 */
import { createTestDatabase, type TestDatabase } from "@clerk-sync/adapter-postgres/testing"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { generate } from "../../../../bench/load/History.ts"
import { type ServerHandle, startClerkSync } from "../../../../bench/load/Processes.ts"
import { type Attempt, percentile, type RetryPolicy, send } from "../../../../bench/load/Sender.ts"
import * as State from "../../../../bench/load/State.ts"
import { readInbox, size } from "./utils/Harness.ts"

const EVENTS = size(600, 15_000)
const SENDERS = size(200, 1_000)
const MAX_IN_FLIGHT = 32
/** Svix's shape (immediately, then seconds apart), compressed: a shed delivery comes back later, not in a storm. */
const RETRY: RetryPolicy = { delays: [0, 1_000, 2_000, 4_000, 5_000], maxAttempts: 60 }

/** `clerk_sync_webhooks_total` summed over event types, by outcome. */
const webhookOutcomes = (metrics: string): Record<string, number> => {
  const totals: Record<string, number> = {}
  for (const match of metrics.matchAll(/^clerk_sync_webhooks_total\{[^}]*outcome="([^"]+)"[^}]*\} (\d+)$/gm)) {
    totals[match[1]!] = (totals[match[1]!] ?? 0) + Number(match[2])
  }
  return totals
}

describe("fault: overload", () => {
  let db: TestDatabase
  let server: ServerHandle

  beforeAll(async () => {
    db = await createTestDatabase({ prefix: "fault_overload" })
    server = await startClerkSync({ databaseUrl: db.url, env: { REALTIME: "none", WEBHOOK_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT) } })
  })

  afterAll(async () => {
    await server?.stop()
    await db?.drop()
  })

  it(`${SENDERS} concurrent senders against ${MAX_IN_FLIGHT} in flight (pool of 10): 503 + Retry-After from the bounded queue, bounded memory, all processed`, async () => {
    const history = generate({ events: EVENTS, seed: 31, idPrefix: "ovl" })
    const expected = await State.expected(history.events)
    const before = server.memory()!
    let peak = before.rss
    const sampler = setInterval(() => (peak = Math.max(peak, server.memory()?.rss ?? 0)), 100)
    const result = await send(history.events, { url: server.url, secret: server.secret, concurrency: SENDERS, retry: RETRY })
    clearInterval(sampler)

    const shed = result.attempts.filter((a) => a.status === 503)
    const ok = result.attempts.filter((a) => a.status === 200)
    const ms = (xs: ReadonlyArray<Attempt>, p: number) => percentile(xs.map((a) => a.end - a.start), p)
    const errors = [...new Set(result.attempts.flatMap((a) => (a.error ? [a.error] : [])))]
    const summary = `${JSON.stringify(result.statuses)} ${errors.join(",")}; 503 p50 ${ms(shed, 50).toFixed(1)} ms p99 ${ms(shed, 99).toFixed(1)} ms; 200 p50 ${ms(ok, 50).toFixed(1)} ms p99 ${ms(ok, 99).toFixed(1)} ms; RSS ${(before.rss / 1048576).toFixed(0)} → peak ${(peak / 1048576).toFixed(0)} MB`
    console.info(`overload: ${summary}`)

    assert.isAbove(shed.length, 0, `the server sheds load: ${summary}`)
    assert.isTrue(shed.every((a) => a.retryAfter !== null && Number(a.retryAfter) > 0), "every 503 says Retry-After")
    assert.deepStrictEqual(Object.keys(result.statuses).filter((s) => s !== "200" && s !== "503"), [], summary)
    // Every 503 is the bounded queue refusing a delivery up front ("overloaded"), not a database
    // that gave up under the load ("storage unavailable"). How fast a refusal is belongs to the
    // bench (`npm run bench -- --sections=overload`), not to a timed assertion on a shared machine.
    const outcomes = webhookOutcomes(await (await fetch(`${server.url}/metrics`)).text())
    assert.strictEqual(outcomes["overloaded"] ?? 0, shed.length, `${JSON.stringify(outcomes)}; ${summary}`)
    assert.strictEqual(outcomes["storage_unavailable"] ?? 0, 0, JSON.stringify(outcomes))
    assert.isBelow(peak - before.rss, 256 * 1048576, `memory bounded: ${summary}`)

    assert.deepStrictEqual(result.givenUp, [])
    const inbox = await readInbox(db.url)
    assert.strictEqual(inbox.rows, history.events.length)
    assert.strictEqual((inbox.byStatus["processed"] ?? 0) + (inbox.byStatus["ignored"] ?? 0), history.events.length, JSON.stringify(inbox.byStatus))
    const d = State.diff(expected, await State.readClerkSync(db.url))
    assert.strictEqual(d.count, 0, d.examples.join("\n"))
  }, 300_000)
})
