/**
 * Group-commit benchmark: ingest throughput (events/s) and latency (p50, p99) of the Postgres store
 * at 1, 16 and 64 concurrent ingests, with one transaction per delivery and with group commit,
 * in the same run, against a real PostgreSQL 15 server this benchmark starts itself (fsync on:
 * the fsync per commit is what group commit saves). These machines are noisy: read the ratios.
 *
 * Two workloads of real Clerk deliveries, each going through the whole ingest (decode, lock, read,
 * plan, write, outbox):
 * - `independent`: users signing up and updating their profile (`user.created`, `user.updated`),
 *   each delivery about a user of its own: nothing to wait for but the commit;
 * - `contended`: users signing up and joining one of 20 organizations (`user.created`,
 *   `organizationMembership.created`): concurrent deliveries wait for each other on the
 *   organizations' locks, as a busy tenant's do.
 * Each client sends its next delivery when the previous one is answered (closed loop), as Svix's
 * concurrent deliveries do. Both modes use a pool of 20 connections; group commit runs with its
 * defaults.
 *
 * Run: `npx tsx bench/group-commit.ts` (from the repo root, so Node 24 is used).
 */
import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { startPostgresServer } from "@clerk-sync/adapter-postgres/testing"
import { ClerkSimulator, Ingest } from "@clerk-sync/core"
import { Effect, Layer } from "effect"
import { pathToFileURL } from "node:url"

export interface BenchRow {
  readonly name: string
  readonly value: number
  readonly unit: "events/s" | "ms"
  /** Group commit's figure divided by one-transaction-per-delivery's, same run, same concurrency. */
  readonly vsBaseline?: number | undefined
}

export type Workload = "independent" | "contended"

export interface GroupCommitBenchOptions {
  /** Concurrent ingests to measure (default 1, 16, 64). */
  readonly concurrency?: ReadonlyArray<number>
  /** Workloads to measure (default both). */
  readonly workloads?: ReadonlyArray<Workload>
  /** Deliveries per measurement at concurrency 1 (default 200); others get 8× that. */
  readonly events?: number
  /** Rounds per case, modes interleaved; the median round is reported (default 3). */
  readonly rounds?: number
}

type Mode = "single" | "group"

interface Measurement {
  readonly eventsPerSecond: number
  readonly p50: number
  readonly p99: number
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!

const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

let run = 0

/** A stream of `n` deliveries of the workload, and the deliveries to make before (not measured). */
const workload = (kind: Workload, n: number) => {
  const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: `b${++run}x`, startAt: 1_767_225_600_000 })
  const orgs = kind === "contended" ? Array.from({ length: 20 }, (_, i) => clerk.createOrganization({ name: `Org ${i}` })) : []
  const setup = [...clerk.events]
  for (let i = 0; clerk.events.length - setup.length < n; i++) {
    clerk.tick()
    const user = clerk.createUser({ firstName: `User ${i}`, email: `user${i}@example.com` })
    if (kind === "contended") clerk.addMember(user, orgs[i % orgs.length]!)
    else clerk.tick().updateUser(user, { lastName: `Updated ${i}` })
  }
  const stream = clerk.events.slice(setup.length, setup.length + n)
  // A user's two deliveries are not sent back to back (they would only wait for each other).
  const spread = kind === "independent" ? [...stream.filter((_, i) => i % 2 === 0), ...stream.filter((_, i) => i % 2 === 1)] : stream
  return { setup, stream: spread }
}

const measure = (url: string, kind: Workload, mode: Mode, concurrency: number, n: number): Promise<Measurement> => {
  const { setup, stream } = workload(kind, n)
  const layer = PostgresStore.layerPg({
    connectionString: url,
    schema: `bench_${mode}_${run}`,
    groupCommit: mode === "group",
    poolSize: 20
  })
  return Effect.runPromise(Effect.gen(function*() {
    const context = yield* Layer.build(layer)
    yield* Effect.forEach(setup, (e) => Ingest.ingest(e), { concurrency: 4 }).pipe(Effect.provide(context))
    const latencies: Array<number> = []
    const start = performance.now()
    yield* Effect.forEach(stream, (e) =>
      Effect.suspend(() => {
        const t = performance.now()
        return Ingest.ingest(e).pipe(Effect.tap(() => Effect.sync(() => void latencies.push(performance.now() - t))))
      }), { concurrency, discard: true }).pipe(Effect.provide(context))
    const seconds = (performance.now() - start) / 1000
    latencies.sort((a, b) => a - b)
    return { eventsPerSecond: stream.length / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }
  }).pipe(Effect.scoped))
}

/** Runs the benchmark and returns its rows (also used by `bench/run.ts`). */
export const runGroupCommitBench = async (options: GroupCommitBenchOptions = {}): Promise<ReadonlyArray<BenchRow>> => {
  const levels = options.concurrency ?? [1, 16, 64]
  const workloads = options.workloads ?? ["independent", "contended"]
  const rounds = options.rounds ?? 3
  const base = options.events ?? 200
  const server = await startPostgresServer({ name: "bench", settings: { max_connections: 200 } })
  try {
    const results = new Map<string, Array<Measurement>>()
    // Warm-up (JIT, server caches), not reported.
    await measure(server.url, "contended", "single", 16, 200)
    await measure(server.url, "contended", "group", 16, 200)
    for (let round = 0; round < rounds; round++) {
      for (const kind of workloads) {
        for (const concurrency of levels) {
          const n = concurrency === 1 ? base : base * 8
          // Alternate which mode goes first, so neither always runs on a warmer server.
          const modes: ReadonlyArray<Mode> = round % 2 === 0 ? ["single", "group"] : ["group", "single"]
          for (const mode of modes) {
            const key = `${kind}:${mode}:${concurrency}`
            results.set(key, [...(results.get(key) ?? []), await measure(server.url, kind, mode, concurrency, n)])
          }
        }
      }
    }
    const rows: Array<BenchRow> = []
    for (const kind of workloads) {
      for (const concurrency of levels) {
        const of = (mode: Mode) => {
          const ms = results.get(`${kind}:${mode}:${concurrency}`)!
          return { eventsPerSecond: median(ms.map((m) => m.eventsPerSecond)), p50: median(ms.map((m) => m.p50)), p99: median(ms.map((m) => m.p99)) }
        }
        const single = of("single")
        const group = of("group")
        const label = `${kind}, ${concurrency} concurrent`
        rows.push(
          { name: `one transaction per delivery, ${label}: throughput`, value: single.eventsPerSecond, unit: "events/s" },
          { name: `group commit, ${label}: throughput`, value: group.eventsPerSecond, unit: "events/s", vsBaseline: group.eventsPerSecond / single.eventsPerSecond },
          { name: `one transaction per delivery, ${label}: p50`, value: single.p50, unit: "ms" },
          { name: `group commit, ${label}: p50`, value: group.p50, unit: "ms", vsBaseline: group.p50 / single.p50 },
          { name: `one transaction per delivery, ${label}: p99`, value: single.p99, unit: "ms" },
          { name: `group commit, ${label}: p99`, value: group.p99, unit: "ms", vsBaseline: group.p99 / single.p99 }
        )
      }
    }
    return rows
  } finally {
    await server.destroy()
  }
}

const format = (rows: ReadonlyArray<BenchRow>): string => {
  const lines = ["| workload | concurrent ingests | mode | events/s | p50 ms | p99 ms |", "|---|---:|---|---:|---:|---:|"]
  const cases = [...new Set(rows.map((r) => r.name.match(/, (\w+, \d+) concurrent/)![1]!))]
  for (const c of cases) {
    const [kind, level] = c.split(", ")
    for (const mode of ["one transaction per delivery", "group commit"]) {
      const get = (metric: string) => rows.find((r) => r.name === `${mode}, ${c} concurrent: ${metric}`)!
      const ratio = (r: BenchRow) => (r.vsBaseline === undefined ? "" : ` (×${r.vsBaseline.toFixed(2)})`)
      const t = get("throughput")
      const p50 = get("p50")
      const p99 = get("p99")
      lines.push(`| ${kind} | ${level} | ${mode} | ${t.value.toFixed(0)}${ratio(t)} | ${p50.value.toFixed(1)}${ratio(p50)} | ${p99.value.toFixed(1)}${ratio(p99)} |`)
    }
  }
  return lines.join("\n")
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const rows = await runGroupCommitBench()
  console.log(format(rows))
  console.log("\n(×n: group commit relative to one transaction per delivery, same run and concurrency)")
}
