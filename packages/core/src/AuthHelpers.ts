/**
 * Auth helpers: who is asking, in which organization, with which role — answered from the synced
 * tables, not from another call to Clerk.
 *
 * They take the Clerk ids from the app's own verified Clerk session (e.g. `auth()` in Next.js gives
 * `{ userId, orgId }`) and fail with typed errors an app can map to responses: {@link NotSignedIn}
 * (401), {@link NotSyncedYet} (the webhook has not arrived yet: retry shortly), {@link NotAMember}
 * (403) and {@link Forbidden} (403). Every organization-scoped answer is filtered by organization.
 *
 * @example
 * import { Effect } from "effect"
 * import { AuthHelpers } from "@clerk-sync/core"
 * const ctx = yield* AuthHelpers.requireAuthContext({ userId, orgId }, { role: "org:admin" })
 *
 * @since 0.1.0
 */
import { Data, Effect, Option } from "effect"
import { isLive, type MembershipRow, type OrganizationRow, type UserRow } from "./Domain.ts"
import * as Role from "./Role.ts"
import { type OrganizationMembership, type StorageUnavailable, SyncStore } from "./SyncStore.ts"

/** No signed-in user in the session. @category errors */
export class NotSignedIn extends Data.TaggedError("NotSignedIn")<{}> {
  override get message() {
    return "not signed in"
  }
}

/**
 * The session names a user or organization the store does not hold (yet): its webhook has not
 * arrived, or it was deleted (`deleted: true`).
 *
 * @category errors
 */
export class NotSyncedYet extends Data.TaggedError("NotSyncedYet")<{
  readonly entity: "user" | "organization"
  readonly clerkId: string
  readonly deleted: boolean
}> {
  override get message() {
    return this.deleted ? `${this.entity} ${this.clerkId} was deleted` : `${this.entity} ${this.clerkId} is not synced yet`
  }
}

/** The user has no live membership in the organization (or no organization is active). @category errors */
export class NotAMember extends Data.TaggedError("NotAMember")<{
  readonly clerkUserId: string
  readonly clerkOrgId: string | null
}> {
  override get message() {
    return this.clerkOrgId === null ? "no active organization" : `user is not a member of ${this.clerkOrgId}`
  }
}

/** The membership lacks the required role or permission. @category errors */
export class Forbidden extends Data.TaggedError("Forbidden")<{
  readonly required: Requirement
}> {
  override get message() {
    return "forbidden: missing role or permission"
  }
}

/** The Clerk ids of the session (`auth()`'s `userId` and `orgId`). @category models */
export interface SessionIds {
  readonly userId?: string | null | undefined
  readonly orgId?: string | null | undefined
}

/** What `requireAuthContext` demands: any of the roles, and all of the permissions. @category models */
export interface Requirement {
  readonly role?: Role.Role | ReadonlyArray<Role.Role>
  readonly permission?: string | ReadonlyArray<string>
}

/** The user's organization and role in it. @category models */
export interface CurrentOrganization {
  readonly organization: OrganizationRow
  readonly membership: MembershipRow
  readonly role: Role.Role
  readonly permissions: ReadonlyArray<string>
}

/** @category models */
export interface AuthContext {
  readonly user: UserRow
  /** The active organization, when the session has one. */
  readonly organization: CurrentOrganization | null
}

const liveOrMissing = <A extends { readonly deletedAt: number | null }>(
  found: Option.Option<A>,
  entity: "user" | "organization",
  clerkId: string
): Effect.Effect<A, NotSyncedYet> =>
  Option.match(found, {
    onNone: () => Effect.fail(new NotSyncedYet({ entity, clerkId, deleted: false })),
    onSome: (row) => (isLive(row) ? Effect.succeed(row) : Effect.fail(new NotSyncedYet({ entity, clerkId, deleted: true })))
  })

/**
 * The signed-in user's row.
 *
 * @category helpers
 */
export const getCurrentUser = Effect.fn("AuthHelpers.getCurrentUser")(function*(
  session: SessionIds
): Effect.fn.Return<UserRow, NotSignedIn | NotSyncedYet | StorageUnavailable, SyncStore> {
  if (!session.userId) return yield* new NotSignedIn()
  const store = yield* SyncStore
  return yield* liveOrMissing(yield* store.findUser(session.userId), "user", session.userId)
})

/**
 * The session's active organization with the user's role in it.
 *
 * @category helpers
 */
export const getCurrentOrganization = Effect.fn("AuthHelpers.getCurrentOrganization")(function*(
  session: SessionIds
): Effect.fn.Return<CurrentOrganization, NotSignedIn | NotSyncedYet | NotAMember | StorageUnavailable, SyncStore> {
  if (!session.userId) return yield* new NotSignedIn()
  if (!session.orgId) return yield* new NotAMember({ clerkUserId: session.userId, clerkOrgId: null })
  const store = yield* SyncStore
  const organization = yield* liveOrMissing(yield* store.findOrganization(session.orgId), "organization", session.orgId)
  const membership = yield* store.findMembership(session.userId, session.orgId)
  if (Option.isNone(membership)) return yield* new NotAMember({ clerkUserId: session.userId, clerkOrgId: session.orgId })
  return {
    organization,
    membership: membership.value,
    role: membership.value.role,
    permissions: membership.value.permissions
  }
})

/**
 * The user and, when the session has an active organization, that organization and role.
 *
 * @category helpers
 */
export const getAuthContext = Effect.fn("AuthHelpers.getAuthContext")(function*(
  session: SessionIds
): Effect.fn.Return<AuthContext, NotSignedIn | NotSyncedYet | NotAMember | StorageUnavailable, SyncStore> {
  const user = yield* getCurrentUser(session)
  const organization = session.orgId ? yield* getCurrentOrganization(session) : null
  return { user, organization }
})

/** Whether a membership satisfies a requirement. @category predicates */
export const satisfies = (grants: Role.Grants, required: Requirement): boolean => {
  if (required.role !== undefined && !Role.hasRole(grants, required.role)) return false
  if (required.permission !== undefined) {
    const all = typeof required.permission === "string" ? [required.permission] : required.permission
    if (!all.every((p) => Role.hasPermission(grants, p))) return false
  }
  return true
}

/**
 * Like {@link getAuthContext}, but demands an active organization, and a role or permissions in it.
 *
 * @category helpers
 */
export const requireAuthContext = Effect.fn("AuthHelpers.requireAuthContext")(function*(
  session: SessionIds,
  required: Requirement = {}
): Effect.fn.Return<
  { readonly user: UserRow; readonly organization: CurrentOrganization },
  NotSignedIn | NotSyncedYet | NotAMember | Forbidden | StorageUnavailable,
  SyncStore
> {
  const user = yield* getCurrentUser(session)
  const organization = yield* getCurrentOrganization(session)
  if (!satisfies(organization.membership, required)) return yield* new Forbidden({ required })
  return { user, organization }
})

/**
 * The user's live organizations with their role in each.
 *
 * @category helpers
 */
export const getUserOrganizations = Effect.fn("AuthHelpers.getUserOrganizations")(function*(
  session: SessionIds
): Effect.fn.Return<ReadonlyArray<OrganizationMembership>, NotSignedIn | NotSyncedYet | StorageUnavailable, SyncStore> {
  const user = yield* getCurrentUser(session)
  return yield* (yield* SyncStore).listUserOrganizations(user.clerkUserId)
})
