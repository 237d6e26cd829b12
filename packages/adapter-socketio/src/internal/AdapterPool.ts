/**
 * The pool as the `@socket.io/postgres-adapter` sees it, mended so that the adapter cannot leak the
 * client it keeps checked out for `LISTEN`.
 *
 * The adapter (0.5) forgets its `LISTEN` client when the connection ends (a database restart)
 * without releasing it, and may finish checking one out after it was closed. The pool then counts
 * that client forever: each restart costs a slot, and `pool.end()` never resolves, so a graceful
 * shutdown never ends. Here:
 * - a checked-out client that ends is released (as broken, so the pool drops it);
 * - its `error` is reported instead of crashing the process (the adapter listens to none);
 * - after {@link AdapterPool.close}, every client still out is released and none is handed out.
 *
 * @internal
 */
import type pg from "pg"

/** Never settles: an adapter reconnection that starts after close waits here, holding no timer or socket. */
const never = new Promise<never>(() => {})

export class AdapterPool {
  readonly #pool: pg.Pool
  readonly #onError: (message: string, error: unknown) => void
  readonly #held = new Set<pg.PoolClient>()
  #closed = false

  constructor(pool: pg.Pool, onError: (message: string, error: unknown) => void) {
    this.#pool = pool
    this.#onError = onError
  }

  /** What to give `createAdapter`: the adapter only calls `connect` and `query`. */
  get pool(): pg.Pool {
    const facade = {
      connect: () => this.#connect(),
      query: (...args: Array<unknown>) => (this.#pool.query as (...a: Array<unknown>) => unknown)(...args)
    }
    return facade as unknown as pg.Pool
  }

  /** Clients the adapter holds now (for tests). */
  get held(): number {
    return this.#held.size
  }

  /** Releases every client still out (discarded: it may be LISTENing); hands out none after. */
  close(): void {
    this.#closed = true
    for (const client of [...this.#held]) client.release(true)
  }

  async #connect(): Promise<pg.PoolClient> {
    if (this.#closed) return never
    const client = await this.#pool.connect()
    if (this.#closed) {
      client.release(true)
      return never
    }
    const release = client.release
    let released = false
    const onError = (error: unknown) => this.#onError("postgres adapter: the LISTEN connection failed", error)
    const onEnd = () => releaseOnce(new Error("the connection ended"))
    const releaseOnce = (error?: Error | boolean) => {
      if (released) return
      released = true
      this.#held.delete(client)
      client.off("end", onEnd)
      client.off("error", onError) // the pool's own listener takes over from here
      // A client back from the adapter after close may still be LISTENing: never let it idle.
      release(error ?? this.#closed)
    }
    client.on("error", onError)
    client.on("end", onEnd)
    client.release = releaseOnce
    this.#held.add(client)
    return client
  }
}
