/**
 * `npm run bench`: clerk-sync against the seeds' design (the baseline in `baseline/`), in one run,
 * on one dedicated PostgreSQL 15 server started here (fsync on), each measurement on a freshly
 * started server and a fresh database; prints one table and writes it to `bench/README.md`.
 *
 *   npm run bench                 # the full run (about 15–20 minutes on 2 cores)
 *   npm run bench -- --quick      # a short run (a few minutes)
 *   npm run bench -- --sections=throughput,correctness   # some sections (README untouched)
 *   npm run bench -- --no-write   # do not touch README.md
 *   npm run bench -- --components # also the component benchmarks (encryption, group commit, realtime, backfill)
 */
import { startPostgresServer } from "@clerk-sync/adapter-postgres/testing"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, totalmem, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Context, ServerKind } from "./scenarios/Context.ts"
import { type CorrectnessResult, runCorrectness } from "./scenarios/Correctness.ts"
import { type OverloadResult, runOverload } from "./scenarios/Overload.ts"
import { type LatencyResult, runFanout, runLatency } from "./scenarios/Realtime.ts"
import { runThroughput, type ThroughputResult } from "./scenarios/Throughput.ts"

// Flags come as arguments (`tsx run.ts --quick`) or, through the root script's nested `npm run`,
// as npm configuration (`npm run bench -- --quick` reaches this process as npm_config_quick=true).
const args = process.argv.slice(2)
const env = process.env
const flag = (name: string) => args.includes(`--${name}`) || env[`npm_config_${name}`] === "true"
const quick = flag("quick")
const write = !(args.includes("--no-write") || env["npm_config_write"] === "" || env["npm_config_write"] === "false")
const only = (args.find((a) => a.startsWith("--sections="))?.slice(11) ?? env["npm_config_sections"])?.split(",").filter((x) => x.length > 0)
const components = flag("components")
const wants = (section: string) => only === undefined || only.includes(section)

const log = (line: string) => console.log(line)
const MB = 1048576

const machine = () => {
  const pgVersion = (() => {
    try {
      return execFileSync(join(process.env.CLERK_SYNC_PG_BIN ?? "/usr/lib/postgresql/15/bin", "postgres"), ["--version"], { encoding: "utf8" }).trim()
    } catch {
      return "PostgreSQL (version unknown)"
    }
  })()
  let load = ""
  try {
    load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
  } catch {
    // not Linux
  }
  return { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", memory: `${(totalmem() / 1024 ** 3).toFixed(0)} GiB`, node: process.version, pg: pgVersion, load }
}

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "–")
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "–")
const ratio = (a: number, b: number, higherIsBetter: boolean) => {
  if (!Number.isFinite(a) || !Number.isFinite(b) || a === 0 || b === 0) return "–"
  const r = higherIsBetter ? a / b : b / a
  return `${r.toFixed(2)}×`
}

interface Row {
  readonly figure: string
  readonly clerkSync: string
  readonly baseline: string
  readonly ratio: string
}

const main = async () => {
  const m = machine()
  log(`clerk-sync bench (${quick ? "quick" : "full"}): ${m.cpus} × ${m.model}, ${m.memory}, Node ${m.node}, ${m.pg}, load ${m.load}`)
  const pg = await startPostgresServer({ name: "bench", settings: { shared_buffers: "128MB" } })
  const logDir = mkdtempSync(join(tmpdir(), "clerk-sync-bench-logs-"))
  const ctx: Context = { pg, quick, log, logDir }
  const started = performance.now()
  const throughput: Array<ThroughputResult> = []
  const latency: Array<LatencyResult> = []
  const fanout: Array<LatencyResult> = []
  let overload: OverloadResult | undefined
  let correctness: CorrectnessResult | undefined
  const componentRows: Array<{ readonly bench: string; readonly name: string; readonly value: number; readonly unit: string; readonly vsBaseline?: number | undefined }> = []
  try {
    if (wants("throughput")) {
      log("throughput (closed loop, fsync on)")
      for (const c of [1, 16, 64]) throughput.push(await runThroughput(ctx, c))
    }
    if (wants("latency")) {
      log("webhook-to-client latency")
      for (const rate of [100, 1_000]) latency.push(await runLatency(ctx, rate))
    }
    if (wants("fanout")) {
      log("fan-out")
      for (const n of [1_000, 10_000]) fanout.push(await runFanout(ctx, n))
    }
    if (wants("overload")) {
      log("sustained overload")
      overload = await runOverload(ctx)
    }
    if (wants("correctness")) {
      log("correctness")
      correctness = await runCorrectness(ctx)
    }
    if (components) {
      log("component benchmarks")
      const { runEncryptionBench } = await import("./encryption.ts")
      for (const r of await runEncryptionBench(quick ? { rounds: 1, roundMs: 200 } : {})) componentRows.push({ bench: "encryption", ...r })
      const { runGroupCommitBench } = await import("./group-commit.ts")
      for (const r of await runGroupCommitBench(quick ? { rounds: 1 } : {})) componentRows.push({ bench: "group commit", ...r })
      const { runRealtimeBench } = await import("./realtime.ts")
      for (const r of await runRealtimeBench(quick ? { rounds: 1, seconds: 2 } : {})) componentRows.push({ bench: "realtime", ...r })
      const { runBackfillBench } = await import("./backfill.ts")
      for (const r of await runBackfillBench(quick ? { rounds: 1, users: 1_000, organizations: 100, memberships: 1_000 } : {})) componentRows.push({ bench: "backfill", ...r })
    }
  } finally {
    await pg.destroy()
  }
  const minutes = (performance.now() - started) / 60_000

  const rows: Array<Row> = []
  const pair = (r: Record<ServerKind, number>, fmt: (x: number) => string) => ({ clerkSync: fmt(r["clerk-sync"]), baseline: fmt(r.baseline) })
  for (const t of throughput) {
    rows.push({ figure: `accepted webhooks/s, ${t.concurrency} sender${t.concurrency > 1 ? "s" : ""}`, ...pair(t.perSecond, f0), ratio: ratio(t.perSecond["clerk-sync"], t.perSecond.baseline, true) })
  }
  for (const t of throughput) {
    rows.push({
      figure: `response latency p50 / p99 (ms), ${t.concurrency} sender${t.concurrency > 1 ? "s" : ""}`,
      clerkSync: `${f1(t.p50["clerk-sync"])} / ${f1(t.p99["clerk-sync"])}`,
      baseline: `${f1(t.p50.baseline)} / ${f1(t.p99.baseline)}`,
      ratio: `p99 ${ratio(t.p99["clerk-sync"], t.p99.baseline, false)}`
    })
  }
  for (const l of [...latency, ...fanout]) {
    const what = l.label.startsWith("latency") ? `webhook→client p50 / p99 (ms) at ${l.label.slice(8, -2)} events/s` : `${l.label} clients: webhook→client p50 / p99 (ms), delivered`
    const cell = (k: ServerKind) => `${f1(l.p50[k])} / ${f1(l.p99[k])}${l.delivered[k] < 0.9995 ? ` (${(l.delivered[k] * 100).toFixed(1)}% delivered)` : ", 100%"}`
    rows.push({ figure: what, clerkSync: cell("clerk-sync"), baseline: cell("baseline"), ratio: `p99 ${ratio(l.p99["clerk-sync"], l.p99.baseline, false)}` })
  }
  const peaks: Record<ServerKind, number> = { "clerk-sync": 0, baseline: 0 }
  for (const k of ["clerk-sync", "baseline"] as const) {
    for (const t of throughput) peaks[k] = Math.max(peaks[k], t.peakRss[k])
    for (const l of [...latency, ...fanout]) peaks[k] = Math.max(peaks[k], l.peakRss[k])
  }
  if (peaks["clerk-sync"] > 0) {
    rows.push({ figure: "peak RSS of the server (MB), throughput / latency / fan-out runs", ...pair(peaks, (x) => f0(x / MB)), ratio: ratio(peaks["clerk-sync"], peaks.baseline, false) })
  }
  if (overload) {
    const o = overload
    const cell = (k: ServerKind) =>
      `${(o.shed[k] * 100).toFixed(0)}% shed, ${(o.timedOut[k] * 100).toFixed(0)}% timed out, p99 ${f0(o.p99[k])} ms, RSS ${f0(o.rssStart[k] / MB)} → ${f0(o.rssPeak[k] / MB)} MB (${f1(o.rssSlope[k] / MB)} MB/s)`
    rows.push({ figure: `sustained overload, ${o.rate}/s open loop for ${o.seconds} s`, clerkSync: cell("clerk-sync"), baseline: cell("baseline"), ratio: `p99 ${ratio(o.p99["clerk-sync"], o.p99.baseline, false)}` })
  }
  if (correctness) {
    const c = correctness
    const cell = (r: CorrectnessResult["inOrder"]["baseline"]) => `${r.mismatches}${r.fullMismatches === null ? "" : ` (full state ${r.fullMismatches})`}${r.givenUp > 0 ? `, ${r.givenUp} given up` : ""}`
    rows.push({ figure: `final-state mismatches, in order (${c.events} events, ${c.entities} entities)`, clerkSync: cell(c.inOrder["clerk-sync"]), baseline: cell(c.inOrder.baseline), ratio: "" })
    rows.push({ figure: "final-state mismatches, reordered (windows of 64) + 10% duplicates", clerkSync: cell(c.reordered["clerk-sync"]), baseline: cell(c.reordered.baseline), ratio: "" })
  }

  const table = [
    "| figure | clerk-sync | baseline | clerk-sync vs baseline |",
    "| --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.figure} | ${r.clerkSync} | ${r.baseline} | ${r.ratio} |`)
  ].join("\n")

  // Targets.
  const targets: Array<string> = []
  const t64 = throughput.find((t) => t.concurrency === 64)
  if (t64) {
    const x = t64.perSecond["clerk-sync"] / t64.perSecond.baseline
    const p99ok = t64.p99["clerk-sync"] <= t64.p99.baseline
    targets.push(`- ${x >= 3 && p99ok ? "MET" : "NOT MET"}: at 64 senders ≥ 3× the baseline's throughput with equal or better p99 — measured ${x.toFixed(2)}× (${f0(t64.perSecond["clerk-sync"])}/s vs ${f0(t64.perSecond.baseline)}/s), p99 ${f1(t64.p99["clerk-sync"])} ms vs ${f1(t64.p99.baseline)} ms.`)
  }
  if (correctness) {
    const z = correctness.inOrder["clerk-sync"].mismatches + correctness.reordered["clerk-sync"].mismatches + (correctness.inOrder["clerk-sync"].fullMismatches ?? 0) + (correctness.reordered["clerk-sync"].fullMismatches ?? 0)
    targets.push(`- ${z === 0 ? "MET" : "NOT MET"}: zero mismatches under reordering and duplication — clerk-sync ${z}, baseline ${correctness.inOrder.baseline.mismatches} in order and ${correctness.reordered.baseline.mismatches} reordered.`)
  }
  const l1000 = latency.find((l) => l.label === "latency 1000/s")
  if (l1000) {
    const p99 = l1000.p99["clerk-sync"]
    targets.push(`- ${p99 < 50 && l1000.delivered["clerk-sync"] >= 0.9995 ? "MET" : "NOT MET"}: webhook-to-client p99 under 50 ms at 1,000 events/s — measured ${f1(p99)} ms (${(l1000.delivered["clerk-sync"] * 100).toFixed(1)}% delivered).`)
  }
  if (overload) {
    const slope = overload.rssSlope["clerk-sync"] / MB
    targets.push(`- ${overload.shed["clerk-sync"] > 0 && slope < 2 ? "MET" : "NOT MET"}: memory bounded under sustained overload, shedding with 503/429 — ${(overload.shed["clerk-sync"] * 100).toFixed(0)}% shed, RSS slope ${f1(slope)} MB/s, peak ${f0(overload.rssPeak["clerk-sync"] / MB)} MB.`)
  }

  const componentTable = componentRows.length === 0 ? "" : [
    "",
    "Component benchmarks (`--components`; each engineer's own, same run):",
    "",
    "| bench | figure | value | vs its baseline |",
    "| --- | --- | --- | --- |",
    ...componentRows.map((r) => `| ${r.bench} | ${r.name} | ${r.value.toFixed(r.value < 100 ? 2 : 0)} ${r.unit} | ${r.vsBaseline === undefined ? "" : `${r.vsBaseline.toFixed(2)}×`} |`)
  ].join("\n")

  log("")
  log(table)
  if (componentTable) log(componentTable)
  log("")
  log(targets.join("\n"))
  log(`\n(${minutes.toFixed(1)} minutes; server logs in ${logDir})`)

  if (write && only === undefined) {
    const readme = join(fileURLToPath(new URL(".", import.meta.url)), "README.md")
    const previous = (() => {
      try {
        return readFileSync(readme, "utf8")
      } catch {
        return ""
      }
    })()
    const marker = "<!-- bench:results -->"
    const end = "<!-- /bench:results -->"
    const block = [
      marker,
      `Latest run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, \`npm run bench${quick ? " -- --quick" : ""}\`, ${minutes.toFixed(0)} min.`,
      `Machine: ${m.cpus} × ${m.model}, ${m.memory}; Node ${m.node}; ${m.pg} (fsync on); load average at start ${m.load}.`,
      "",
      table,
      componentTable,
      "",
      "Targets:",
      "",
      targets.join("\n"),
      end
    ].join("\n")
    const next = previous.includes(marker) && previous.includes(end)
      ? previous.slice(0, previous.indexOf(marker)) + block + previous.slice(previous.indexOf(end) + end.length)
      : `${previous}\n${block}\n`
    writeFileSync(readme, next)
    log(`wrote ${readme}`)
  }
}

await main()
process.exit(0)
