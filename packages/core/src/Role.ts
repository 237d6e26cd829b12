/**
 * Organization roles and permissions as Clerk sends them.
 *
 * Clerk roles are `org:admin`, `org:member` and custom `org:<key>`. Older instances send
 * `admin`, `basic_member` and `guest_member`; they are normalized to the `org:` form so the rest
 * of clerk-sync, and the app, only ever sees one spelling.
 *
 * @since 0.1.0
 */

/** @category models */
export type Role = string

/** @category constants */
export const ADMIN: Role = "org:admin"
/** @category constants */
export const MEMBER: Role = "org:member"

const LEGACY: Readonly<Record<string, Role>> = {
  admin: ADMIN,
  basic_member: MEMBER,
  member: MEMBER,
  guest_member: "org:guest_member"
}

/**
 * Normalizes a role to Clerk's `org:` form.
 *
 * @example
 * import { Role } from "@clerk-sync/core"
 * Role.normalize("basic_member") // "org:member"
 * Role.normalize("org:billing")  // "org:billing"
 *
 * @category conversions
 */
export const normalize = (role: string): Role => {
  const trimmed = role.trim()
  if (trimmed.startsWith("org:")) return trimmed
  return LEGACY[trimmed] ?? `org:${trimmed}`
}

/**
 * The system permissions Clerk grants the default roles, used when a (legacy) payload carries a
 * role but no permission list.
 *
 * @category constants
 */
export const SYSTEM_PERMISSIONS: Readonly<Record<string, ReadonlyArray<string>>> = {
  [ADMIN]: [
    "org:sys_profile:manage",
    "org:sys_profile:delete",
    "org:sys_memberships:read",
    "org:sys_memberships:manage",
    "org:sys_domains:read",
    "org:sys_domains:manage"
  ],
  [MEMBER]: ["org:sys_memberships:read"]
}

/** The permissions of a membership: as sent, or the system defaults of its role. @category conversions */
export const permissionsOf = (role: Role, sent: ReadonlyArray<string> | null | undefined): ReadonlyArray<string> =>
  sent ?? SYSTEM_PERMISSIONS[normalize(role)] ?? []

/** Something that holds a role and permissions (a membership). @category models */
export interface Grants {
  readonly role: Role
  readonly permissions: ReadonlyArray<string>
}

/**
 * Whether the membership has one of the roles (legacy names accepted).
 *
 * @category predicates
 */
export const hasRole = (grants: Grants, role: Role | ReadonlyArray<Role>): boolean => {
  const wanted = typeof role === "string" ? [role] : role
  const mine = normalize(grants.role)
  return wanted.some((r) => normalize(r) === mine)
}

/**
 * Whether the membership holds the permission. Admins hold every system (`org:sys_*`) permission,
 * as in Clerk.
 *
 * @category predicates
 */
export const hasPermission = (grants: Grants, permission: string | ReadonlyArray<string>): boolean => {
  const wanted = typeof permission === "string" ? [permission] : permission
  return wanted.some((p) =>
    grants.permissions.includes(p) || (normalize(grants.role) === ADMIN && p.startsWith("org:sys_"))
  )
}

/** Whether the membership is an organization admin. @category predicates */
export const isAdmin = (grants: Grants): boolean => normalize(grants.role) === ADMIN

/** A role change, when the role differs. @category models */
export interface RoleChange {
  readonly previousRole: Role
  readonly role: Role
}

/** The role change between two states, if any. @category predicates */
export const change = (previous: Role | null | undefined, next: Role): RoleChange | undefined =>
  previous != null && normalize(previous) !== normalize(next)
    ? { previousRole: normalize(previous), role: normalize(next) }
    : undefined
