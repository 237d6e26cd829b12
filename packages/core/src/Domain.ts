/**
 * The synced state: users, organizations and memberships as clerk-sync stores them.
 *
 * Every row has an internal id (a UUID the app's own tables may reference, stable forever) distinct
 * from the Clerk id, and carries the {@link Version} of the Clerk state it holds. Users and
 * organizations are never physically deleted: a deletion is a tombstone (`deletedAt` set, personal
 * data cleared) so the internal ids stay valid and no older event can resurrect them.
 *
 * @since 0.1.0
 */
import type { Version } from "./Version.ts"

/** JSON metadata as Clerk sends it (`public_metadata`). @category models */
export type Metadata = { readonly [key: string]: unknown }

/** @category models */
export interface UserRow {
  readonly id: string
  readonly clerkUserId: string
  readonly email: string | null
  readonly firstName: string | null
  readonly lastName: string | null
  readonly username: string | null
  readonly imageUrl: string | null
  readonly publicMetadata: Metadata
  /** Built from data embedded in a membership event; any real user event overrides it. */
  readonly placeholder: boolean
  readonly version: Version
  /** Clerk's `created_at` (ms), when known. */
  readonly createdAt: number | null
  /** Clerk's `updated_at` (ms) of the state held. */
  readonly updatedAt: number | null
  /** The deletion's time (ms): set on a tombstone. */
  readonly deletedAt: number | null
}

/** @category models */
export interface OrganizationRow {
  readonly id: string
  readonly clerkOrgId: string
  readonly name: string
  readonly slug: string | null
  readonly imageUrl: string | null
  readonly publicMetadata: Metadata
  readonly placeholder: boolean
  readonly version: Version
  readonly createdAt: number | null
  readonly updatedAt: number | null
  readonly deletedAt: number | null
}

/**
 * A membership: one row per (user, organization) pair. Leaving sets `deletedAt`; re-joining with a
 * newer version revives the same row (and records the new Clerk membership id).
 *
 * @category models
 */
export interface MembershipRow {
  readonly id: string
  readonly clerkMembershipId: string | null
  readonly userId: string
  readonly organizationId: string
  readonly clerkUserId: string
  readonly clerkOrgId: string
  readonly role: string
  readonly permissions: ReadonlyArray<string>
  readonly publicMetadata: Metadata
  readonly version: Version
  readonly createdAt: number | null
  readonly updatedAt: number | null
  readonly deletedAt: number | null
}

/** Whether a row is live (not a tombstone / ended membership). @category predicates */
export const isLive = (row: { readonly deletedAt: number | null } | undefined | null): boolean =>
  row != null && row.deletedAt === null
