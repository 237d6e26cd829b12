/**
 * Shared pieces of the fault suite: the realtime client that checks `seq` order, reads of the
 * server's inbox and outbox, waiting, and sizes (small by default, larger with `CLERK_SYNC_SOAK=1`).
 *
 * The load generator itself (histories, Svix-like sender, expected state, server processes) lives
 * in `bench/load/`, shared with the benchmarks.
 */
import { Notification } from "@clerk-sync/core"
import pg from "pg"
import { io, type Socket } from "socket.io-client"

/** Larger runs: `CLERK_SYNC_SOAK=1 npx vitest run apps/reference-server/test/faults`. */
export const SOAK = process.env.CLERK_SYNC_SOAK === "1" || process.env.CLERK_SYNC_SOAK === "true"

/** `small` normally, `large` under `CLERK_SYNC_SOAK=1`. */
export const size = (small: number, large: number): number => (SOAK ? large : small)

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `check` until it returns true or `timeoutMs` passes; returns the last result. */
export const eventually = async (check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 200): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (true) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await sleep(intervalMs)
  }
}

const NAMES = new Set<string>(Notification.NAMES)

/**
 * A Socket.IO client of the `/clerk-sync` namespace that resumes from the last `seq` it received
 * whenever it reconnects, and records what it got: `seqs` (new ones, in arrival order),
 * `duplicates` (a `seq` at or below one already received: allowed, at-least-once), and
 * `outOfOrder` (a new `seq` below the highest received: never allowed).
 */
export class RealtimeClient {
  readonly seqs: Array<number> = []
  readonly received = new Set<number>()
  duplicates = 0
  outOfOrder = 0
  connects = 0
  readonly errors: Array<string> = []
  #last = 0
  readonly socket: Socket

  constructor(url: string, token: string) {
    this.socket = io(`${url}/clerk-sync`, {
      transports: ["websocket"],
      forceNew: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      auth: (cb) => cb({ token, lastSeq: this.#last })
    })
    this.socket.on("connect", () => void this.connects++)
    this.socket.on("connect_error", (e) => void this.errors.push(e.message))
    this.socket.onAny((name: string, payload: { readonly seq?: unknown }) => {
      if (!NAMES.has(name) || typeof payload?.seq !== "number") return
      const seq = payload.seq
      if (this.received.has(seq)) {
        this.duplicates++
        return
      }
      if (seq < this.#last) this.outOfOrder++
      this.received.add(seq)
      this.seqs.push(seq)
      this.#last = Math.max(this.#last, seq)
    })
  }

  get lastSeq(): number {
    return this.#last
  }

  connected(timeoutMs = 20_000): Promise<boolean> {
    return eventually(() => this.socket.connected, timeoutMs, 50)
  }

  disconnect(): void {
    this.socket.disconnect()
  }

  reconnect(): void {
    this.socket.connect()
  }

  close(): void {
    this.socket.disconnect()
  }
}

const withClient = async <A>(url: string, f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: url })
  client.on("error", () => {})
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end().catch(() => {})
  }
}

export interface Inbox {
  /** Rows by status. */
  readonly byStatus: Readonly<Record<string, number>>
  readonly rows: number
  readonly svixIds: ReadonlySet<string>
}

/** The server's inbox (`clerk_sync.clerk_webhook_events`). */
export const readInbox = (url: string, schema = "clerk_sync"): Promise<Inbox> =>
  withClient(url, async (c) => {
    const { rows } = await c.query<{ svix_id: string; status: string }>(`SELECT svix_id, status FROM ${schema}.clerk_webhook_events`)
    const byStatus: Record<string, number> = {}
    for (const r of rows) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1
    return { byStatus, rows: rows.length, svixIds: new Set(rows.map((r) => r.svix_id)) }
  })

export interface Outbox {
  /** Every sequenced notification, in order. */
  readonly seqs: ReadonlyArray<number>
  /** Written but not yet sequenced or published. */
  readonly pending: number
}

/** The server's outbox. */
export const readOutbox = (url: string, schema = "clerk_sync"): Promise<Outbox> =>
  withClient(url, async (c) => {
    const { rows } = await c.query<{ seq: string }>(`SELECT seq FROM ${schema}.outbox WHERE seq IS NOT NULL ORDER BY seq`)
    const pending = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.outbox WHERE seq IS NULL OR published_at IS NULL`)
    return { seqs: rows.map((r) => Number(r.seq)), pending: Number(pending.rows[0]!.n) }
  })

/** Row counts of a few tables (for "nothing written"). */
export const countRows = (url: string, tables: ReadonlyArray<string>): Promise<Record<string, number>> =>
  withClient(url, async (c) => {
    const out: Record<string, number> = {}
    for (const t of tables) out[t] = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n)
    return out
  })

/** Whether `client` received exactly `seqs`, each once, in order. */
export const receivedAll = (client: RealtimeClient, seqs: ReadonlyArray<number>): boolean =>
  client.seqs.length === seqs.length && client.seqs.every((s, i) => s === seqs[i])
