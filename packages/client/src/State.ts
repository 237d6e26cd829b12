/**
 * The signed-in user's organizations, memberships and roles, kept current from the notifications:
 * the state behind `useClerkSync`, usable without React (`createSyncState(client)`).
 *
 * While the client catches up, changes are gathered and applied at once when it is live (from the
 * server's snapshot), so a screen never flickers through old roles; role changes are reported as
 * net changes.
 *
 * @since 0.1.0
 */
import type { ClerkSyncClient, ClerkSyncError, Status } from "./Client.ts"
import type { Membership, Metadata, Notification, OrganizationSummary, PrivateUser, Snapshot } from "./Protocol.ts"

/** One organization of the signed-in user. @category models */
export interface UserOrganization {
  readonly organization: OrganizationSummary & { readonly publicMetadata?: Metadata }
  readonly membership: Membership
  /** The user's role in it (`org:admin`, `org:member`, …). */
  readonly role: string
}

/** A role gained, changed or lost. @category models */
export interface RoleChange {
  readonly organizationId: string
  readonly organizationName: string
  /** Null: the user just joined. */
  readonly previousRole: string | null
  /** Null: the user left (or the organization was deleted). */
  readonly role: string | null
}

/** @category models */
export interface SyncStateValue {
  readonly status: Status
  readonly error: ClerkSyncError | null
  readonly user: PrivateUser | null
  /** By organization name. */
  readonly organizations: ReadonlyArray<UserOrganization>
  readonly memberships: ReadonlyArray<Membership>
  readonly lastNotification: Notification | null
  readonly lastSeq: number | null
}

type Orgs = ReadonlyMap<string, UserOrganization>

const sorted = (orgs: Orgs): ReadonlyArray<UserOrganization> =>
  [...orgs.values()].sort((a, b) => a.organization.name.localeCompare(b.organization.name))

/** Applies one notification to the user's organizations. Pure. @category reducers */
export const reduce = (
  state: { readonly user: PrivateUser | null; readonly organizations: Orgs },
  n: Notification,
  clerkUserId: string | null
): { readonly user: PrivateUser | null; readonly organizations: Orgs } => {
  const orgs = new Map(state.organizations)
  let user = state.user
  switch (n.name) {
    case "user.created":
    case "user.updated":
      if (n.user.clerkUserId === clerkUserId) user = n.user
      break
    case "user.deleted":
      if (n.user.clerkUserId === clerkUserId) {
        user = n.user
        orgs.clear()
      }
      break
    case "membership.created":
    case "membership.updated":
      if (n.membership.user.clerkUserId === clerkUserId) {
        const id = n.membership.organization.clerkOrgId
        const known = orgs.get(id)?.organization
        orgs.set(id, {
          organization: { ...known, ...n.membership.organization },
          membership: n.membership,
          role: n.membership.role
        })
      }
      break
    case "membership.deleted":
      if (n.membership.user.clerkUserId === clerkUserId) orgs.delete(n.membership.organization.clerkOrgId)
      break
    case "organization.updated": {
      const known = orgs.get(n.organization.clerkOrgId)
      if (known) {
        const { deleted: _, ...organization } = n.organization
        orgs.set(n.organization.clerkOrgId, { ...known, organization })
      }
      break
    }
    case "organization.deleted":
      orgs.delete(n.organization.clerkOrgId)
      break
    case "organization.created":
      break
  }
  return { user, organizations: orgs }
}

/** The state a snapshot describes. @category constructors */
export const fromSnapshot = (snapshot: Snapshot): { readonly user: PrivateUser | null; readonly organizations: Orgs } => {
  const orgs = new Map<string, UserOrganization>()
  for (const o of snapshot.organizations) {
    const { deleted: _, ...organization } = o.organization
    orgs.set(o.organization.clerkOrgId, { organization, membership: o.membership, role: o.membership.role })
  }
  return { user: snapshot.user, organizations: orgs }
}

/** Net role changes from one state to another. @category utils */
export const roleChanges = (before: Orgs, after: Orgs): ReadonlyArray<RoleChange> => {
  const changes: Array<RoleChange> = []
  for (const [id, b] of before) {
    const a = after.get(id)
    if (!a) changes.push({ organizationId: id, organizationName: b.organization.name, previousRole: b.role, role: null })
    else if (a.role !== b.role) changes.push({ organizationId: id, organizationName: a.organization.name, previousRole: b.role, role: a.role })
  }
  for (const [id, a] of after) {
    if (!before.has(id)) changes.push({ organizationId: id, organizationName: a.organization.name, previousRole: null, role: a.role })
  }
  return changes
}

/** @category models */
export interface SyncState {
  /** The current value (a new object after each change: fit for `useSyncExternalStore`). */
  readonly get: () => SyncStateValue
  readonly subscribe: (listener: () => void) => () => void
  readonly onRoleChange: (listener: (change: RoleChange) => void) => () => void
  /** The role in an organization, or null when not a member. */
  readonly roleIn: (clerkOrgId: string) => string | null
  readonly dispose: () => void
}

/**
 * Follows a client: the user's organizations, memberships and roles.
 *
 * @example
 * const state = createSyncState(client)
 * state.onRoleChange((c) => refreshPermissions(c.organizationId))
 * state.subscribe(() => render(state.get().organizations))
 *
 * @category constructors
 */
export const createSyncState = (client: ClerkSyncClient): SyncState => {
  let base: { user: PrivateUser | null; organizations: Orgs } = { user: null, organizations: new Map() }
  let catchingUp = client.status !== "live"
  let value: SyncStateValue = {
    status: client.status,
    error: client.error,
    user: null,
    organizations: [],
    memberships: [],
    lastNotification: null,
    lastSeq: client.lastSeq
  }
  const listeners = new Set<() => void>()
  const roleListeners = new Set<(c: RoleChange) => void>()
  const emit = (next: Partial<SyncStateValue>) => {
    value = { ...value, ...next }
    for (const l of [...listeners]) l()
  }
  const commit = (next: typeof base, extra: Partial<SyncStateValue> = {}) => {
    const changes = roleChanges(base.organizations, next.organizations)
    base = next
    const organizations = sorted(next.organizations)
    emit({ ...extra, user: next.user, organizations, memberships: organizations.map((o) => o.membership), lastSeq: client.lastSeq })
    for (const c of changes) for (const l of [...roleListeners]) l(c)
  }
  const self = () => (client.identity?.kind === "user" ? client.identity.userId : null)

  const offs = [
    client.onStatus((status, error) => {
      if (status !== "live") catchingUp = true
      emit({ status, error })
    }),
    client.onReady((ready) => {
      catchingUp = false
      if (ready.snapshot) commit(fromSnapshot(ready.snapshot))
    }),
    client.onAny((n) => {
      // While catching up, the snapshot at the end says where things stand: no flicker.
      if (catchingUp) return emit({ lastNotification: n, lastSeq: client.lastSeq })
      commit(reduce(base, n, self()), { lastNotification: n })
    })
  ]
  if (client.snapshot) commit(fromSnapshot(client.snapshot))

  return {
    get: () => value,
    subscribe: (l) => {
      listeners.add(l)
      return () => void listeners.delete(l)
    },
    onRoleChange: (l) => {
      roleListeners.add(l)
      return () => void roleListeners.delete(l)
    },
    roleIn: (id) => base.organizations.get(id)?.role ?? null,
    dispose: () => {
      for (const off of offs) off()
      listeners.clear()
      roleListeners.clear()
    }
  }
}
