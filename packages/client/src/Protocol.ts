/**
 * What a clerk-sync server sends: the notifications (one event per name, each with its `seq`) and
 * the protocol's own events. Structurally the same as `@clerk-sync/core`'s `Notification.Delivered`
 * and `@clerk-sync/adapter-socketio`'s `Protocol`, without depending on them (so the browser bundle
 * holds nothing but this package and `socket.io-client`).
 *
 * @since 0.1.0
 */

/** JSON metadata (`public_metadata`). @category models */
export type Metadata = { readonly [key: string]: unknown }

/** What other members may see of a user. @category models */
export interface PublicUser {
  readonly id: string
  readonly clerkUserId: string
  readonly firstName: string | null
  readonly lastName: string | null
  readonly imageUrl: string | null
}

/** What the user themself (and admin) may see. @category models */
export interface PrivateUser extends PublicUser {
  readonly email: string | null
  readonly username: string | null
  readonly publicMetadata: Metadata
  readonly deleted: boolean
}

/** @category models */
export interface Organization {
  readonly id: string
  readonly clerkOrgId: string
  readonly name: string
  readonly slug: string | null
  readonly imageUrl: string | null
  readonly publicMetadata: Metadata
  readonly deleted: boolean
}

/** The organization as a membership carries it. @category models */
export type OrganizationSummary = Pick<Organization, "id" | "clerkOrgId" | "name" | "slug" | "imageUrl">

/** @category models */
export interface Membership {
  readonly id: string
  readonly clerkMembershipId: string | null
  readonly role: string
  readonly permissions: ReadonlyArray<string>
  readonly publicMetadata: Metadata
  readonly active: boolean
  readonly user: PublicUser
  readonly organization: OrganizationSummary
}

/** A field that changed. @category models */
export interface Change {
  readonly from: unknown
  readonly to: unknown
}

/** @category models */
export type Changes = { readonly [field: string]: Change }

/** Every notification, as received. @category models */
export type Notification =
  | { readonly name: "user.created"; readonly seq: number; readonly user: PrivateUser }
  | { readonly name: "user.updated"; readonly seq: number; readonly user: PrivateUser; readonly changes: Changes }
  | { readonly name: "user.deleted"; readonly seq: number; readonly user: PrivateUser }
  | { readonly name: "organization.created"; readonly seq: number; readonly organization: Organization }
  | { readonly name: "organization.updated"; readonly seq: number; readonly organization: Organization; readonly changes: Changes }
  | { readonly name: "organization.deleted"; readonly seq: number; readonly organization: Organization }
  | { readonly name: "membership.created"; readonly seq: number; readonly membership: Membership }
  | {
    readonly name: "membership.updated"
    readonly seq: number
    readonly membership: Membership
    readonly changes: Changes
    readonly previousRole: string
    readonly role: string
  }
  | { readonly name: "membership.deleted"; readonly seq: number; readonly membership: Membership }

/** @category models */
export type NotificationName = Notification["name"]

/** The notification of one name. @category models */
export type NotificationOf<N extends NotificationName> = Extract<Notification, { readonly name: N }>

/** Every notification name. @category constants */
export const NOTIFICATION_NAMES: ReadonlyArray<NotificationName> = [
  "user.created",
  "user.updated",
  "user.deleted",
  "organization.created",
  "organization.updated",
  "organization.deleted",
  "membership.created",
  "membership.updated",
  "membership.deleted"
]

/** @category constants */
export const NAMESPACE = "/clerk-sync"
/** @category constants */
export const HELLO = "clerk-sync:hello"
/** @category constants */
export const READY = "clerk-sync:ready"
/** @category constants */
export const CLOSING = "clerk-sync:closing"
/** Client to server: a fresh token for this connection, answered with a {@link RefreshResult}. @category constants */
export const REFRESH = "clerk-sync:refresh"

/** @category models */
export type Identity = { readonly kind: "user"; readonly userId: string } | { readonly kind: "admin" }

/** The first thing the server says. @category models */
export interface Hello {
  readonly version: number
  readonly identity: Identity
  /** Notifications after this `seq` follow. */
  readonly seq: number
  /** What was missed is beyond the server's retention: refetch your state. */
  readonly resync: boolean
  /** In how many ms the server closes the connection as its token expires (null: never; absent: an older server). */
  readonly expiresIn?: number | null
}

/** @category models */
export interface SnapshotOrganization {
  readonly organization: Organization
  readonly membership: Membership
}

/** @category models */
export interface Snapshot {
  readonly user: PrivateUser | null
  readonly organizations: ReadonlyArray<SnapshotOrganization>
}

/** Caught up. @category models */
export interface Ready {
  readonly seq: number
  readonly snapshot: Snapshot | null
}

/** Why the server closes the connection (`user_deleted`, `auth_expired`, `shutdown`). @category models */
export interface Closing {
  readonly code: string
  readonly message: string
}

/** The answer to a {@link REFRESH}. @category models */
export type RefreshResult =
  | { readonly ok: true; readonly expiresIn: number | null }
  | { readonly ok: false; readonly code: string; readonly message: string }
