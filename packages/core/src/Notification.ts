/**
 * Client notifications: what clients are told, and who may hear it.
 *
 * Names follow what clients already listen for (`user.updated`, `membership.created`, …). Each
 * notification names its audiences; there is no global broadcast:
 * - `user:<clerkUserId>`: that user's own profile and memberships;
 * - `org:<clerkOrgId>`: that organization and its memberships;
 * - `admin`: everything, for back-office dashboards.
 *
 * Notifications are written to the outbox in the same transaction as the state change; the store
 * gives each a global, increasing `seq` that clients use to dedupe and resume.
 *
 * @since 0.1.0
 */
import type { MembershipView, OrganizationView, PrivateUser } from "./Projection.ts"

/** @category models */
export type Audience = "admin" | `user:${string}` | `org:${string}`

/** @category constructors */
export const ADMIN: Audience = "admin"
/** @category constructors */
export const userAudience = (clerkUserId: string): Audience => `user:${clerkUserId}`
/** @category constructors */
export const orgAudience = (clerkOrgId: string): Audience => `org:${clerkOrgId}`

/** A field that changed: its value before and after. @category models */
export interface Change {
  readonly from: unknown
  readonly to: unknown
}

/** @category models */
export type Changes = { readonly [field: string]: Change }

/** @category models */
export type Payload =
  | { readonly name: "user.created"; readonly user: PrivateUser }
  | { readonly name: "user.updated"; readonly user: PrivateUser; readonly changes: Changes }
  | { readonly name: "user.deleted"; readonly user: PrivateUser }
  | { readonly name: "organization.created"; readonly organization: OrganizationView }
  | {
    readonly name: "organization.updated"
    readonly organization: OrganizationView
    readonly changes: Changes
  }
  | { readonly name: "organization.deleted"; readonly organization: OrganizationView }
  | { readonly name: "membership.created"; readonly membership: MembershipView }
  | {
    readonly name: "membership.updated"
    readonly membership: MembershipView
    readonly changes: Changes
    readonly previousRole: string
    readonly role: string
  }
  | { readonly name: "membership.deleted"; readonly membership: MembershipView }

/** @category models */
export type Name = Payload["name"]

/** Every notification name. @category constants */
export const NAMES: ReadonlyArray<Name> = [
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

/** A notification planned for the outbox (before the store gives it a `seq`). @category models */
export interface Notification {
  readonly audiences: ReadonlyArray<Audience>
  readonly payload: Payload
}

/** A notification as stored in the outbox and delivered to clients. @category models */
export interface Stored extends Notification {
  readonly seq: number
  readonly createdAt: number
}

/** What a client receives: the payload with its `seq`. @category models */
export type Delivered = Payload & { readonly seq: number }

/** @category conversions */
export const toDelivered = (stored: Stored): Delivered => ({ ...stored.payload, seq: stored.seq })

/** Whether a stored notification is addressed to any of the given audiences. @category predicates */
export const isFor = (notification: Notification, audiences: Iterable<string>): boolean => {
  for (const audience of audiences) if (notification.audiences.includes(audience as Audience)) return true
  return false
}
