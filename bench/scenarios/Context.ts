/**
 * What every scenario gets: the dedicated PostgreSQL server of the run, fresh databases on it,
 * and the two servers under test, started fresh for each measurement.
 */
import type { PostgresServer } from "@clerk-sync/adapter-postgres/testing"
import pg from "pg"
import type { ServerKind } from "../load/Clients.ts"
import { type ServerHandle, startBaseline, startClerkSync } from "../load/Processes.ts"

export type { ServerKind }

export const KINDS: ReadonlyArray<ServerKind> = ["clerk-sync", "baseline"]

export interface Context {
  readonly pg: PostgresServer
  readonly quick: boolean
  readonly log: (line: string) => void
  readonly logDir: string
}

let counter = 0

/** A fresh database on the run's server; returns its URL. */
export const database = async (ctx: Context, label: string): Promise<string> => {
  const name = `${label.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_${++counter}`
  const client = new pg.Client({ connectionString: ctx.pg.url })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE "${name}" TEMPLATE template0`)
  } finally {
    await client.end()
  }
  return ctx.pg.urlFor(name)
}

/** Starts `kind` on a fresh database. */
export const start = async (ctx: Context, kind: ServerKind, label: string, env: Readonly<Record<string, string>> = {}): Promise<{ readonly server: ServerHandle; readonly url: string }> => {
  const url = await database(ctx, `${kind}_${label}`)
  const server = kind === "clerk-sync"
    ? await startClerkSync({ databaseUrl: url, env, logDir: ctx.logDir })
    : await startBaseline({ databaseUrl: url, logDir: ctx.logDir })
  return { server, url }
}

export const median = (xs: ReadonlyArray<number>): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** Runs `f` for each server, alternating which goes first from one round to the next. */
export const interleaved = async <A>(rounds: number, f: (kind: ServerKind, round: number) => Promise<A>): Promise<Record<ServerKind, Array<A>>> => {
  const out: Record<ServerKind, Array<A>> = { "clerk-sync": [], baseline: [] }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? KINDS : [...KINDS].reverse()
    for (const kind of order) out[kind].push(await f(kind, round))
  }
  return out
}
