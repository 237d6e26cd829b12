/**
 * The correctness column: the same realistic history sent to each server, in order (one sender,
 * no duplicates) and then reordered (shuffled within windows of 64, 10% duplicates, 16 senders),
 * with Svix-like retries; then the final state is compared with the expected one (the history
 * applied once, in order), entity by entity, on what an app reads (see `load/State.ts`).
 */
import { generate } from "../load/History.ts"
import { schedule, send, svixLike } from "../load/Sender.ts"
import * as State from "../load/State.ts"
import { type Context, KINDS, type ServerKind, start } from "./Context.ts"

export interface CorrectnessRun {
  readonly mismatches: number
  /** clerk-sync only: mismatches of the full canonical state (every column, versions and tombstones included). */
  readonly fullMismatches: number | null
  readonly givenUp: number
  readonly examples: ReadonlyArray<string>
}

export interface CorrectnessResult {
  readonly events: number
  readonly entities: number
  readonly inOrder: Record<ServerKind, CorrectnessRun>
  readonly reordered: Record<ServerKind, CorrectnessRun>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export const runCorrectness = async (ctx: Context): Promise<CorrectnessResult> => {
  const history = generate({ events: ctx.quick ? 1_500 : 4_000, seed: 2026, idPrefix: "cor" })
  const expected = await State.expected(history.events)
  const projected = State.project(expected)
  const entities = Object.keys(projected.users).length + Object.keys(projected.organizations).length + Object.keys(projected.memberships).length
  const modes = {
    inOrder: { deliveries: history.events, concurrency: 1 },
    reordered: { deliveries: schedule(history.events, { duplicates: 0.1, window: 64, seed: 3 }), concurrency: 16 }
  }
  const out = { inOrder: {}, reordered: {} } as { inOrder: Record<ServerKind, CorrectnessRun>; reordered: Record<ServerKind, CorrectnessRun> }
  for (const [mode, m] of Object.entries(modes) as Array<[keyof typeof modes, (typeof modes)["inOrder"]]>) {
    for (const kind of KINDS) {
      const { server, url } = await start(ctx, kind, `cor_${mode}`)
      try {
        const r = await send(m.deliveries, { url: server.url, secret: server.secret, concurrency: m.concurrency, retry: svixLike, keepAttempts: false })
        await sleep(500)
        let run: CorrectnessRun
        if (kind === "clerk-sync") {
          const actual = await State.readClerkSync(url)
          const d = State.diff(projected, State.project(actual))
          const full = State.diff(expected, actual)
          run = { mismatches: d.count, fullMismatches: full.count, givenUp: r.givenUp.length, examples: [...d.examples, ...full.examples].slice(0, 3) }
        } else {
          const d = State.diff(projected, await State.readBaseline(url))
          run = { mismatches: d.count, fullMismatches: null, givenUp: r.givenUp.length, examples: d.examples.slice(0, 3) }
        }
        ctx.log(`  correctness ${mode} ${kind}: ${run.mismatches} mismatches of ${entities} entities${run.fullMismatches === null ? "" : ` (full state: ${run.fullMismatches})`}, ${run.givenUp} given up, ${JSON.stringify(r.statuses)}`)
        out[mode][kind] = run
      } finally {
        await server.stop()
      }
    }
  }
  return { events: history.events.length, entities, ...out }
}
