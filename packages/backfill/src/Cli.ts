/**
 * `clerk-sync backfill`: the command line. The host (the reference server's bin) builds the store
 * from `DATABASE_URL` and hands it over; this module reads `CLERK_SECRET_KEY` and `CLERK_API_URL`,
 * parses the flags, shows progress and prints a summary.
 *
 * @example
 * import { runBackfillCli } from "@clerk-sync/backfill"
 * process.exitCode = await runBackfillCli(process.argv.slice(3), { store: PostgresStore.layer({ url }) })
 *
 * @since 0.1.0
 */
import { parseArgs } from "node:util"
import { Cause, Effect, Exit, Layer, ManagedRuntime } from "effect"
import { Ingest, type Planner, type SyncStore } from "@clerk-sync/core"
import * as Backfill from "./Backfill.ts"
import * as ClerkApi from "./ClerkApi.ts"
import type { Entity } from "./Deliveries.ts"
import * as Progress from "./Progress.ts"
import * as RateLimiter from "./RateLimiter.ts"
import * as Reconcile from "./Reconcile.ts"

/** What the host provides. @category models */
export interface Context {
  /** The store to fill (the host builds it from `DATABASE_URL`). */
  readonly store: Layer.Layer<SyncStore.SyncStore, unknown>
  /** Environment (default `process.env`): `CLERK_SECRET_KEY`, `CLERK_API_URL`. */
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly stdout?: Progress.Output
  readonly stderr?: Progress.Output
  /** Planner settings: the same as the webhook handler's. */
  readonly planner?: Partial<Planner.Settings>
  /** Stops the run (default: the first SIGINT/SIGTERM). The checkpoint keeps the progress. */
  readonly signal?: AbortSignal
}

/** The help text. @category constants */
export const USAGE = `Usage: clerk-sync backfill [reconcile] [options]

Fills and repairs clerk-sync's tables from Clerk's Backend API, through the same rules as
webhooks. Resumable: run it again after an interruption and it continues where it stopped.

  clerk-sync backfill                     read users, organizations, memberships
  clerk-sync backfill --reconcile         then report rows deleted in Clerk (dry run)
  clerk-sync backfill reconcile [--apply] only the reconcile; --apply writes the tombstones

Options:
  --only <list>          users,organizations,memberships (default: all)
  --run-id <id>          name of the run's checkpoints (default: default)
  --restart              ignore the checkpoints and start over
  --page-size <n>        objects per request, at most 500 (default: 500)
  --concurrency <n>      objects of a page ingested at once (default: ${Backfill.DEFAULT_CONCURRENCY})
  --rate <n/window>      request rate, e.g. 100/10s (default, development instances)
                         or 1000/10s (production instances)
  --no-notifications     do not write client notifications to the outbox (first import)
  --reconcile            run a reconcile after the backfill
  --apply                let the reconcile write (default: dry run, report only)
  --grace <seconds>      reconcile leaves rows changed this recently alone (default: 300)
  --json                 print the summary as JSON
  -h, --help             this text

Environment:
  CLERK_SECRET_KEY       the instance's secret key (required)
  CLERK_API_URL          default https://api.clerk.com/v1
`

const ENTITY_FLAGS: Readonly<Record<string, Entity>> = {
  users: "user",
  user: "user",
  organizations: "organization",
  organization: "organization",
  memberships: "membership",
  membership: "membership"
}

class UsageError extends Error {}

const number = (n: number) => Math.round(n).toLocaleString("en-US")
const pad = (s: string, n: number) => s.padEnd(n)

const LABELS: ReadonlyArray<readonly [Entity, string]> = [["user", "users"], ["organization", "organizations"], ["membership", "memberships"]]

/** Renders a backfill summary as text. @category rendering */
export const formatSummary = (s: Backfill.Summary): string => {
  const lines = [`Backfill ${s.resumed ? "resumed and " : ""}finished in ${(s.durationMs / 1000).toFixed(1)} s (run "${s.runId}")`]
  for (const [entity, label] of LABELS) {
    const c = s.counts[entity]
    lines.push(
      `  ${pad(label, 14)} ${number(c.fetched).padStart(9)} read · ${number(c.applied)} changed · ${number(c.unchanged)} already current · ${number(c.duplicate)} already ingested · ${number(c.failed)} failed`
    )
  }
  lines.push(
    `  ${number(s.fetchedNow)} objects at ${number(s.objectsPerSecond)}/s · ${number(s.requests)} requests · ${number(s.rateLimited)} × 429 · ${number(s.retries)} retries`
  )
  for (const f of s.failures.slice(0, 5)) lines.push(`  failed ${f.eventId}: ${f.error}`)
  return lines.join("\n") + "\n"
}

/** Renders a reconcile report as text. @category rendering */
export const formatReport = (r: Reconcile.Report): string => {
  const verb = r.dryRun ? "would end" : "ended"
  const lines = [
    r.dryRun
      ? "Reconcile (dry run: nothing written; run with --apply to write)"
      : "Reconcile (applied)"
  ]
  const entity = (label: string, e: Reconcile.EntityReport, extra = "") => {
    const sample = e.sample.length > 0 ? ` (${e.sample.slice(0, 5).join(", ")}${e.missing > 5 ? ", …" : ""})` : ""
    lines.push(
      `  ${pad(label, 14)} ${number(e.checked).padStart(9)} checked${extra} · ${number(e.missing)} gone from Clerk${sample} · ${verb} ${number(r.dryRun ? e.missing : e.changed)}${e.skippedRecent > 0 ? ` · ${number(e.skippedRecent)} too recent, left alone` : ""}`
    )
  }
  entity("users", r.users)
  entity("organizations", r.organizations)
  entity("memberships", r.memberships, ` in ${number(r.memberships.organizations)} organizations`)
  lines.push(`  ${number(r.requests)} requests in ${(r.durationMs / 1000).toFixed(1)} s`)
  return lines.join("\n") + "\n"
}

interface Parsed {
  readonly mode: "backfill" | "reconcile"
  readonly backfill: Backfill.Options
  readonly reconcile: Reconcile.Options | null
  readonly rate: RateLimiter.Options | undefined
  readonly json: boolean
  readonly help: boolean
}

const parse = (argv: ReadonlyArray<string>): Parsed => {
  const { positionals, values } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: "boolean", short: "h" },
      only: { type: "string" },
      "run-id": { type: "string" },
      restart: { type: "boolean" },
      "page-size": { type: "string" },
      concurrency: { type: "string" },
      rate: { type: "string" },
      "no-notifications": { type: "boolean" },
      reconcile: { type: "boolean" },
      apply: { type: "boolean" },
      grace: { type: "string" },
      json: { type: "boolean" }
    }
  })
  if (positionals.length > 1 || (positionals.length === 1 && positionals[0] !== "reconcile")) {
    throw new UsageError(`unexpected argument: ${positionals.filter((p) => p !== "reconcile").join(" ") || positionals.join(" ")}`)
  }
  const mode = positionals[0] === "reconcile" ? "reconcile" : "backfill"
  let only: Array<Entity> | undefined
  if (values.only !== undefined) {
    only = []
    for (const name of values.only.split(",").map((s) => s.trim()).filter((s) => s.length > 0)) {
      const entity = ENTITY_FLAGS[name]
      if (entity === undefined) throw new UsageError(`--only: unknown entity "${name}" (users, organizations, memberships)`)
      only.push(entity)
    }
  }
  const positiveInt = (flag: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined
    const n = Number(text)
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag}: expected a positive integer, got "${text}"`)
    return n
  }
  const pageSize = positiveInt("--page-size", values["page-size"])
  if (pageSize !== undefined && pageSize > ClerkApi.MAX_PAGE_SIZE) throw new UsageError(`--page-size: at most ${ClerkApi.MAX_PAGE_SIZE}`)
  const concurrency = positiveInt("--concurrency", values.concurrency)
  let rate: RateLimiter.Options | undefined
  if (values.rate !== undefined) {
    const parsed = RateLimiter.parse(values.rate)
    if (parsed === undefined) throw new UsageError(`--rate: expected <requests>/<window>, e.g. 100/10s, got "${values.rate}"`)
    rate = parsed
  }
  const grace = values.grace === undefined ? undefined : Number(values.grace)
  if (grace !== undefined && !(grace >= 0)) throw new UsageError(`--grace: expected seconds, got "${values.grace}"`)
  if (values.apply === true && mode === "backfill" && values.reconcile !== true) {
    throw new UsageError("--apply only applies to a reconcile: add --reconcile, or run `clerk-sync backfill reconcile --apply`")
  }
  const notify = values["no-notifications"] === true ? { notify: false } : {}
  const reconcile: Reconcile.Options | null = mode === "reconcile" || values.reconcile === true
    ? {
      dryRun: values.apply !== true,
      ...(only === undefined ? {} : { only }),
      ...(grace === undefined ? {} : { graceMs: grace * 1000 }),
      ...notify
    }
    : null
  return {
    mode,
    backfill: {
      ...(only === undefined ? {} : { only }),
      ...(values["run-id"] === undefined ? {} : { runId: values["run-id"] }),
      ...(values.restart === true ? { restart: true } : {}),
      ...(pageSize === undefined ? {} : { pageSize }),
      ...(concurrency === undefined ? {} : { concurrency }),
      ...notify
    },
    reconcile,
    rate,
    json: values.json === true,
    help: values.help === true
  }
}

const describe = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : String(error)
}

/**
 * Runs `clerk-sync backfill` with the arguments after `backfill`. Resolves with the exit code:
 * 0 done, 1 failed (the checkpoint keeps the progress: run again to resume), 2 usage error,
 * 130 interrupted.
 *
 * @category cli
 */
export const runBackfillCli = async (argv: ReadonlyArray<string>, context: Context): Promise<number> => {
  const stdout: Progress.Output = context.stdout ?? process.stdout
  const stderr: Progress.Output = context.stderr ?? process.stderr
  const env = context.env ?? process.env
  let parsed: Parsed
  try {
    parsed = parse(argv)
  } catch (error) {
    stderr.write(`clerk-sync backfill: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`)
    return 2
  }
  if (parsed.help) {
    stdout.write(USAGE)
    return 0
  }
  const secretKey = env.CLERK_SECRET_KEY
  if (secretKey === undefined || secretKey.trim() === "") {
    stderr.write("clerk-sync backfill: CLERK_SECRET_KEY is not set (the instance's secret key, sk_…)\n")
    return 2
  }
  const apiUrl = env.CLERK_API_URL ?? ClerkApi.DEFAULT_API_URL
  const api = ClerkApi.layer({ secretKey, apiUrl, ...(parsed.rate === undefined ? {} : { rate: parsed.rate }) })
  const runtime = ManagedRuntime.make(Layer.merge(context.store, api))

  const progress = Progress.terminal(stdout)
  const planner = context.planner
  const program = Effect.gen(function*() {
    let summary: Backfill.Summary | null = null
    if (parsed.mode === "backfill") {
      // The final snapshot (phase null) is written by `progress.end` below.
      summary = yield* Backfill.run({ ...parsed.backfill, onProgress: (s) => s.phase === null ? undefined : progress(s) })
      progress.end({
        phase: null,
        counts: summary.counts,
        fetchedNow: summary.fetchedNow,
        elapsed: summary.durationMs,
        requests: summary.requests,
        rateLimited: summary.rateLimited
      })
      if (!parsed.json) stdout.write(formatSummary(summary))
    }
    const report = parsed.reconcile === null ? null : yield* Reconcile.run(parsed.reconcile)
    if (report !== null && !parsed.json) stdout.write(formatReport(report))
    if (parsed.json) stdout.write(`${JSON.stringify({ backfill: summary, reconcile: report }, null, 2)}\n`)
  })

  const controller = new AbortController()
  const stop = () => controller.abort()
  const external = context.signal
  const signals = external === undefined
  if (signals) {
    process.once("SIGINT", stop)
    process.once("SIGTERM", stop)
  } else if (external.aborted) {
    controller.abort()
  } else {
    external.addEventListener("abort", stop, { once: true })
  }
  try {
    const exit = await runtime.runPromiseExit(
      planner === undefined ? program : Effect.updateService(program, Ingest.PlannerSettings, (s) => ({ ...s, ...planner })),
      { signal: controller.signal }
    )
    if (Exit.isSuccess(exit)) return 0
    if (Cause.hasInterruptsOnly(exit.cause)) {
      stderr.write("\nclerk-sync backfill: interrupted; the progress is checkpointed, run the same command again to resume\n")
      return 130
    }
    stderr.write(`\nclerk-sync backfill: ${describe(exit.cause)}\nThe progress is checkpointed: run the same command again to resume.\n`)
    return 1
  } finally {
    if (signals) {
      process.off("SIGINT", stop)
      process.off("SIGTERM", stop)
    } else {
      external.removeEventListener("abort", stop)
    }
    await runtime.dispose()
  }
}
