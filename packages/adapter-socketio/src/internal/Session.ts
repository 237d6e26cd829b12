/**
 * One connection, from its handshake to the live stream: decide its rooms, replay what it missed
 * from the outbox in `seq` order, then hand it over to the node's live dispatch without a gap and
 * without a repeat.
 *
 * The handover is the delicate part. The socket joins no room while it catches up, so the live
 * dispatch cannot reach it early (out of order). When the outbox has nothing more for it:
 * - if the node already dispatched past the socket's cursor, the node's recent log gives the tail
 *   (synchronously: nothing can be dispatched in between), then the socket joins its rooms;
 * - if the socket is ahead of the node (the outbox held notifications the node has not dispatched
 *   yet), it waits, and joins its rooms right before the node dispatches the first one after its
 *   cursor.
 *
 * A token refresh decides the rooms again ({@link Session.reauthorize}): the socket leaves the live
 * stream at a known `seq` (synchronously), and follows it again from there as a resuming connection
 * does, so it misses nothing and receives nothing twice.
 *
 * @internal
 */
import { Notification, Projection, type SyncStore } from "@clerk-sync/core"
import { Effect, Option } from "effect"
import type { Socket } from "socket.io"
import type { Identity } from "../Auth.ts"
import { type Hello, HELLO, READY, type Ready, type Snapshot, type SnapshotOrganization, VERSION } from "../Protocol.ts"
import { ADMIN, orgRoom, RoomSet, rewind, userRoom } from "../Rooms.ts"
import { closeDeleted, findHead, type Hub, type Waiter } from "./Hub.ts"

const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(effect)

export interface SessionOptions {
  readonly socket: Socket
  readonly identity: Identity
  readonly lastSeq: number | null
  readonly hub: Hub
  readonly store: SyncStore.SyncStoreShape
  readonly readBatchSize: number
  /** Clerk org ids the user is a live member of now (default: the store's `listUserOrganizations`). */
  readonly organizationsOf?: ((clerkUserId: string) => Promise<ReadonlyArray<string>>) | undefined
  /** Pause the replay while this many packets wait to be written to a slow client. */
  readonly maxBufferedPackets: number
  /** In how many ms the connection's token expires (null: never), for {@link Hello}. */
  readonly expiresIn: () => number | null
}

/** Resolves when the socket's transport has room again (or is closed). */
const drained = (socket: Socket, max: number): Promise<void> => {
  const conn = socket.conn as unknown as {
    readonly writeBuffer: ReadonlyArray<unknown>
    once: (event: string, f: () => void) => void
  }
  if (conn.writeBuffer.length < max || socket.disconnected) return Promise.resolve()
  return new Promise((resolve) => {
    conn.once("drain", resolve)
    conn.once("close", resolve)
  })
}

export class Session implements Waiter {
  readonly #o: SessionOptions
  #cursor = 0
  #rooms: RoomSet
  #closed = false
  /** `following`: deciding rooms and replaying; `waiting` for the node to pass the cursor; `live`: in its rooms. */
  #state: "following" | "waiting" | "live" = "following"

  constructor(options: SessionOptions) {
    this.#o = options
    this.#rooms = new RoomSet(null, [])
  }

  get cursor(): number {
    return this.#cursor
  }

  get closed(): boolean {
    return this.#closed
  }

  close(): void {
    this.#closed = true
    this.#o.hub.unwait(this)
  }

  /** Joins the rooms: from now on the node's live dispatch delivers to this socket. */
  activate(): void {
    if (this.#closed) return
    this.#state = "live"
    this.#o.socket.join(this.#rooms.rooms as Array<string>)
  }

  async start(): Promise<void> {
    const { hub, store } = this.#o
    await hub.ready
    const head = hub.head
    let cursor = head
    let resync = false
    if (this.#o.lastSeq !== null) {
      const floor = await run(store.outboxFloor)
      if (this.#o.lastSeq < floor - 1) resync = true // what it missed was pruned
      else if (this.#o.lastSeq > head && this.#o.lastSeq > (await findHead(store))) resync = true // from another database (reset)
      else cursor = this.#o.lastSeq
    }
    await this.#follow(cursor, { resync })
  }

  /**
   * Decides the rooms again (after a token refresh: `organizationsOf` may say otherwise now). A
   * session still catching up has just decided them, and an admin's never change: nothing to do.
   */
  async reauthorize(): Promise<void> {
    const { hub, identity, socket } = this.#o
    if (this.#closed || this.#state === "following" || identity.kind === "admin") return
    let cursor: number
    if (this.#state === "waiting") {
      hub.unwait(this)
      cursor = this.#cursor
    } else {
      // Live: the node dispatched everything up to its head to this socket's rooms. Leaving them
      // now, synchronously, makes the head the exact point to follow again from.
      cursor = hub.head
      for (const room of [...socket.rooms]) if (room !== socket.id) socket.leave(room)
    }
    this.#state = "following"
    await this.#follow(cursor, null)
  }

  /**
   * From `cursor`: decides the rooms the socket had there, replays what follows, and hands over to
   * the live stream. `hello`: a new connection (says HELLO, then READY with a snapshot); null: a
   * connection following again (says nothing of it).
   */
  async #follow(cursor: number, hello: { readonly resync: boolean } | null): Promise<void> {
    const { identity } = this.#o
    if (identity.kind === "admin") {
      this.#rooms = new RoomSet(null, [ADMIN])
    } else {
      const user = identity.userId
      // Read the state first, then the user's notifications after the cursor: a change committed in
      // between is then in the notifications, which decide for the organizations they concern.
      const current = await this.#currentOrganizations(user)
      const own = await this.#readAll(cursor, [userRoom(user)])
      this.#rooms = new RoomSet(user, [userRoom(user), ...rewind(user, current.map(orgRoom), own)])
    }
    this.#cursor = cursor
    if (this.#closed) return
    if (hello !== null) {
      const message: Hello = {
        version: VERSION,
        identity: identity.kind === "admin" ? { kind: "admin" } : { kind: "user", userId: identity.userId },
        seq: cursor,
        resync: hello.resync,
        expiresIn: this.#o.expiresIn()
      }
      this.#o.socket.emit(HELLO, message)
    }
    while (!this.#closed) {
      await this.#replay()
      if (this.#closed || this.#rooms.evicted) return
      const snapshot = hello !== null ? await this.#snapshot() : undefined
      if (this.#closed) return
      if (this.#handOver(snapshot)) return
    }
  }

  /** Sends what the outbox holds for this socket after its cursor, following room changes. */
  async #replay(): Promise<void> {
    const { socket, store, readBatchSize } = this.#o
    while (!this.#closed) {
      // Everything the node dispatched is committed, so a read that comes back short holds every
      // notification for these rooms up to the node's head as it was before the read.
      const headBefore = this.#o.hub.head
      const rows = await run(store.readOutbox(this.#cursor, this.#rooms.rooms, readBatchSize))
      if (this.#closed) return
      let changed = false
      for (const n of rows) {
        if (!this.#deliver(n)) continue
        if (this.#rooms.evicted) return closeDeleted(socket)
        // The rooms changed: what follows must be read again with the new ones.
        changed = true
        break
      }
      if (!changed && rows.length < readBatchSize) {
        if (headBefore > this.#cursor) this.#cursor = headBefore
        return
      }
      await drained(socket, this.#o.maxBufferedPackets)
    }
  }

  /** Applies one notification to this socket: delivers it if entitled. Returns whether the rooms changed. */
  #deliver(n: Notification.Stored): boolean {
    const { deliver, changed } = this.#rooms.apply(n)
    if (deliver) this.#o.socket.emit(n.payload.name, Notification.toDelivered(n))
    this.#cursor = n.seq
    return changed
  }

  /**
   * Synchronously: says READY (unless `snapshot` is undefined), then either delivers the node's tail
   * and joins the rooms, or waits for the node to catch up with this socket. Returns false when the
   * node's log no longer covers the gap (the replay must go on).
   */
  #handOver(snapshot: Snapshot | null | undefined): boolean {
    const { hub, socket } = this.#o
    if (this.#cursor < hub.head && !hub.covers(this.#cursor)) return false
    if (snapshot !== undefined) {
      const ready: Ready = { seq: this.#cursor, snapshot }
      socket.emit(READY, ready)
    }
    if (this.#cursor < hub.head) {
      for (const n of hub.logAfter(this.#cursor)) {
        this.#deliver(n)
        if (this.#rooms.evicted) {
          closeDeleted(socket)
          return true
        }
      }
    }
    if (this.#cursor === hub.head) this.activate()
    else {
      this.#state = "waiting"
      hub.wait(this)
    }
    return true
  }

  async #readAll(after: number, rooms: ReadonlyArray<string>): Promise<ReadonlyArray<Notification.Stored>> {
    const all: Array<Notification.Stored> = []
    let cursor = after
    while (true) {
      const rows = await run(this.#o.store.readOutbox(cursor, rooms, this.#o.readBatchSize))
      all.push(...rows)
      if (rows.length < this.#o.readBatchSize) return all
      cursor = rows[rows.length - 1]!.seq
    }
  }

  async #currentOrganizations(clerkUserId: string): Promise<ReadonlyArray<string>> {
    if (this.#o.organizationsOf) return this.#o.organizationsOf(clerkUserId)
    const rows = await run(this.#o.store.listUserOrganizations(clerkUserId))
    return rows.map((r) => r.organization.clerkOrgId)
  }

  async #snapshot(): Promise<Snapshot | null> {
    const { identity, store } = this.#o
    if (identity.kind !== "user") return null
    const [user, rows] = await Promise.all([
      run(store.findUser(identity.userId)),
      run(store.listUserOrganizations(identity.userId))
    ])
    if (Option.isNone(user)) return { user: null, organizations: [] }
    const organizations: Array<SnapshotOrganization> = rows.map((r) => ({
      organization: Projection.organizationView(r.organization),
      membership: Projection.membershipView(r.membership, user.value, r.organization)
    }))
    return { user: Projection.privateUser(user.value), organizations }
  }
}
