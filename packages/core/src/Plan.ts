/**
 * The planner's vocabulary: what an event needs to read ({@link Scope}), what the store gives it
 * ({@link Snapshot}) and what it asks the store to write ({@link Plan}).
 *
 * A store implements one transaction: lock and read the scope, call the pure planner, write the
 * plan. Everything that decides anything lives in the planner, so every store behaves the same.
 *
 * @since 0.1.0
 */
import type { MembershipRow, OrganizationRow, UserRow } from "./Domain.ts"
import type { Notification } from "./Notification.ts"

/**
 * The rows an event touches, by Clerk id. `membershipsOfUsers` / `membershipsOfOrganizations` ask
 * for every membership row (live or ended) of those users / organizations, and `membershipPairs`
 * for the row of one (user, organization) pair.
 *
 * @category models
 */
export interface Scope {
  readonly users: ReadonlyArray<string>
  readonly organizations: ReadonlyArray<string>
  readonly membershipPairs: ReadonlyArray<readonly [clerkUserId: string, clerkOrgId: string]>
  readonly membershipsOfUsers: ReadonlyArray<string>
  readonly membershipsOfOrganizations: ReadonlyArray<string>
}

/**
 * The current rows of a {@link Scope}. Contract: for every membership returned, its user and its
 * organization are in `users` / `organizations` too (a store joins them).
 *
 * @category models
 */
export interface Snapshot {
  readonly users: ReadonlyMap<string, UserRow>
  readonly organizations: ReadonlyMap<string, OrganizationRow>
  readonly memberships: ReadonlyArray<MembershipRow>
}

/**
 * What to write. Rows are whole rows to upsert: users by `clerkUserId`, organizations by
 * `clerkOrgId`, memberships by (`userId`, `organizationId`). Rows are listed parents first, so a
 * store can write them in order.
 *
 * @category models
 */
export interface Plan {
  /** `applied`: something is written; `stale`: nothing (older than the state held, or a duplicate). */
  readonly outcome: "applied" | "stale"
  readonly users: ReadonlyArray<UserRow>
  readonly organizations: ReadonlyArray<OrganizationRow>
  readonly memberships: ReadonlyArray<MembershipRow>
  readonly notifications: ReadonlyArray<Notification>
}

/** @category constructors */
export const emptyScope: Scope = {
  users: [],
  organizations: [],
  membershipPairs: [],
  membershipsOfUsers: [],
  membershipsOfOrganizations: []
}

/** @category constructors */
export const emptySnapshot: Snapshot = { users: new Map(), organizations: new Map(), memberships: [] }

/** A plan that writes nothing. @category constructors */
export const stale: Plan = { outcome: "stale", users: [], organizations: [], memberships: [], notifications: [] }

/** The membership of a pair in a snapshot. @category accessors */
export const membershipOf = (snapshot: Snapshot, clerkUserId: string, clerkOrgId: string): MembershipRow | undefined =>
  snapshot.memberships.find((m) => m.clerkUserId === clerkUserId && m.clerkOrgId === clerkOrgId)
