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
import { Context, type Duration, type Effect } from "effect"

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
