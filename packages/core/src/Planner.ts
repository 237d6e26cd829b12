/**
 * The sync planner: the sync rules as a pure function, state in, writes and notifications out.
 *
 * Rules (ARCHITECTURE.md "Sync rules"):
 * - Every row carries the {@link Version} of the Clerk state it holds; the newer version wins
 *   whatever order deliveries arrive in; ties are broken by envelope timestamp, then `svix-id`.
 * - A stale or duplicate event plans nothing and notifies nobody.
 * - Users and organizations are never resurrected: deletion leaves a tombstone (personal data
 *   cleared unless `personalData: "retain"`), and any later event for it is ignored. Of two
 *   deletions of the same id, the earlier one is kept, so the result does not depend on arrival.
 * - Memberships are keyed by (user, organization): a newer version revives an ended one.
 *   Deleting a user or an organization ends its memberships.
 * - A membership for a user or organization not yet seen creates a placeholder from the data the
 *   membership embeds, at a version any real event overrides.
 * - Notifications name the transition the state made (a row that appears is `created`, whatever the
 *   event that brought it), carry `changes` for updates and `previousRole`/`role` for memberships,
 *   and are addressed to the audiences entitled to them.
 *
 * @since 0.1.0
 */
import type { ClerkEvent, MembershipData, OrganizationData, UserData } from "./ClerkEvent.ts"
import { isLive, type Metadata, type MembershipRow, type OrganizationRow, type UserRow } from "./Domain.ts"
import * as N from "./Notification.ts"
import { membershipOf, type Plan, type Scope, type Snapshot, stale } from "./Plan.ts"
import * as Projection from "./Projection.ts"
import * as Version from "./Version.ts"

/** @category models */
export interface Settings {
  /** On deletion, clear personal data (default) or keep the last data seen. */
  readonly personalData: "clear" | "retain"
  /** Makes internal ids for new rows. */
  readonly newId: () => string
}

/** @category constructors */
export const defaultSettings: Settings = { personalData: "clear", newId: () => globalThis.crypto.randomUUID() }

/** A decoded, handled event and its delivery id (`svix-id`). @category models */
export interface Input {
  readonly event: Exclude<ClerkEvent, { readonly _tag: "Unhandled" }>
  readonly eventId: string
}

/**
 * The version an event carries: `data.updated_at` for created/updated, the envelope timestamp for
 * deletions (which carry no `updated_at`).
 *
 * @category versions
 */
export const versionOf = (input: Input): Version.Version => {
  const { event, eventId } = input
  switch (event._tag) {
    case "UserUpserted":
      return Version.make(Version.REAL, event.user.updatedAt, event.timestamp, eventId)
    case "OrganizationUpserted":
      return Version.make(Version.REAL, event.organization.updatedAt ?? event.timestamp, event.timestamp, eventId)
    case "MembershipUpserted":
      return Version.make(Version.REAL, event.membership.updatedAt, event.timestamp, eventId)
    case "MembershipDeleted":
    case "UserDeleted":
    case "OrganizationDeleted":
      return Version.make(Version.REAL, event.timestamp, event.timestamp, eventId)
  }
}

/** What an event needs to read. @category planning */
export const scopeOf = (input: Input): Scope => {
  const { event } = input
  switch (event._tag) {
    case "UserUpserted":
      return { users: [event.user.clerkUserId], organizations: [], membershipPairs: [], membershipsOfUsers: [], membershipsOfOrganizations: [] }
    case "UserDeleted":
      return { users: [event.clerkUserId], organizations: [], membershipPairs: [], membershipsOfUsers: [event.clerkUserId], membershipsOfOrganizations: [] }
    case "OrganizationUpserted":
      return { users: [], organizations: [event.organization.clerkOrgId], membershipPairs: [], membershipsOfUsers: [], membershipsOfOrganizations: [] }
    case "OrganizationDeleted":
      return { users: [], organizations: [event.clerkOrgId], membershipPairs: [], membershipsOfUsers: [], membershipsOfOrganizations: [event.clerkOrgId] }
    case "MembershipUpserted":
    case "MembershipDeleted": {
      const u = event.membership.user.clerkUserId
      const o = event.membership.organization.clerkOrgId
      return { users: [u], organizations: [o], membershipPairs: [[u, o]], membershipsOfUsers: [], membershipsOfOrganizations: [] }
    }
  }
}

/**
 * Plans one event against the current rows.
 *
 * @example
 * import { Planner, Plan } from "@clerk-sync/core"
 * const input = { event, eventId: "msg_1" }
 * const plan = Planner.plan(input, Plan.emptySnapshot, Planner.defaultSettings)
 * plan.users[0].clerkUserId // the user the event created
 *
 * @category planning
 */
export const plan = (input: Input, snapshot: Snapshot, settings: Settings): Plan => {
  const version = versionOf(input)
  const { event } = input
  switch (event._tag) {
    case "UserUpserted":
      return planUser(event.user, version, snapshot, settings)
    case "UserDeleted":
      return planUserDeleted(event.clerkUserId, event.timestamp, version, snapshot, settings)
    case "OrganizationUpserted":
      return planOrganization(event.organization, version, snapshot, settings)
    case "OrganizationDeleted":
      return planOrganizationDeleted(event.clerkOrgId, event.timestamp, version, snapshot, settings)
    case "MembershipUpserted":
      return planMembership(event.membership, "live", event.timestamp, version, snapshot, settings)
    case "MembershipDeleted":
      return planMembership(event.membership, "ended", event.timestamp, version, snapshot, settings)
  }
}

// ---------------------------------------------------------------------------------------------
// Changes
// ---------------------------------------------------------------------------------------------

// Key order carries no meaning in Clerk's JSON (and stores such as Postgres `jsonb` reorder keys),
// so values are compared with their object keys sorted.
const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v)

const sameJson = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b)

const diff = <A extends object>(before: A, after: A, fields: ReadonlyArray<keyof A & string>): N.Changes => {
  const changes: Record<string, N.Change> = {}
  for (const field of fields) {
    if (!sameJson(before[field], after[field])) changes[field] = { from: before[field], to: after[field] }
  }
  return changes
}

const isEmpty = (changes: N.Changes): boolean => Object.keys(changes).length === 0

const USER_FIELDS = ["email", "firstName", "lastName", "username", "imageUrl", "publicMetadata"] as const
const ORGANIZATION_FIELDS = ["name", "slug", "imageUrl", "publicMetadata"] as const
const MEMBERSHIP_FIELDS = ["role", "permissions", "publicMetadata"] as const

// ---------------------------------------------------------------------------------------------
// Audiences
// ---------------------------------------------------------------------------------------------

const userAudiences = (clerkUserId: string): ReadonlyArray<N.Audience> => [N.userAudience(clerkUserId), N.ADMIN]
const orgAudiences = (clerkOrgId: string): ReadonlyArray<N.Audience> => [N.orgAudience(clerkOrgId), N.ADMIN]
const membershipAudiences = (m: MembershipRow): ReadonlyArray<N.Audience> => [
  N.orgAudience(m.clerkOrgId),
  N.userAudience(m.clerkUserId),
  N.ADMIN
]

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

const applied = (
  parts: Partial<Pick<Plan, "users" | "organizations" | "memberships" | "notifications">>
): Plan => ({
  outcome: "applied",
  users: parts.users ?? [],
  organizations: parts.organizations ?? [],
  memberships: parts.memberships ?? [],
  notifications: parts.notifications ?? []
})

const planUser = (data: UserData, version: Version.Version, snapshot: Snapshot, settings: Settings): Plan => {
  const current = snapshot.users.get(data.clerkUserId)
  if (current && !isLive(current)) return stale
  if (current && !current.placeholder && !Version.isNewer(version, current.version)) return stale
  const row: UserRow = {
    id: current?.id ?? settings.newId(),
    clerkUserId: data.clerkUserId,
    email: data.email,
    firstName: data.firstName,
    lastName: data.lastName,
    username: data.username,
    imageUrl: data.imageUrl,
    publicMetadata: data.publicMetadata,
    placeholder: false,
    version,
    createdAt: data.createdAt ?? current?.createdAt ?? null,
    updatedAt: data.updatedAt,
    deletedAt: null
  }
  if (!current || current.placeholder) {
    return applied({
      users: [row],
      notifications: [{ audiences: userAudiences(row.clerkUserId), payload: { name: "user.created", user: Projection.privateUser(row) } }]
    })
  }
  const changes = diff(current, row, USER_FIELDS)
  return applied({
    users: [row],
    notifications: isEmpty(changes)
      ? []
      : [{ audiences: userAudiences(row.clerkUserId), payload: { name: "user.updated", user: Projection.privateUser(row), changes } }]
  })
}

// A cleared tombstone is a function of the deletion alone (nothing of the state it replaced stays),
// so it is the same whichever events arrived before the deletion did.
const clearUser = (row: UserRow): UserRow => ({
  ...row,
  email: null,
  firstName: null,
  lastName: null,
  username: null,
  imageUrl: null,
  publicMetadata: {},
  createdAt: null,
  updatedAt: null
})

/** Ends the live memberships in `memberships`, as part of a user's or organization's deletion. */
const endMemberships = (
  memberships: ReadonlyArray<MembershipRow>,
  deletedAt: number,
  version: Version.Version,
  snapshot: Snapshot
): { readonly rows: ReadonlyArray<MembershipRow>; readonly notifications: ReadonlyArray<N.Notification> } => {
  const rows: Array<MembershipRow> = []
  const notifications: Array<N.Notification> = []
  for (const m of memberships) {
    if (!isLive(m)) continue
    const ended: MembershipRow = { ...m, deletedAt, version: Version.max(m.version, version) }
    rows.push(ended)
    // The membership view shows the user and organization as they were before the deletion cleared
    // them, so clients can still say who left which organization.
    const user = snapshot.users.get(m.clerkUserId)
    const organization = snapshot.organizations.get(m.clerkOrgId)
    if (user && organization) {
      notifications.push({
        audiences: membershipAudiences(ended),
        payload: { name: "membership.deleted", membership: Projection.membershipView(ended, user, organization) }
      })
    }
  }
  return { rows, notifications }
}

/**
 * A second deletion of a tombstone: the earliest deletion is kept, so arrival order cannot change
 * the result. Returns the tombstone rewritten, or nothing when the one held is already earlier.
 */
const earlierDeletion = <R extends { readonly version: Version.Version; readonly deletedAt: number | null }>(
  tombstone: R,
  version: Version.Version,
  deletedAt: number
): R | undefined => (version < tombstone.version ? { ...tombstone, version, deletedAt } : undefined)

const planUserDeleted = (
  clerkUserId: string,
  deletedAt: number,
  eventVersion: Version.Version,
  snapshot: Snapshot,
  settings: Settings
): Plan => {
  const current = snapshot.users.get(clerkUserId)
  const version = Version.withRank(eventVersion, Version.TOMBSTONE)
  if (current && !isLive(current)) {
    const earlier = earlierDeletion(current, version, deletedAt)
    return earlier ? applied({ users: [earlier] }) : stale
  }
  const base: UserRow = current ?? {
    id: settings.newId(),
    clerkUserId,
    email: null,
    firstName: null,
    lastName: null,
    username: null,
    imageUrl: null,
    publicMetadata: {},
    placeholder: false,
    version,
    createdAt: null,
    updatedAt: null,
    deletedAt: null
  }
  const tombstone: UserRow = {
    ...(settings.personalData === "clear" ? clearUser(base) : base),
    placeholder: false,
    version,
    deletedAt
  }
  const ended = endMemberships(
    snapshot.memberships.filter((m) => m.clerkUserId === clerkUserId),
    deletedAt,
    version,
    snapshot
  )
  return applied({
    users: [tombstone],
    memberships: ended.rows,
    notifications: [
      ...ended.notifications,
      ...(current
        ? [{ audiences: userAudiences(clerkUserId), payload: { name: "user.deleted" as const, user: Projection.privateUser(tombstone) } }]
        : [])
    ]
  })
}

// ---------------------------------------------------------------------------------------------
// Organizations
// ---------------------------------------------------------------------------------------------

const planOrganization = (data: OrganizationData, version: Version.Version, snapshot: Snapshot, settings: Settings): Plan => {
  const current = snapshot.organizations.get(data.clerkOrgId)
  if (current && !isLive(current)) return stale
  if (current && !current.placeholder && !Version.isNewer(version, current.version)) return stale
  const row = organizationRow(data, current, version, false, settings)
  if (!current || current.placeholder) {
    return applied({
      organizations: [row],
      notifications: [{ audiences: orgAudiences(row.clerkOrgId), payload: { name: "organization.created", organization: Projection.organizationView(row) } }]
    })
  }
  const changes = diff(current, row, ORGANIZATION_FIELDS)
  return applied({
    organizations: [row],
    notifications: isEmpty(changes) ? [] : [{
      audiences: orgAudiences(row.clerkOrgId),
      payload: { name: "organization.updated", organization: Projection.organizationView(row), changes }
    }]
  })
}

const organizationRow = (
  data: OrganizationData,
  current: OrganizationRow | undefined,
  version: Version.Version,
  placeholder: boolean,
  settings: Settings
): OrganizationRow => ({
  id: current?.id ?? settings.newId(),
  clerkOrgId: data.clerkOrgId,
  name: data.name,
  slug: data.slug,
  imageUrl: data.imageUrl,
  publicMetadata: data.publicMetadata,
  placeholder,
  version,
  createdAt: data.createdAt ?? current?.createdAt ?? null,
  updatedAt: data.updatedAt,
  deletedAt: null
})

const planOrganizationDeleted = (
  clerkOrgId: string,
  deletedAt: number,
  eventVersion: Version.Version,
  snapshot: Snapshot,
  settings: Settings
): Plan => {
  const current = snapshot.organizations.get(clerkOrgId)
  const version = Version.withRank(eventVersion, Version.TOMBSTONE)
  if (current && !isLive(current)) {
    const earlier = earlierDeletion(current, version, deletedAt)
    return earlier ? applied({ organizations: [earlier] }) : stale
  }
  const base: OrganizationRow = current ?? {
    id: settings.newId(),
    clerkOrgId,
    name: "",
    slug: null,
    imageUrl: null,
    publicMetadata: {},
    placeholder: false,
    version,
    createdAt: null,
    updatedAt: null,
    deletedAt: null
  }
  const tombstone: OrganizationRow = {
    ...base,
    ...(settings.personalData === "clear"
      ? { name: "", slug: null, imageUrl: null, publicMetadata: {}, createdAt: null, updatedAt: null }
      : {}),
    placeholder: false,
    version,
    deletedAt
  }
  // The organization's room hears of the deletion before its members are evicted from it.
  const deletedNotice: ReadonlyArray<N.Notification> = current
    ? [{ audiences: orgAudiences(clerkOrgId), payload: { name: "organization.deleted", organization: Projection.organizationView(tombstone) } }]
    : []
  const ended = endMemberships(
    snapshot.memberships.filter((m) => m.clerkOrgId === clerkOrgId),
    deletedAt,
    version,
    snapshot
  )
  return applied({
    organizations: [tombstone],
    memberships: ended.rows,
    notifications: [...deletedNotice, ...ended.notifications]
  })
}

// ---------------------------------------------------------------------------------------------
// Memberships
// ---------------------------------------------------------------------------------------------

const placeholderUser = (data: MembershipData, current: UserRow | undefined, version: Version.Version, settings: Settings): UserRow => {
  const u = data.user
  return {
    id: current?.id ?? settings.newId(),
    clerkUserId: u.clerkUserId,
    // Clerk's `identifier` is the email address for most users; a username or phone number is not one.
    email: u.identifier !== null && u.identifier.includes("@") ? u.identifier : null,
    firstName: u.firstName,
    lastName: u.lastName,
    username: null,
    imageUrl: u.imageUrl,
    publicMetadata: {},
    placeholder: true,
    version,
    createdAt: null,
    updatedAt: null,
    deletedAt: null
  }
}

const planMembership = (
  data: MembershipData,
  state: "live" | "ended",
  timestamp: number,
  eventVersion: Version.Version,
  snapshot: Snapshot,
  settings: Settings
): Plan => {
  const clerkUserId = data.user.clerkUserId
  const clerkOrgId = data.organization.clerkOrgId
  const placeholderVersion = Version.withRank(eventVersion, Version.PLACEHOLDER)

  // Placeholders come first and do not depend on the membership's fate, so the users and
  // organizations table end the same whichever order events arrive in.
  let user = snapshot.users.get(clerkUserId)
  let organization = snapshot.organizations.get(clerkOrgId)
  const users: Array<UserRow> = []
  const organizations: Array<OrganizationRow> = []
  if (!user || (user.placeholder && isLive(user) && Version.isNewer(placeholderVersion, user.version))) {
    user = placeholderUser(data, user, placeholderVersion, settings)
    users.push(user)
  }
  if (!organization || (organization.placeholder && isLive(organization) && Version.isNewer(placeholderVersion, organization.version))) {
    organization = organizationRow(data.organization, organization, placeholderVersion, true, settings)
    organizations.push(organization)
  }
  const placeholders = { users, organizations }

  // A deleted user or organization ends every membership for good.
  if (!isLive(user) || !isLive(organization)) return users.length + organizations.length > 0 ? applied(placeholders) : stale

  const current = membershipOf(snapshot, clerkUserId, clerkOrgId)
  if (current && !Version.isNewer(eventVersion, current.version)) {
    return users.length + organizations.length > 0 ? applied(placeholders) : stale
  }
  const row: MembershipRow = {
    id: current?.id ?? settings.newId(),
    clerkMembershipId: data.clerkMembershipId ?? current?.clerkMembershipId ?? null,
    userId: user.id,
    organizationId: organization.id,
    clerkUserId,
    clerkOrgId,
    role: data.role,
    permissions: data.permissions,
    publicMetadata: data.publicMetadata,
    version: eventVersion,
    createdAt: data.createdAt ?? current?.createdAt ?? null,
    updatedAt: data.updatedAt,
    deletedAt: state === "live" ? null : timestamp
  }
  const view = Projection.membershipView(row, user, organization)
  const audiences = membershipAudiences(row)
  const wasLive = isLive(current)
  let notifications: ReadonlyArray<N.Notification> = []
  if (state === "live" && !wasLive) {
    notifications = [{ audiences, payload: { name: "membership.created", membership: view } }]
  } else if (state === "ended" && wasLive) {
    notifications = [{ audiences, payload: { name: "membership.deleted", membership: view } }]
  } else if (state === "live" && current) {
    const changes = diff(current, row, MEMBERSHIP_FIELDS)
    if (!isEmpty(changes)) {
      notifications = [{
        audiences,
        payload: { name: "membership.updated", membership: view, changes, previousRole: current.role, role: row.role }
      }]
    }
  }
  return applied({ ...placeholders, memberships: [row], notifications })
}

/** Metadata equality as the planner sees it (for adapters comparing rows). @category predicates */
export const sameMetadata = (a: Metadata, b: Metadata): boolean => sameJson(a, b)
