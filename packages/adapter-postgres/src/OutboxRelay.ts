/**
 * Primitives for the outbox relay: a wake-up signal and a leadership lock.
 *
 * - **Wake-up.** Every ingest that writes notifications also runs `pg_notify(<schema>_outbox)` in
 *   its transaction, so the signal arrives exactly when the rows become visible. A dedicated
 *   connection `LISTEN`s; {@link OutboxRelayShape.wakeup} completes at the next notification, or
 *   after `pollInterval` at the latest (a missed signal costs latency, never a notification).
 *   Signals that arrive while nobody waits are coalesced into one: a burst of a thousand commits
 *   wakes the relay once or twice, never a thousand times.
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

const connect = (config: pg.ClientConfig): Effect.Effect<pg.Client, unknown> =>
  Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({ ...config, keepAlive: true })
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
 * The relay primitives on a server: dedicated `pg` connections (not from the pool).
 *
 * @internal
 */
export const makePg = (
  db: Database,
  config: pg.ClientConfig,
  options: RelayOptions = {}
): Effect.Effect<OutboxRelayShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pollInterval = options.pollInterval ?? "5 seconds"
    const retryInterval = options.leaderRetryInterval ?? "2 seconds"
    const heartbeat = options.heartbeatInterval ?? "5 seconds"
    // Capacity one, sliding: any number of signals while nobody waits make one wake-up.
    const signals = yield* Queue.sliding<void>(1)
    const signal = () => void Queue.offerUnsafe(signals, undefined)

    // The listener: (re)connects forever; after each (re)connection it signals once, since
    // notifications sent while it was away are lost.
    const listen = Effect.gen(function*() {
      const client = yield* connect(config)
      yield* Effect.gen(function*() {
        client.on("notification", signal)
        yield* Effect.tryPromise(() => client.query(`LISTEN "${db.channel}"`))
        signal()
        yield* closed(client)
      }).pipe(Effect.ensuring(end(client)))
    }).pipe(
      Effect.ignore,
      Effect.andThen(Effect.sleep("1 second")),
      Effect.forever
    )
    yield* Effect.forkScoped(listen)

    const asLeader = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
      // One attempt: undefined when someone else leads (or the database is unreachable).
      const attempt: Effect.Effect<{ readonly done: A } | undefined, E, R> = Effect.gen(function*() {
        const client = yield* Effect.option(connect(config))
        if (client._tag === "None") return undefined
        const c = client.value
        return yield* Effect.gen(function*() {
          const got = yield* Effect.option(Effect.tryPromise(() =>
            c.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok", [lockKey(db.schema)])
          ))
          if (got._tag === "None" || got.value.rows[0]?.ok !== true) return undefined
          // Leadership ends when the connection does: its events tell at once, a heartbeat tells
          // when the network silently dropped it.
          const beat = Effect.andThen(Effect.sleep(heartbeat), Effect.tryPromise(() => c.query("SELECT 1")))
          const lost = Effect.raceFirst(closed(c), Effect.ignore(Effect.forever(beat)))
          return yield* Effect.raceFirst(Effect.map(effect, (done) => ({ done })), Effect.as(lost, undefined))
        }).pipe(Effect.ensuring(end(c)))
      })
      const loop: Effect.Effect<A, E, R> = Effect.flatMap(attempt, (outcome) =>
        outcome === undefined ? Effect.andThen(Effect.sleep(retryInterval), loop) : Effect.succeed(outcome.done))
      return loop
    }

    return { wakeup: wakeupOf(signals, pollInterval), asLeader }
  })

/** The smallest part of a PGlite instance the signals need. @internal */
export interface PGliteListen {
  readonly listen: (channel: string, callback: (payload: string) => void) => Promise<unknown>
}

/**
 * The relay primitives on PGlite: its own `listen`, and an in-process leadership lock.
 *
 * @internal
 */
export const makePGlite = (db: Database, pglite: PGliteListen, options: RelayOptions = {}): Effect.Effect<OutboxRelayShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const signals = yield* Queue.sliding<void>(1)
    const unlisten = yield* db.exclusive(Effect.promise(() => pglite.listen(db.channel, () => void Queue.offerUnsafe(signals, undefined))))
    yield* Effect.addFinalizer(() =>
      typeof unlisten === "function" ? db.exclusive(Effect.promise(() => Promise.resolve(unlisten()).catch(() => undefined))) : Effect.void
    )
    Queue.offerUnsafe(signals, undefined)
    const leader = yield* Semaphore.make(1)
    return {
      wakeup: wakeupOf(signals, options.pollInterval ?? "5 seconds"),
      asLeader: (effect) => Semaphore.withPermit(leader, effect)
    }
  })
