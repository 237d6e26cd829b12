/**
 * Sustained overload: an open-loop stream well above what either server can take (as Clerk's
 * traffic does not slow down when the server does), without retries, each request given Svix's
 * 15 s. A server that queues everything grows and answers ever later; one that sheds answers
 * 503/429 at once and stays flat.
 */
import { generate } from "../load/History.ts"
import { once, percentile, sendAtRate } from "../load/Sender.ts"
import { type Context, type ServerKind, interleaved, start } from "./Context.ts"

export interface OverloadResult {
  readonly rate: number
  readonly seconds: number
  /** Share of requests answered 503 or 429. */
  readonly shed: Record<ServerKind, number>
  /** Share of requests with no answer within 15 s (or a connection error). */
  readonly timedOut: Record<ServerKind, number>
  readonly acceptedPerSecond: Record<ServerKind, number>
  /** p99 time to any answer (ms). */
  readonly p99: Record<ServerKind, number>
  readonly rssStart: Record<ServerKind, number>
  readonly rssPeak: Record<ServerKind, number>
  /** RSS growth per second over the second half of the run (bytes/s). */
  readonly rssSlope: Record<ServerKind, number>
}

export const runOverload = async (ctx: Context): Promise<OverloadResult> => {
  // Well above either server's capacity on these machines (both take 1,000/s as of 2026-12).
  const rate = 2_500
  // Long enough to see whether memory levels off: a server's heap and its connections' buffers
  // take tens of seconds to reach their steady size (the slope is over the second half).
  const seconds = ctx.quick ? 8 : 60
  const history = generate({ events: rate * seconds, seed: 77, idPrefix: "ovx" })
  const results = await interleaved(1, async (kind, round) => {
    const { server } = await start(ctx, kind, `ovl${round}`)
    try {
      const samples: Array<{ readonly t: number; readonly rss: number }> = []
      const t0 = performance.now()
      const start0 = server.memory()?.rss ?? NaN
      const timer = setInterval(() => samples.push({ t: performance.now() - t0, rss: server.memory()?.rss ?? NaN }), 250)
      const r = await sendAtRate(history.events, { url: server.url, secret: server.secret, rate, retry: once, maxInFlight: 3_000, timeoutMs: 15_000 })
      clearInterval(timer)
      const total = r.attempts.length
      const shed = ((r.statuses["503"] ?? 0) + (r.statuses["429"] ?? 0)) / total
      const timedOut = (r.statuses["0"] ?? 0) / total
      const sendWindow = samples.filter((s) => s.t >= (seconds * 1000) / 2 && s.t <= seconds * 1000)
      const first = sendWindow[0]
      const last = sendWindow[sendWindow.length - 1]
      const slope = first && last && last.t > first.t ? ((last.rss - first.rss) / (last.t - first.t)) * 1000 : NaN
      const peak = Math.max(...samples.map((s) => s.rss))
      const p99 = percentile(r.attempts.map((a) => a.end - a.start), 99)
      ctx.log(`  overload ${kind}: ${JSON.stringify(r.statuses)}, p99 ${p99.toFixed(0)} ms, RSS ${(start0 / 1048576).toFixed(0)} → peak ${(peak / 1048576).toFixed(0)} MB, slope ${(slope / 1048576).toFixed(1)} MB/s`)
      return { shed, timedOut, accepted: r.accepted / ((r.endedAt - r.startedAt) / 1000), p99, start: start0, peak, slope }
    } finally {
      await server.stop()
    }
  })
  const pick = (f: (x: (typeof results)["baseline"][number]) => number) => ({ "clerk-sync": f(results["clerk-sync"][0]!), baseline: f(results.baseline[0]!) })
  return {
    rate,
    seconds,
    shed: pick((x) => x.shed),
    timedOut: pick((x) => x.timedOut),
    acceptedPerSecond: pick((x) => x.accepted),
    p99: pick((x) => x.p99),
    rssStart: pick((x) => x.start),
    rssPeak: pick((x) => x.peak),
    rssSlope: pick((x) => x.slope)
  }
}
