/**
 * The relay primitives' implementations: on a server (dedicated `pg` connections, NOTIFY after
 * commit, LISTEN, a session advisory lock) and on PGlite (in-process). See `OutboxRelay.ts`.
 */
import { type Duration, Effect, Queue, type Scope, Semaphore } from "effect"
import { sql } from "kysely"
import pg from "pg"
import type { OutboxRelayShape, RelayOptions } from "../OutboxRelay.ts"
import type { Database } from "./database.ts"

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

    // While this process relays, its own commits wake its relay directly: a NOTIFY would only
    // come back to it, at the cost of a statement on the ingest pool per commit.
    let leading = 0
    const whileLeading = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(Effect.sync(() => leading++), () => effect, () => Effect.sync(() => leading--))

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
            return yield* Effect.raceFirst(Effect.map(whileLeading(effect), (done) => ({ done })), Effect.as(lost, undefined))
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
        if (leading === 0) Queue.offerUnsafe(toNotify, undefined)
      }
    }
  })

/**
 * The relay primitives on PGlite. One process owns a PGlite database, so commits signal the relay
 * directly (no NOTIFY), and the leadership is an in-process lock.
 *
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
