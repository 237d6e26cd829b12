/**
 * Webhook-to-client latency and fan-out, end to end: a webhook is signed and posted, the server
 * stores it and notifies, and a Socket.IO client (in this process) receives it. The latency of one
 * delivery is the time from the first byte of the webhook request to the client's `user.updated`.
 *
 * - Latency: one client, an open-loop stream of profile updates at a fixed rate.
 * - Fan-out: N clients connected at once, a few updates at 2 per second; every client must get each.
 *
 * The clients run in the benchmark process, so at 10,000 clients their own work (decoding 10,000
 * frames per event) is part of what is measured, for both servers alike.
 */
import pg from "pg"
import { connectClients } from "../load/Clients.ts"
import { markedStream } from "../load/History.ts"
import { percentile, type RetryPolicy, send, sendAtRate } from "../load/Sender.ts"
import { type Context, interleaved, median, type ServerKind, start } from "./Context.ts"

export interface LatencyResult {
  readonly label: string
  readonly p50: Record<ServerKind, number>
  readonly p99: Record<ServerKind, number>
  /**
   * Share of the expected deliveries that arrived (1 = all): for clerk-sync, of the notifications
   * it wrote (stale updates notify nobody); for the baseline, of the updates.
   */
  readonly delivered: Record<ServerKind, number>
  readonly peakRss: Record<ServerKind, number>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Notifications of one event the clerk-sync server wrote to its outbox. */
const notificationsWritten = async (databaseUrl: string, event: string): Promise<number> => {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM clerk_sync.outbox WHERE event = $1", [event])
    return Number(rows[0]!.n)
  } finally {
    await client.end()
  }
}

/** Svix's first retries, as they are: immediately, then after 5 s. */
const SVIX_FIRST_RETRIES: RetryPolicy = { delays: [0, 5_000], maxAttempts: 3 }

const measure = async (
  ctx: Context,
  kind: ServerKind,
  label: string,
  options: { readonly clients: number; readonly rate: number; readonly updates: number; readonly users: number }
) => {
  const { server, url } = await start(ctx, kind, label)
  let pool: Awaited<ReturnType<typeof connectClients>> | undefined
  try {
    const stream = markedStream({ users: options.users, updates: options.updates, idPrefix: `${label}x` })
    const setup = await send(stream.setup, { url: server.url, secret: server.secret, concurrency: 8 })
    if (setup.accepted !== stream.setup.length) throw new Error(`${kind}: setup not accepted: ${JSON.stringify(setup.statuses)}`)
    const received = new Map<string, Array<number>>()
    pool = await connectClients({
      kind,
      url: server.url,
      ...(kind === "clerk-sync" ? { token: server.adminToken } : {}),
      n: options.clients,
      onMarker: (marker, at) => {
        const list = received.get(marker)
        if (list) list.push(at)
        else received.set(marker, [at])
      },
      timeoutMs: 180_000
    })
    if (pool.connected() < options.clients) ctx.log(`  ${kind}: only ${pool.connected()} of ${options.clients} clients connected`)
    await sleep(500)
    const r = await sendAtRate(stream.stream, { url: server.url, secret: server.secret, rate: options.rate, retry: SVIX_FIRST_RETRIES })
    // clerk-sync notifies the updates that change something: an update that arrives (a retry after
    // a 503) once a newer one of the same user was applied is stale and notifies nobody, by
    // design. Its expected deliveries are the notifications it wrote; the baseline emits each.
    const notified = kind === "clerk-sync" ? await notificationsWritten(url, "user.updated") : options.updates
    const expected = notified * options.clients
    // Give stragglers a moment.
    const deadline = Date.now() + 15_000
    const count = () => [...received.values()].reduce((s, l) => s + l.length, 0)
    while (count() < expected && Date.now() < deadline) await sleep(100)
    const latencies: Array<number> = []
    for (let i = 0; i < options.updates; i++) {
      for (const at of received.get(stream.marker(i)) ?? []) latencies.push(at - r.sentAt[i]!)
    }
    const mem = server.memory()
    const result = { p50: percentile(latencies, 50), p99: percentile(latencies, 99), delivered: latencies.length / expected, peak: mem?.peak ?? NaN }
    const stale = options.updates - notified
    ctx.log(`  ${label} ${kind}: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, delivered ${(result.delivered * 100).toFixed(1)}% of ${expected}${stale > 0 ? ` (${stale} updates stale on arrival)` : ""}, webhooks ${JSON.stringify(r.statuses)}`)
    return result
  } finally {
    pool?.close()
    await server.stop()
  }
}

const summarize = (label: string, results: Record<ServerKind, ReadonlyArray<{ readonly p50: number; readonly p99: number; readonly delivered: number; readonly peak: number }>>): LatencyResult => {
  const pick = (f: (x: { readonly p50: number; readonly p99: number; readonly delivered: number; readonly peak: number }) => number) => ({
    "clerk-sync": median(results["clerk-sync"].map(f)),
    baseline: median(results.baseline.map(f))
  })
  return {
    label,
    p50: pick((x) => x.p50),
    p99: pick((x) => x.p99),
    delivered: pick((x) => x.delivered),
    peakRss: { "clerk-sync": Math.max(...results["clerk-sync"].map((x) => x.peak)), baseline: Math.max(...results.baseline.map((x) => x.peak)) }
  }
}

/** Webhook-to-client latency at `rate` events per second. */
export const runLatency = async (ctx: Context, rate: number): Promise<LatencyResult> => {
  const seconds = ctx.quick ? 3 : 8
  const results = await interleaved(ctx.quick ? 1 : 2, (kind, round) =>
    measure(ctx, kind, `lat${rate}r${round}`, { clients: 1, rate, updates: rate * seconds, users: Math.min(500, rate) }))
  return summarize(`latency ${rate}/s`, results)
}

/** Fan-out: `clients` clients, each must receive every update. */
export const runFanout = async (ctx: Context, clients: number): Promise<LatencyResult> => {
  const updates = ctx.quick ? 6 : 20
  const results = await interleaved(1, (kind, round) =>
    measure(ctx, kind, `fan${clients}r${round}`, { clients, rate: 2, updates, users: 10 }))
  return summarize(`fan-out ${clients}`, results)
}
