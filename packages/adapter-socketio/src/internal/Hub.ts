/**
 * One node's view of the notification stream, and its delivery to the node's own sockets.
 *
 * Every node dispatches the SAME stream, in `seq` order, without a gap: what the publisher on the
 * relay's node sends (locally, and to the other nodes through the Socket.IO adapter's server-side
 * emit), checked against the previous batch's `seq`; where a batch is missing (a lost or reordered
 * NOTIFY, a new relay leader), the node reads the gap from the outbox itself. A periodic read of the
 * outbox is the safety net for a lost last message.
 *
 * Because each node applies the room rules ({@link Rooms}) to its own sockets while dispatching,
 * "join before the `membership.created`, leave after the `membership.deleted` and before the next
 * notification" holds on every node, whatever the adapter does with ordering.
 *
 * @internal
 */
import { Notification, type SyncStore } from "@clerk-sync/core"
import { Effect } from "effect"
import type { Namespace, Socket } from "socket.io"
import type { Batch, Closing } from "../Protocol.ts"
import { CLOSING } from "../Protocol.ts"
import { ADMIN, effectsOf, isOrgRoom, userRoom } from "../Rooms.ts"

/** A session waiting for the node's stream to pass its cursor. */
export interface Waiter {
  readonly cursor: number
  /** Called synchronously, right before the first notification after `cursor` is dispatched. */
  readonly activate: () => void
}

export interface HubOptions {
  readonly nsp: Namespace
  readonly store: SyncStore.SyncStoreShape
  /** Recent notifications kept to hand a catching-up socket over to the live stream (default 10,000). */
  readonly logSize: number
  /** How long an out-of-order batch waits for the missing one before the gap is read (ms). */
  readonly reorderWindowMs: number
  /** Safety-net read of the outbox (ms; 0 disables). */
  readonly pollIntervalMs: number
  readonly readBatchSize: number
  /** The last `seq` already in the outbox at start (default: found by reading the outbox). */
  readonly head?: (() => Promise<number>) | undefined
  readonly onError: (message: string, error: unknown) => void
}

const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(effect)

/**
 * The highest `seq` in the outbox, by probing `readOutbox(x, ["admin"], 1)` (the `admin` audience
 * receives every notification): an exponential then binary search on the `seq` index, O(log n)
 * reads.
 */
export const findHead = async (store: SyncStore.SyncStoreShape): Promise<number> => {
  /** The smallest seq above `after`, if any. */
  const next = async (after: number): Promise<number | null> => {
    const rows = await run(store.readOutbox(after, [ADMIN], 1))
    return rows[0]?.seq ?? null
  }
  const floor = await run(store.outboxFloor)
  const first = await next(Math.max(0, floor - 1))
  if (first === null) return Math.max(0, floor - 1)
  // Invariant: lo exists, and the highest seq is in [lo, hi].
  let lo = first
  let hi: number
  for (let step = 1;; step *= 2) {
    const found = await next(lo + step)
    if (found === null) {
      hi = lo + step
      break
    }
    lo = found
  }
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2)
    const found = await next(mid)
    if (found === null) hi = mid
    else lo = found
  }
  return lo
}

export class Hub {
  readonly #o: HubOptions
  #head = 0
  #log: Array<Notification.Stored> = []
  /** Every notification dispatched with a seq above this is in the log. */
  #logFloor = 0
  readonly #waiting = new Set<Waiter>()
  #queue: Promise<void> = Promise.resolve()
  #pending: Array<Batch> = []
  #pendingTimer: ReturnType<typeof setTimeout> | undefined
  #pollTimer: ReturnType<typeof setInterval> | undefined
  #closed = false
  readonly ready: Promise<void>

  constructor(options: HubOptions) {
    this.#o = options
    this.ready = (options.head ?? (() => findHead(options.store)))().then((head) => {
      this.#head = head
      this.#logFloor = head
    })
    this.ready.catch((error) => options.onError("could not read the outbox head", error))
    if (options.pollIntervalMs > 0) {
      // Always, not only with sockets connected: a node's head must stay current for the next
      // fresh connection (which starts from it).
      this.#pollTimer = setInterval(() => void this.#enqueue(() => this.#fill(null)), options.pollIntervalMs)
      this.#pollTimer.unref?.()
    }
  }

  /** The last `seq` this node dispatched (every one up to it, without a gap). */
  get head(): number {
    return this.#head
  }

  /** Whether the log holds every notification dispatched after `cursor`. */
  covers(cursor: number): boolean {
    return cursor >= this.#logFloor
  }

  /** Dispatched notifications after `cursor`, in order (check {@link covers} first). */
  logAfter(cursor: number): ReadonlyArray<Notification.Stored> {
    const log = this.#log
    let lo = 0
    let hi = log.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (log[mid]!.seq <= cursor) lo = mid + 1
      else hi = mid
    }
    return log.slice(lo)
  }

  wait(waiter: Waiter): void {
    this.#waiting.add(waiter)
  }

  unwait(waiter: Waiter): void {
    this.#waiting.delete(waiter)
  }

  /** Receives a batch (from this node's publisher or another node's). Resolves once dispatched or held. */
  receive(batch: Batch): Promise<void> {
    return this.#enqueue(() => this.#receive(batch))
  }

  /** Reads the outbox past the head now (tests, and after a reconnection to the database). */
  catchUp(): Promise<void> {
    return this.#enqueue(() => this.#fill(null))
  }

  close(): void {
    this.#closed = true
    clearInterval(this.#pollTimer)
    clearTimeout(this.#pendingTimer)
    this.#waiting.clear()
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(async () => {
      await this.ready
      if (!this.#closed) await task()
    })
    this.#queue = next.catch((error) => this.#o.onError("dispatch failed", error))
    return this.#queue
  }

  async #receive(batch: Batch): Promise<void> {
    if (batch.items.length === 0) return
    const last = batch.items[batch.items.length - 1]!.seq
    if (last <= this.#head) return
    if (batch.prev !== null && batch.prev <= this.#head) {
      this.#dispatch(batch.items)
      await this.#drainPending(false)
      return
    }
    if (batch.prev !== null && this.#o.reorderWindowMs > 0) {
      // A batch before this one is missing: it may still be on its way (reordered). Hold this one.
      this.#pending.push(batch)
      this.#pending.sort((a, b) => (a.prev ?? 0) - (b.prev ?? 0))
      if (this.#pendingTimer === undefined) {
        this.#pendingTimer = setTimeout(() => {
          this.#pendingTimer = undefined
          void this.#enqueue(() => this.#drainPending(true))
        }, this.#o.reorderWindowMs)
      }
      return
    }
    // A new publisher (a new relay leader), or no patience: read what may be missing.
    await this.#fill(batch.items[0]!.seq - 1)
    this.#dispatch(batch.items)
  }

  async #drainPending(force: boolean): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending[0]!
      if (batch.prev !== null && batch.prev > this.#head) {
        if (!force) return
        await this.#fill(batch.items[0]!.seq - 1)
      }
      this.#pending.shift()
      this.#dispatch(batch.items)
    }
    clearTimeout(this.#pendingTimer)
    this.#pendingTimer = undefined
  }

  /** Reads the outbox after the head (up to `upTo` when given) and dispatches it. */
  async #fill(upTo: number | null): Promise<void> {
    while (upTo === null || this.#head < upTo) {
      const rows = await run(this.#o.store.readOutbox(this.#head, [ADMIN], this.#o.readBatchSize))
      const wanted = upTo === null ? rows : rows.filter((n) => n.seq <= upTo)
      this.#dispatch(wanted)
      if (rows.length < this.#o.readBatchSize || wanted.length < rows.length) return
    }
  }

  /** Delivers notifications to this node's sockets, in order, applying the room rules. Synchronous. */
  #dispatch(items: ReadonlyArray<Notification.Stored>): void {
    const nsp = this.#o.nsp
    for (const n of items) {
      if (n.seq <= this.#head) continue
      if (this.#waiting.size > 0) {
        for (const w of this.#waiting) {
          if (w.cursor < n.seq) {
            this.#waiting.delete(w)
            w.activate()
          }
        }
      }
      const effects = effectsOf(n.payload)
      if (effects.join) nsp.local.in(userRoom(effects.join.user)).socketsJoin(effects.join.room)
      nsp.local.to(n.audiences as Array<string>).emit(n.payload.name, Notification.toDelivered(n))
      if (effects.leave) nsp.local.in(userRoom(effects.leave.user)).socketsLeave(effects.leave.room)
      if (effects.close !== undefined) nsp.local.in(effects.close).socketsLeave(effects.close)
      if (effects.evict !== undefined) this.#evict(effects.evict)
      this.#head = n.seq
      this.#log.push(n)
    }
    // Trimmed in chunks (amortized O(1) per notification): it holds between logSize and twice that.
    if (this.#log.length > 2 * this.#o.logSize) {
      const drop = this.#log.length - this.#o.logSize
      this.#logFloor = this.#log[drop - 1]!.seq
      this.#log = this.#log.slice(drop)
    }
  }

  #evict(clerkUserId: string): void {
    const ids = this.#o.nsp.adapter.rooms.get(userRoom(clerkUserId))
    if (!ids) return
    const sockets: Array<Socket> = []
    for (const id of ids) {
      const socket = this.#o.nsp.sockets.get(id)
      if (socket) sockets.push(socket)
    }
    for (const socket of sockets) closeDeleted(socket)
  }
}

/**
 * Tells a socket why it is closed, takes it out of its rooms (every one, or only the org rooms) so
 * nothing more reaches it, and closes it.
 */
export const closeWith = (socket: Socket, closing: Closing, rooms: "all" | "org"): void => {
  for (const room of [...socket.rooms]) {
    if (room !== socket.id && (rooms === "all" || isOrgRoom(room))) socket.leave(room)
  }
  socket.emit(CLOSING, closing)
  // Let the packets above flush before closing the transport.
  setTimeout(() => socket.disconnect(true), 50).unref?.()
}

/** Tells a deleted user's socket why, takes it out of every org room and closes it. */
export const closeDeleted = (socket: Socket): void =>
  closeWith(socket, { code: "user_deleted", message: "this user was deleted" }, "org")
