/**
 * Accepted webhooks per second at a number of concurrent senders (closed loop: each sender posts
 * the next delivery when the previous one is answered), over a fixed time, from an in-order
 * realistic history; non-2xx answers are retried like Svix. Response times of the accepted
 * deliveries give p50/p99. Each measurement runs on a freshly started server and a fresh database.
 */
import { generate } from "../load/History.ts"
import { percentile, send } from "../load/Sender.ts"
import { type Context, interleaved, median, type ServerKind, start } from "./Context.ts"

export interface ThroughputResult {
  readonly concurrency: number
  /** Medians over the rounds. */
  readonly perSecond: Record<ServerKind, number>
  readonly p50: Record<ServerKind, number>
  readonly p99: Record<ServerKind, number>
  readonly peakRss: Record<ServerKind, number>
  /** Every round's figure, for the README. */
  readonly rounds: Record<ServerKind, ReadonlyArray<number>>
  readonly statuses: Record<ServerKind, Record<string, number>>
}

export const runThroughput = async (ctx: Context, concurrency: number): Promise<ThroughputResult> => {
  const seconds = ctx.quick ? 6 : 12
  const warmup = ctx.quick ? 1 : 2
  const rounds = ctx.quick ? 1 : 3
  // More events than any server can take in the time given (checked below).
  const history = generate({ events: Math.max(30_000, concurrency * 1_000), seed: 1000 + concurrency, idPrefix: `t${concurrency}x` })
  const results = await interleaved(rounds, async (kind, round) => {
    const { server } = await start(ctx, kind, `tp${concurrency}r${round}`)
    try {
      const t0 = performance.now()
      const r = await send(history.events, { url: server.url, secret: server.secret, concurrency, durationMs: (seconds + warmup) * 1000 })
      const from = t0 + warmup * 1000
      const to = t0 + (seconds + warmup) * 1000
      const ok = r.attempts.filter((a) => a.status >= 200 && a.status < 300 && a.end >= from && a.end <= to)
      // A server that took the whole history before the window closed was idle for the rest of it:
      // its rate is over the time it was sending, not the whole window.
      const exhausted = r.notSent === 0
      const end = exhausted ? Math.min(to, ok.reduce((m, a) => Math.max(m, a.end), from + 1)) : to
      if (exhausted) ctx.log(`  (${kind} took all ${history.events.length} events before the window closed: rate over ${((end - from) / 1000).toFixed(1)} s)`)
      const perSecond = ok.length / ((end - from) / 1000)
      const latencies = ok.map((a) => a.end - a.start)
      const mem = server.memory()
      ctx.log(`  throughput ${kind} ×${concurrency} round ${round + 1}: ${perSecond.toFixed(0)}/s, p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, ${JSON.stringify(r.statuses)}`)
      return { perSecond, p50: percentile(latencies, 50), p99: percentile(latencies, 99), peak: mem?.peak ?? NaN, statuses: r.statuses }
    } finally {
      await server.stop()
    }
  })
  const pick = (f: (x: (typeof results)["baseline"][number]) => number) => ({
    "clerk-sync": median(results["clerk-sync"].map(f)),
    baseline: median(results.baseline.map(f))
  })
  return {
    concurrency,
    perSecond: pick((x) => x.perSecond),
    p50: pick((x) => x.p50),
    p99: pick((x) => x.p99),
    peakRss: { "clerk-sync": Math.max(...results["clerk-sync"].map((x) => x.peak)), baseline: Math.max(...results.baseline.map((x) => x.peak)) },
    rounds: { "clerk-sync": results["clerk-sync"].map((x) => x.perSecond), baseline: results.baseline.map((x) => x.perSecond) },
    statuses: { "clerk-sync": results["clerk-sync"][0]!.statuses, baseline: results.baseline[0]!.statuses }
  }
}
