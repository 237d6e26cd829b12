/**
 * Backfill benchmark: objects/s of `Backfill.run` filling an empty PostgreSQL database (users,
 * then organizations, then memberships) from a fake Backend API, with the objects of a page
 * ingested one at a time (concurrency 1) and at the default concurrency, in the same run, against
 * a real PostgreSQL 15 server this benchmark starts itself (fsync on: one commit per object is what
 * concurrency lets group commit share). These machines are noisy: read the ratio.
 *
 * The API is local and unthrottled (a production instance's 1,000 requests per 10 s read 50,000
 * objects/s, far above what any store ingests), so what is measured is the ingest. Each measurement
 * gets a schema of its own with the store's defaults (pool of 10, group commit on), and runs as a
 * first import does (`--no-notifications`).
 *
 * Run: `npx tsx bench/backfill.ts` (from the repo root, so Node 24 is used); `--concurrency=1,16,32`
 * measures other levels (the first is the baseline), `--rounds=n` sets the rounds.
 */
import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { startPostgresServer } from "@clerk-sync/adapter-postgres/testing"
import { Backfill, ClerkApi } from "@clerk-sync/backfill"
import { ClerkSimulator } from "@clerk-sync/core"
import { Effect, Layer } from "effect"
import { pathToFileURL } from "node:url"
import { FakeClerkApi } from "../packages/backfill/test/utils/FakeClerkApi.ts"

export interface BenchRow {
  readonly name: string
  readonly value: number
  readonly unit: "objects/s"
  /** objects/s divided by concurrency 1's, same run. */
  readonly vsBaseline?: number | undefined
}

export interface BackfillBenchOptions {
  /** Concurrencies to measure; the first is the baseline (default 1 and `Backfill.DEFAULT_CONCURRENCY`). */
  readonly concurrency?: ReadonlyArray<number>
  /** The instance (default 3,000 users, 300 organizations, 3,000 memberships). */
  readonly users?: number
  readonly organizations?: number
  readonly memberships?: number
  /** Rounds, concurrencies interleaved; the median round is reported (default 3). */
  readonly rounds?: number
}

const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** A deterministic instance: the same objects for every measurement. */
const instance = (users: number, organizations: number, memberships: number) => {
  const sim = new ClerkSimulator.ClerkSimulator({ startAt: 1_767_225_600_000, idPrefix: "bf" })
  const userIds = Array.from({ length: users }, (_, i) => sim.tick().createUser({ firstName: `User ${i}`, email: `user${i}@example.com` }))
  const orgIds = Array.from({ length: organizations }, (_, i) => sim.tick().createOrganization({ name: `Org ${i}` }))
  // Spread over users and organizations; each round over the users shifts the organization, so no pair repeats.
  for (let i = 0; i < memberships; i++) {
    sim.tick().addMember(userIds[i % users]!, orgIds[(i + Math.floor(i / users)) % organizations]!, i % 5 === 0 ? "org:admin" : "org:member")
  }
  return sim
}

let schemas = 0

const measure = (url: string, fake: FakeClerkApi, concurrency: number): Promise<{ readonly objects: number; readonly perSecond: number }> => {
  const store = PostgresStore.layerPg({ connectionString: url, schema: `bench_backfill_${++schemas}` })
  const api = ClerkApi.layer({ secretKey: fake.secretKey, apiUrl: fake.url, rate: { limit: 1_000_000, window: 1_000, burst: 10_000 } })
  return Effect.runPromise(Effect.gen(function*() {
    const context = yield* Layer.build(Layer.merge(store, api))
    const start = performance.now()
    const summary = yield* Backfill.run({ concurrency, notify: false }).pipe(Effect.provide(context))
    const seconds = (performance.now() - start) / 1000
    const failed = summary.counts.user.failed + summary.counts.organization.failed + summary.counts.membership.failed
    if (failed > 0) throw new Error(`bench: ${failed} objects failed: ${JSON.stringify(summary.failures)}`)
    return { objects: summary.fetchedNow, perSecond: summary.fetchedNow / seconds }
  }).pipe(Effect.scoped))
}

/** Runs the benchmark and returns its rows (also used by `bench/run.ts`). */
export const runBackfillBench = async (options: BackfillBenchOptions = {}): Promise<ReadonlyArray<BenchRow>> => {
  const levels = options.concurrency ?? [1, Backfill.DEFAULT_CONCURRENCY]
  const rounds = options.rounds ?? 3
  const sim = instance(options.users ?? 3_000, options.organizations ?? 300, options.memberships ?? 3_000)
  const server = await startPostgresServer({ name: "bench-backfill" })
  const fake = await FakeClerkApi.start(sim)
  try {
    // Warm-up (JIT, server caches), not reported.
    for (const c of levels) await measure(server.url, fake, c)
    const results = new Map<number, Array<number>>()
    let objects = 0
    for (let round = 0; round < rounds; round++) {
      // Alternate the order, so no level always runs on a warmer (or fuller) server.
      for (const c of round % 2 === 0 ? levels : [...levels].reverse()) {
        const m = await measure(server.url, fake, c)
        objects = m.objects
        results.set(c, [...(results.get(c) ?? []), m.perSecond])
      }
    }
    const base = median(results.get(levels[0]!)!)
    return levels.map((c, i): BenchRow => {
      const value = median(results.get(c)!)
      return {
        name: `backfill of ${objects.toLocaleString("en-US")} objects into PostgreSQL, concurrency ${c}`,
        value,
        unit: "objects/s",
        ...(i === 0 ? {} : { vsBaseline: value / base })
      }
    })
  } finally {
    await fake.close()
    await server.destroy()
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
  const concurrency = arg("concurrency")?.split(",").map(Number)
  const rounds = arg("rounds")
  console.log(`backfill bench, Node ${process.version}, median of interleaved rounds`)
  const options = { ...(concurrency === undefined ? {} : { concurrency }), ...(rounds === undefined ? {} : { rounds: Number(rounds) }) }
  for (const row of await runBackfillBench(options)) {
    const ratio = row.vsBaseline === undefined ? "" : `  (×${row.vsBaseline.toFixed(2)} concurrency ${concurrency?.[0] ?? 1})`
    console.log(`${row.name.padEnd(70)} ${Math.round(row.value).toLocaleString("en-US").padStart(8)} objects/s${ratio}`)
  }
}
