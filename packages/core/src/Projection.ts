/**
 * Client-safe projections: what clients may see of the synced state.
 *
 * Never included: private or unsafe metadata, IP addresses or user agents from
 * `event_attributes`. A user's email appears only in {@link PrivateUser}, which is sent to that
 * user's own audience and to `admin`; everyone else sees {@link PublicUser}.
 *
 * @since 0.1.0
 */
import type { Metadata, MembershipRow, OrganizationRow, UserRow } from "./Domain.ts"

/** What other members of an organization may see of a user. @category models */
export interface PublicUser {
  readonly id: string
  readonly clerkUserId: string
  readonly firstName: string | null
  readonly lastName: string | null
  readonly imageUrl: string | null
}

/** What the user themself (and `admin`) may see. @category models */
export interface PrivateUser extends PublicUser {
  readonly email: string | null
  readonly username: string | null
  readonly publicMetadata: Metadata
  readonly deleted: boolean
}

/** @category models */
export interface OrganizationView {
  readonly id: string
  readonly clerkOrgId: string
  readonly name: string
  readonly slug: string | null
  readonly imageUrl: string | null
  readonly publicMetadata: Metadata
  readonly deleted: boolean
}

/** @category models */
export interface MembershipView {
  readonly id: string
  readonly clerkMembershipId: string | null
  readonly role: string
  readonly permissions: ReadonlyArray<string>
  readonly publicMetadata: Metadata
  readonly active: boolean
  readonly user: PublicUser
  readonly organization: Pick<OrganizationView, "id" | "clerkOrgId" | "name" | "slug" | "imageUrl">
}

/** @category constructors */
export const publicUser = (row: UserRow): PublicUser => ({
  id: row.id,
  clerkUserId: row.clerkUserId,
  firstName: row.firstName,
  lastName: row.lastName,
  imageUrl: row.imageUrl
})

/** @category constructors */
export const privateUser = (row: UserRow): PrivateUser => ({
  ...publicUser(row),
  email: row.email,
  username: row.username,
  publicMetadata: row.publicMetadata,
  deleted: row.deletedAt !== null
})

/** @category constructors */
export const organizationView = (row: OrganizationRow): OrganizationView => ({
  id: row.id,
  clerkOrgId: row.clerkOrgId,
  name: row.name,
  slug: row.slug,
  imageUrl: row.imageUrl,
  publicMetadata: row.publicMetadata,
  deleted: row.deletedAt !== null
})

/** @category constructors */
export const membershipView = (row: MembershipRow, user: UserRow, organization: OrganizationRow): MembershipView => ({
  id: row.id,
  clerkMembershipId: row.clerkMembershipId,
  role: row.role,
  permissions: row.permissions,
  publicMetadata: row.publicMetadata,
  active: row.deletedAt === null,
  user: publicUser(user),
  organization: {
    id: organization.id,
    clerkOrgId: organization.clerkOrgId,
    name: organization.name,
    slug: organization.slug,
    imageUrl: organization.imageUrl
  }
})
