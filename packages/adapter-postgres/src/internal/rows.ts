/**
 * Rows between Postgres and the core's models. Times are epoch milliseconds in the core and
 * `timestamptz` in Postgres (whole milliseconds round-trip exactly); they arrive as `Date` from a
 * plain query and as ISO strings from `json_agg`, and both are accepted.
 */
import type { Domain, Notification, SyncStore } from "@clerk-sync/core"

type Time = Date | string | null

export const millis = (value: Time): number | null =>
  value === null ? null : value instanceof Date ? value.getTime() : Date.parse(value)

export const millisOrZero = (value: Time): number => millis(value) ?? 0

const MAX_DATE = 8.64e15

/**
 * Milliseconds as an ISO string `timestamptz` reads exactly, or null. Values beyond what a date
 * can hold (±8.64e15 ms) are clamped rather than failing the event forever.
 */
export const iso = (value: number | null): string | null => {
  if (value === null) return null
  const ms = Number.isFinite(value) ? Math.max(-MAX_DATE, Math.min(MAX_DATE, value)) : 0
  // Years past 9999 are written "+010000-…" by JavaScript and "10000-…" by Postgres.
  return new Date(ms).toISOString().replace(/^\+0*/, "")
}

const json = <A>(value: unknown, fallback: A): A => {
  if (value === null || value === undefined) return fallback
  return (typeof value === "string" ? JSON.parse(value) : value) as A
}

export interface UserRecord {
  readonly id: string
  readonly clerk_user_id: string
  readonly email: string | null
  readonly first_name: string | null
  readonly last_name: string | null
  readonly username: string | null
  readonly image_url: string | null
  readonly public_metadata: unknown
  readonly placeholder: boolean
  readonly version: string
  readonly created_at: Time
  readonly updated_at: Time
  readonly deleted_at: Time
}

export const toUser = (r: UserRecord): Domain.UserRow => ({
  id: r.id,
  clerkUserId: r.clerk_user_id,
  email: r.email,
  firstName: r.first_name,
  lastName: r.last_name,
  username: r.username,
  imageUrl: r.image_url,
  publicMetadata: json(r.public_metadata, {}),
  placeholder: r.placeholder,
  version: r.version,
  createdAt: millis(r.created_at),
  updatedAt: millis(r.updated_at),
  deletedAt: millis(r.deleted_at)
})

export interface OrganizationRecord {
  readonly id: string
  readonly clerk_org_id: string
  readonly name: string
  readonly slug: string | null
  readonly image_url: string | null
  readonly public_metadata: unknown
  readonly placeholder: boolean
  readonly version: string
  readonly created_at: Time
  readonly updated_at: Time
  readonly deleted_at: Time
}

export const toOrganization = (r: OrganizationRecord): Domain.OrganizationRow => ({
  id: r.id,
  clerkOrgId: r.clerk_org_id,
  name: r.name,
  slug: r.slug,
  imageUrl: r.image_url,
  publicMetadata: json(r.public_metadata, {}),
  placeholder: r.placeholder,
  version: r.version,
  createdAt: millis(r.created_at),
  updatedAt: millis(r.updated_at),
  deletedAt: millis(r.deleted_at)
})

/** A membership row joined with its user's and organization's Clerk ids. */
export interface MembershipRecord {
  readonly id: string
  readonly clerk_membership_id: string | null
  readonly user_id: string
  readonly organization_id: string
  readonly clerk_user_id: string
  readonly clerk_org_id: string
  readonly role: string
  readonly permissions: ReadonlyArray<string> | string | null
  readonly public_metadata: unknown
  readonly version: string
  readonly created_at: Time
  readonly updated_at: Time
  readonly deleted_at: Time
}

export const toMembership = (r: MembershipRecord): Domain.MembershipRow => ({
  id: r.id,
  clerkMembershipId: r.clerk_membership_id,
  userId: r.user_id,
  organizationId: r.organization_id,
  clerkUserId: r.clerk_user_id,
  clerkOrgId: r.clerk_org_id,
  role: r.role,
  permissions: Array.isArray(r.permissions) ? r.permissions : [],
  publicMetadata: json(r.public_metadata, {}),
  version: r.version,
  createdAt: millis(r.created_at),
  updatedAt: millis(r.updated_at),
  deletedAt: millis(r.deleted_at)
})

export interface InboxRecord {
  readonly svix_id: string
  readonly type: string
  readonly payload: unknown
  readonly status: SyncStore.InboxStatus
  readonly attempts: number
  readonly error: string | null
  readonly received_at: Time
  readonly processed_at: Time
}

export const toInbox = (r: InboxRecord): SyncStore.InboxEntry => ({
  svixId: r.svix_id,
  type: r.type,
  payload: r.payload,
  receivedAt: millisOrZero(r.received_at),
  status: r.status,
  attempts: Number(r.attempts),
  error: r.error,
  processedAt: millis(r.processed_at)
})

export interface OutboxRecord {
  readonly seq: string | number | bigint
  readonly audiences: ReadonlyArray<string>
  readonly payload: unknown
  readonly created_at: Time
}

export const toStored = (r: OutboxRecord): Notification.Stored => ({
  seq: Number(r.seq),
  audiences: r.audiences as ReadonlyArray<Notification.Audience>,
  payload: json(r.payload, null as unknown as Notification.Payload),
  createdAt: millisOrZero(r.created_at)
})

// What the write statement receives, as JSON (`jsonb_to_recordset`): snake_case, times as ISO.

export const userJson = (u: Domain.UserRow) => ({
  id: u.id,
  clerk_user_id: u.clerkUserId,
  email: u.email,
  first_name: u.firstName,
  last_name: u.lastName,
  username: u.username,
  image_url: u.imageUrl,
  public_metadata: u.publicMetadata,
  placeholder: u.placeholder,
  version: u.version,
  created_at: iso(u.createdAt),
  updated_at: iso(u.updatedAt),
  deleted_at: iso(u.deletedAt)
})

export const organizationJson = (o: Domain.OrganizationRow) => ({
  id: o.id,
  clerk_org_id: o.clerkOrgId,
  name: o.name,
  slug: o.slug,
  image_url: o.imageUrl,
  public_metadata: o.publicMetadata,
  placeholder: o.placeholder,
  version: o.version,
  created_at: iso(o.createdAt),
  updated_at: iso(o.updatedAt),
  deleted_at: iso(o.deletedAt)
})

export const membershipJson = (m: Domain.MembershipRow) => ({
  id: m.id,
  clerk_membership_id: m.clerkMembershipId,
  user_id: m.userId,
  organization_id: m.organizationId,
  role: m.role,
  permissions: m.permissions,
  public_metadata: m.publicMetadata,
  version: m.version,
  created_at: iso(m.createdAt),
  updated_at: iso(m.updatedAt),
  deleted_at: iso(m.deletedAt)
})
