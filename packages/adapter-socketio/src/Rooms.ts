/**
 * Which rooms a connection is in, and how notifications change them. Pure: the same rules run on
 * the live path (every node, for its own sockets) and on the replay path (one socket catching up),
 * so a client that was away ends in exactly the rooms it would be in had it stayed.
 *
 * - a user is always in `user:<id>`; an admin is in `admin` only;
 * - `membership.created` for the user: joins `org:<id>` BEFORE that notification is delivered (so
 *   the new member hears of it in the org's stream too);
 * - `membership.deleted` for the user, `organization.deleted`, `user.deleted`: leave AFTER that
 *   notification is delivered, and before the next one.
 *
 * A connection is entitled to a notification iff one of its audiences is a room it is in at that
 * moment: a member receives every event of its organization from the moment it joined to the moment
 * it left, and nothing else.
 *
 * @since 0.1.0
 */
import type { Notification } from "@clerk-sync/core"

/** @category constants */
export const ADMIN = "admin"
/** @category constructors */
export const userRoom = (clerkUserId: string): string => `user:${clerkUserId}`
/** @category constructors */
export const orgRoom = (clerkOrgId: string): string => `org:${clerkOrgId}`
/** @category predicates */
export const isOrgRoom = (room: string): boolean => room.startsWith("org:")

/** Room changes a notification causes, for everyone concerned. @category models */
export interface Effects {
  /** Before delivering: the sockets of `user` join `room`. */
  readonly join?: { readonly user: string; readonly room: string }
  /** After delivering: the sockets of `user` leave `room`. */
  readonly leave?: { readonly user: string; readonly room: string }
  /** After delivering: every socket in `room` leaves it (the organization is gone). */
  readonly close?: string
  /** After delivering: the sockets of `user` leave every org room, and are disconnected (the user is gone). */
  readonly evict?: string
}

/** @category accessors */
export const effectsOf = (payload: Notification.Payload): Effects => {
  switch (payload.name) {
    case "membership.created":
      return { join: { user: payload.membership.user.clerkUserId, room: orgRoom(payload.membership.organization.clerkOrgId) } }
    case "membership.deleted":
      return { leave: { user: payload.membership.user.clerkUserId, room: orgRoom(payload.membership.organization.clerkOrgId) } }
    case "organization.deleted":
      return { close: orgRoom(payload.organization.clerkOrgId) }
    case "user.deleted":
      return { evict: payload.user.clerkUserId }
    default:
      return {}
  }
}

/**
 * The rooms of one connection, as it moves through the stream.
 *
 * @category models
 */
export class RoomSet {
  readonly #rooms: Set<string>
  readonly #userId: string | null
  #evicted = false

  constructor(userId: string | null, rooms: Iterable<string>) {
    this.#userId = userId
    this.#rooms = new Set(rooms)
  }

  get rooms(): ReadonlyArray<string> {
    return [...this.#rooms]
  }

  /** The user was deleted while this connection followed the stream. */
  get evicted(): boolean {
    return this.#evicted
  }

  has(room: string): boolean {
    return this.#rooms.has(room)
  }

  /**
   * Applies one notification: returns whether it is delivered to this connection, and whether the
   * room set changed (a reader filtering by rooms must then read again from this point).
   */
  apply(n: Notification.Stored): { readonly deliver: boolean; readonly changed: boolean } {
    const effects = effectsOf(n.payload)
    let changed = false
    if (effects.join && effects.join.user === this.#userId && !this.#rooms.has(effects.join.room)) {
      this.#rooms.add(effects.join.room)
      changed = true
    }
    const deliver = n.audiences.some((a) => this.#rooms.has(a))
    if (effects.leave && effects.leave.user === this.#userId && this.#rooms.delete(effects.leave.room)) changed = true
    if (effects.close !== undefined && this.#rooms.delete(effects.close)) changed = true
    if (effects.evict !== undefined && effects.evict === this.#userId) {
      for (const room of [...this.#rooms]) if (isOrgRoom(room)) this.#rooms.delete(room)
      this.#evicted = true
      changed = true
    }
    return { deliver, changed }
  }
}

/**
 * The org rooms a user was in at `seq`, from the rooms it is in now and its own notifications
 * after `seq` (all of a user's membership notifications are addressed to `user:<id>`): for an
 * organization whose membership changed after `seq`, the first change tells — `created` means it was
 * not a member then, `updated`/`deleted` that it was; any other organization is as it is now.
 *
 * @category constructors
 */
export const rewind = (
  userId: string,
  currentOrgRooms: Iterable<string>,
  ownAfter: ReadonlyArray<Notification.Stored>
): ReadonlyArray<string> => {
  const firstChange = new Map<string, Notification.Name>()
  for (const n of ownAfter) {
    const p = n.payload
    if (
      (p.name === "membership.created" || p.name === "membership.updated" || p.name === "membership.deleted") &&
      p.membership.user.clerkUserId === userId
    ) {
      const room = orgRoom(p.membership.organization.clerkOrgId)
      if (!firstChange.has(room)) firstChange.set(room, p.name)
    }
  }
  const rooms = new Set<string>()
  for (const room of currentOrgRooms) if (!firstChange.has(room)) rooms.add(room)
  for (const [room, name] of firstChange) if (name !== "membership.created") rooms.add(room)
  return [...rooms]
}
