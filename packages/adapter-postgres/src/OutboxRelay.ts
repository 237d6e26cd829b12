/**
 * Primitives for the outbox relay: a wake-up signal and a leadership lock.
 *
 * - **Wake-up.** After an ingest that wrote notifications commits, the store wakes the relay of
 *   its own process directly and sends `pg_notify('<schema>_outbox')` for the others, which
 *   `LISTEN` on a dedicated connection. {@link OutboxRelayShape.wakeup} completes at the next
 *   signal, or after `pollInterval` at the latest (a lost signal costs latency, never a
 *   notification). Signals are coalesced: a burst of a thousand commits sends a couple of
 *   NOTIFYs and wakes the relay once or twice, never a thousand times.
 * - **Leadership.** At most one relay runs across processes: {@link OutboxRelayShape.asLeader}
 *   holds a session advisory lock (`pg_try_advisory_lock`) on a dedicated connection while it
 *   runs the relay. When the holder dies its connection closes, the server releases the lock, and
 *   a waiting process takes over within `leaderRetryInterval`. If the leader's own connection is
 *   lost (detected by the connection's events and a heartbeat), the relay is interrupted at once
 *   and the process goes back to waiting, so two relays never run together for long.
 *
 * On PGlite (one process owns the database) the signal comes from PGlite's `listen`, and the
 * leadership is an in-process lock.
 *
 * @example
 * import { Relay } from "@clerk-sync/core"
 * import { OutboxRelay } from "@clerk-sync/adapter-postgres"
 * const relay = Effect.gen(function*() {
 *   const signals = yield* OutboxRelay.OutboxRelay
 *   return yield* signals.asLeader(Relay.run({ wakeup: signals.wakeup }))
 * })
 *
 * @since 0.1.0
 */
import { Relay } from "@clerk-sync/core"
import { Context, type Duration, Effect, Queue, type Scope, Semaphore } from "effect"
import { sql } from "kysely"
import pg from "pg"
import type { Database } from "./internal/database.ts"

/** @category models */
export interface OutboxRelayShape {
  /** Completes when there may be something new in the outbox (a NOTIFY, or the fallback poll). */
  readonly wakeup: Effect.Effect<void>
  /**
   * Runs `effect` while this process is the relay leader: waits for the leadership, runs, and
   * when the leadership is lost interrupts `effect` and waits again. Returns if `effect` returns.
   */
  readonly asLeader: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/**
 * The relay primitives of the store's database.
 *
 * @category services
 */
export class OutboxRelay extends Context.Service<OutboxRelay, OutboxRelayShape>()("@clerk-sync/adapter-postgres/OutboxRelay") {}

/** @category models */
export interface RelayOptions {
  /** Longest wait of {@link OutboxRelayShape.wakeup} without a notification (default 5 s). */
  readonly pollInterval?: Duration.Input
  /** How often a process that is not the leader tries to become it (default 2 s). */
  readonly leaderRetryInterval?: Duration.Input
  /** How often the leader checks its connection (default 5 s). */
  readonly heartbeatInterval?: Duration.Input
}

/**
 * Runs the core's relay ({@link Relay.run}) as the leader, woken by this database's signals.
 *
 * @category programs
 */
export const runRelay = (options: { readonly batchSize?: number } = {}) =>
  OutboxRelay.use((signals) =>
    signals.asLeader(Relay.run({ wakeup: signals.wakeup, ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }) }))
  )

const lockKey = (schema: string) => `clerk-sync:relay:${schema}`

/** Waits for the first of: the client's `error` or `end`. */
const closed = (client: pg.Client): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const done = () => resume(Effect.void)
    client.once("error", done)
    client.once("end", done)
    return Effect.sync(() => {
      client.off("error", done)
      client.off("end", done)
    })
  })

const connect = (config: pg.ClientConfig, role: "candidate" | "listener"): Effect.Effect<pg.Client, unknown> =>
  Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({ ...config, keepAlive: true, application_name: `clerk-sync-relay-${role}` })
      // An error on an idle dedicated connection must not crash the process: `closed` reacts to it.
      client.on("error", () => {})
      await client.connect()
      return client
    },
    catch: (e) => e
  })

const end = (client: pg.Client): Effect.Effect<void> => Effect.promise(() => client.end().catch(() => undefined))

const wakeupOf = (queue: Queue.Queue<void>, pollInterval: Duration.Input): Effect.Effect<void> =>
  Effect.asVoid(Effect.timeoutOrElse(Queue.take(queue), { duration: pollInterval, orElse: () => Effect.void }))

/**
 * The relay primitives, and `committed`: what the store calls after a transaction that wrote
 * notifications has committed.
 *
 * @internal
 */
export interface Signals {
  readonly relay: OutboxRelayShape
  readonly committed: () => void
}

/**
 * The relay primitives on a server: dedicated `pg` connections (not from the pool).
 *
 * The NOTIFY is sent after the commit, not inside the ingest transaction: a transaction that
 * notifies holds Postgres's global notification lock from its pre-commit through its WAL flush,
 * which would serialize every ingest's commit. After the commit, one NOTIFY is in flight at a
 * time and any number of commits meanwhile make one more: a burst costs two NOTIFYs. A NOTIFY
 * lost to a crash right after the commit costs latency (the fallback poll), never a notification.
 *
 * @internal
 */
export const makePg = (
  db: Database,
  config: pg.ClientConfig,
  options: RelayOptions = {}
): Effect.Effect<Signals, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const pollInterval = options.pollInterval ?? "5 seconds"
    const retryInterval = options.leaderRetryInterval ?? "2 seconds"
    const heartbeat = options.heartbeatInterval ?? "5 seconds"
    // Capacity one, sliding: any number of signals while nobody waits make one wake-up.
    const signals = yield* Queue.sliding<void>(1)
    const signal = () => void Queue.offerUnsafe(signals, undefined)

    const toNotify = yield* Queue.sliding<void>(1)
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(
      Queue.take(toNotify),
      Effect.ignore(db.run((k) => sql`SELECT pg_notify(${db.channel}, '')`.execute(k)))
    )))

    // The listener: (re)connects forever; after each (re)connection it signals once, since
    // notifications sent while it was away are lost. Started by the first `wakeup`: processes
    // that never relay hold no listening connection.
    const listen = Effect.acquireUseRelease(
      connect(config, "listener"),
      (client) =>
        Effect.gen(function*() {
          client.on("notification", signal)
          yield* Effect.tryPromise(() => client.query(`LISTEN "${db.channel}"`))
          signal()
          yield* closed(client)
        }),
      end
    ).pipe(
      Effect.ignore,
      Effect.andThen(Effect.sleep("1 second")),
      Effect.forever
    )
    let listening = false
    const startListening = Effect.suspend(() => {
      if (listening) return Effect.void
      listening = true
      return Effect.asVoid(Effect.forkIn(listen, scope))
    })

    const asLeader = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
      // One attempt: undefined when someone else leads (or the database is unreachable).
      const attempt: Effect.Effect<{ readonly done: A } | undefined, E, R> = Effect.acquireUseRelease(
        Effect.option(connect(config, "candidate")),
        (client) =>
          Effect.gen(function*() {
            if (client._tag === "None") return undefined
            const c = client.value
            const got = yield* Effect.option(Effect.tryPromise(() =>
              c.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok", [lockKey(db.schema)])
            ))
            if (got._tag === "None" || got.value.rows[0]?.ok !== true) return undefined
            // Named once it leads, so that `pg_stat_activity` shows which process relays.
            yield* Effect.ignore(Effect.tryPromise(() => c.query("SET application_name = 'clerk-sync-relay-leader'")))
            // Leadership ends when the connection does: its events tell at once, a heartbeat tells
            // when the network silently dropped it.
            const beat = Effect.andThen(Effect.sleep(heartbeat), Effect.tryPromise(() => c.query("SELECT 1")))
            const lost = Effect.raceFirst(closed(c), Effect.ignore(Effect.forever(beat)))
            return yield* Effect.raceFirst(Effect.map(effect, (done) => ({ done })), Effect.as(lost, undefined))
          }),
        (client) => (client._tag === "Some" ? end(client.value) : Effect.void)
      )
      const loop: Effect.Effect<A, E, R> = Effect.flatMap(attempt, (outcome) =>
        outcome === undefined ? Effect.andThen(Effect.sleep(retryInterval), loop) : Effect.succeed(outcome.done))
      return loop
    }

    return {
      relay: { wakeup: Effect.andThen(startListening, wakeupOf(signals, pollInterval)), asLeader },
      committed: () => {
        signal()
        Queue.offerUnsafe(toNotify, undefined)
      }
    }
  })

/**
 * The relay primitives on PGlite. One process owns a PGlite database, so commits signal the relay
 * directly (no NOTIFY), and the leadership is an in-process lock.
 *
 * @internal
 */
export const makePGlite = (options: RelayOptions = {}): Effect.Effect<Signals> =>
  Effect.gen(function*() {
    const signals = yield* Queue.sliding<void>(1)
    // As on a server, the first wake-up comes at once: a relay starting should look.
    Queue.offerUnsafe(signals, undefined)
    const leader = yield* Semaphore.make(1)
    return {
      relay: {
        wakeup: wakeupOf(signals, options.pollInterval ?? "5 seconds"),
        asLeader: (effect) => Semaphore.withPermit(leader, effect)
      },
      committed: () => void Queue.offerUnsafe(signals, undefined)
    }
  })
