/**
 * The wire protocol between the clerk-sync Socket.IO server and its clients (`@clerk-sync/client`
 * speaks it; any Socket.IO client can).
 *
 * Handshake: `io(url + "/clerk-sync", { auth: { token, lastSeq } })`. `token` is the Clerk session
 * token (or an admin credential); `lastSeq` the last `seq` the client received, to resume from it.
 *
 * Then, in this order, on one connection:
 * 1. {@link HELLO}: who the server thinks you are and the `seq` it resumes after (`resync: true` when
 *    `lastSeq` is older than the retention window: refetch your state, the stream restarts from now);
 * 2. the notifications you missed, in `seq` order, each under its own name (`membership.created`, …);
 * 3. {@link READY}: you are caught up to `seq`; with a snapshot of your organizations at that point;
 * 4. live notifications, in `seq` order.
 *
 * Refusals arrive as `connect_error` with `err.data.code` (see `Auth.AuthErrorCode`).
 *
 * A connection lasts as long as its token: {@link Hello} says `expiresIn` (ms). Before then the
 * client may send a fresh token for the same identity with {@link REFRESH} (acknowledged with a
 * {@link RefreshResult}); the connection then lasts as long as the new token, and its rooms are
 * decided again. Otherwise, at expiry, the server sends {@link CLOSING} with code `auth_expired`,
 * leaves every room and disconnects: reconnect with a fresh token and `lastSeq` to resume.
 *
 * @since 0.1.0
 */
import type { Notification, Projection } from "@clerk-sync/core"
import type { AuthErrorCode } from "./Auth.ts"

/** The default namespace. @category constants */
export const NAMESPACE = "/clerk-sync"

/** Protocol version, in {@link Hello}. @category constants */
export const VERSION = 1

/** @category constants */
export const HELLO = "clerk-sync:hello"
/** @category constants */
export const READY = "clerk-sync:ready"
/** Sent just before the server closes the connection on purpose (see {@link Closing}). @category constants */
export const CLOSING = "clerk-sync:closing"
/**
 * Client to server: `socket.emit(REFRESH, { token }, (result: RefreshResult) => …)`, a fresh token
 * for this connection before its current one expires.
 *
 * @category constants
 */
export const REFRESH = "clerk-sync:refresh"

/** Server-to-server: a batch of notifications for every node of the cluster. @category constants */
export const BATCH = "clerk-sync:batch"

/** @category models */
export type WireIdentity = { readonly kind: "user"; readonly userId: string } | { readonly kind: "admin" }

/** @category models */
export interface Hello {
  readonly version: number
  readonly identity: WireIdentity
  /** Notifications after this `seq` follow (the missed ones first). */
  readonly seq: number
  /** `lastSeq` was beyond the retention window: what was missed cannot be replayed; refetch state. */
  readonly resync: boolean
  /**
   * In how many ms the server closes this connection because its token expires (`null`: never,
   * the raw admin token). Send a fresh token with {@link REFRESH} before then to stay connected.
   */
  readonly expiresIn: number | null
}

/** @category models */
export interface SnapshotOrganization {
  readonly organization: Projection.OrganizationView
  readonly membership: Projection.MembershipView
}

/** The signed-in user's state when the replay ended. @category models */
export interface Snapshot {
  readonly user: Projection.PrivateUser | null
  /** Live memberships in live organizations, by organization name. */
  readonly organizations: ReadonlyArray<SnapshotOrganization>
}

/** @category models */
export interface Ready {
  /** Everything up to this `seq` for your audiences has been sent. */
  readonly seq: number
  /** For a user; `null` for an admin. */
  readonly snapshot: Snapshot | null
}

/**
 * Why the server closes a connection:
 * - `user_deleted`: for good; do not reconnect as this user;
 * - `auth_expired`: the token expired without a refresh; reconnect with a fresh one (and `lastSeq`);
 * - `shutdown`: this server is stopping; reconnect (with `lastSeq`), to it once restarted or to another.
 *
 * @category models
 */
export interface Closing {
  readonly code: "user_deleted" | "auth_expired" | "shutdown"
  readonly message: string
}

/** {@link REFRESH}'s request. @category models */
export interface Refresh {
  readonly token: string
}

/**
 * {@link REFRESH}'s answer. Refused (`ok: false`, the codes of `Auth.AuthErrorCode`, with
 * `identity_mismatch` for another user's token): the connection keeps its current expiry.
 *
 * @category models
 */
export type RefreshResult =
  | { readonly ok: true; readonly expiresIn: number | null }
  | { readonly ok: false; readonly code: AuthErrorCode; readonly message: string }

/** Server-to-server batch. @category models */
export interface Batch {
  /** The publishing instance. */
  readonly from: string
  /** The last `seq` this publisher published before this batch (null: its first batch). */
  readonly prev: number | null
  readonly items: ReadonlyArray<Notification.Stored>
}
