/**
 * An in-memory {@link SyncStore}: the reference implementation of the port.
 *
 * Use it in your own tests, or to try clerk-sync without a database. Every `ingest` is atomic: the
 * plan is computed against the current state and applied whole, or (when planning throws) not at all.
 *
 * @example
 * import { Effect } from "effect"
 * import { Ingest, MemoryStore } from "@clerk-sync/core"
 * await Effect.runPromise(Ingest.ingest({ svixId: "msg_1", body }).pipe(Effect.provide(MemoryStore.layer)))
 *
 * @since 0.1.0
 */
import { Clock, Effect, Layer, Option } from "effect"
import { isLive, type MembershipRow, type OrganizationRow, type UserRow } from "./Domain.ts"
import type { Stored } from "./Notification.ts"
import type { Plan, Scope, Snapshot } from "./Plan.ts"
import {
  type Counts,
  type InboxEntry,
  type InboxStatus,
  type IngestOutcome,
  StorageUnavailable,
  SyncStore,
  type SyncStoreShape
} from "./SyncStore.ts"

const pairKey = (clerkUserId: string, clerkOrgId: string): string => `${clerkUserId}\u0000${clerkOrgId}`

const newestFirst = <A extends { readonly version: string }>(rows: Iterable<A>, limit: number): ReadonlyArray<A> =>
  [...rows].sort((a, b) => (a.version.slice(2) < b.version.slice(2) ? 1 : -1)).slice(0, limit)

/**
 * Makes a fresh in-memory store.
 *
 * @category constructors
 */
export const make: Effect.Effect<SyncStoreShape> = Effect.sync(() => {
  const users = new Map<string, UserRow>()
  const organizations = new Map<string, OrganizationRow>()
  const memberships = new Map<string, MembershipRow>()
  const inbox = new Map<string, InboxEntry>()
  const checkpoints = new Map<string, string>()
  const outbox: Array<Stored & { published: boolean }> = []
  let nextSeq = 1

  const read = (scope: Scope): Snapshot => {
    const found = new Map<string, MembershipRow>()
    for (const [u, o] of scope.membershipPairs) {
      const m = memberships.get(pairKey(u, o))
      if (m) found.set(m.id, m)
    }
    if (scope.membershipsOfUsers.length + scope.membershipsOfOrganizations.length > 0) {
      for (const m of memberships.values()) {
        if (scope.membershipsOfUsers.includes(m.clerkUserId) || scope.membershipsOfOrganizations.includes(m.clerkOrgId)) {
          found.set(m.id, m)
        }
      }
    }
    const snapUsers = new Map<string, UserRow>()
    const snapOrgs = new Map<string, OrganizationRow>()
    const addUser = (id: string) => {
      const row = users.get(id)
      if (row) snapUsers.set(id, row)
    }
    const addOrg = (id: string) => {
      const row = organizations.get(id)
      if (row) snapOrgs.set(id, row)
    }
    scope.users.forEach(addUser)
    scope.organizations.forEach(addOrg)
    for (const m of found.values()) {
      addUser(m.clerkUserId)
      addOrg(m.clerkOrgId)
    }
    return { users: snapUsers, organizations: snapOrgs, memberships: [...found.values()] }
  }

  const write = (plan: Plan, now: number): number => {
    for (const u of plan.users) users.set(u.clerkUserId, u)
    for (const o of plan.organizations) organizations.set(o.clerkOrgId, o)
    for (const m of plan.memberships) memberships.set(pairKey(m.clerkUserId, m.clerkOrgId), m)
    for (const n of plan.notifications) outbox.push({ ...n, seq: nextSeq++, createdAt: now, published: false })
    return plan.notifications.length
  }

  const store: SyncStoreShape = {
    ingest: (request, options) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.suspend((): Effect.Effect<IngestOutcome, StorageUnavailable> => {
          const existing = inbox.get(request.inbox.svixId)
          const rerun = existing !== undefined && options?.reprocess === true &&
            (existing.status === "failed" || existing.status === "received")
          if (existing && !rerun) return Effect.succeed({ _tag: "Duplicate" })
          const attempts = (existing?.attempts ?? 0) + 1
          const record = (status: InboxStatus, error: string | null) =>
            inbox.set(request.inbox.svixId, { ...request.inbox, status, attempts, error, processedAt: now })
          switch (request._tag) {
            case "Ignore":
              record("ignored", null)
              return Effect.succeed({ _tag: "Ignored" })
            case "Fail":
              record("failed", request.error)
              return Effect.succeed({ _tag: "Failed", error: request.error })
            case "Apply": {
              let plan: Plan
              try {
                plan = request.plan(read(request.scope))
              } catch (cause) {
                return Effect.fail(new StorageUnavailable({ operation: "ingest", cause }))
              }
              const notifications = write(plan, now)
              record("processed", null)
              return Effect.succeed({ _tag: "Processed", applied: plan.outcome === "applied", notifications })
            }
          }
        })),

    findUser: (id) => Effect.sync(() => Option.fromNullishOr(users.get(id))),
    findOrganization: (id) => Effect.sync(() => Option.fromNullishOr(organizations.get(id))),
    findMembership: (u, o) =>
      Effect.sync(() => Option.filter(Option.fromNullishOr(memberships.get(pairKey(u, o))), isLive)),
    listUserOrganizations: (clerkUserId) =>
      Effect.sync(() =>
        [...memberships.values()]
          .filter((m) => m.clerkUserId === clerkUserId && isLive(m))
          .flatMap((membership) => {
            const organization = organizations.get(membership.clerkOrgId)
            return organization && isLive(organization) ? [{ organization, membership }] : []
          })
          // Code-unit order, as Postgres `COLLATE "C"` sorts: the same in every store and locale.
          .sort((a, b) => (a.organization.name < b.organization.name ? -1 : a.organization.name > b.organization.name ? 1 : 0))
      ),
    listUsers: (limit) => Effect.sync(() => newestFirst(users.values(), limit)),
    listOrganizations: (limit) => Effect.sync(() => newestFirst(organizations.values(), limit)),
    listMemberships: (limit) => Effect.sync(() => newestFirst(memberships.values(), limit)),

    listOrganizationMembers: (clerkOrgId) =>
      Effect.sync(() =>
        [...memberships.values()].filter((m) => m.clerkOrgId === clerkOrgId && isLive(m) && isLive(users.get(m.clerkUserId)))
      ),
    listClerkIds: (entity, after, limit) =>
      Effect.sync(() => {
        const rows: Iterable<UserRow | OrganizationRow> = entity === "user" ? users.values() : organizations.values()
        return [...rows]
          .filter((r) => isLive(r))
          .map((r) => ("clerkUserId" in r ? r.clerkUserId : r.clerkOrgId))
          .filter((id) => after === null || id > after)
          .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
          .slice(0, limit)
      }),
    getCheckpoint: (name) => Effect.sync(() => Option.fromNullishOr(checkpoints.get(name))),
    setCheckpoint: (name, value) => Effect.sync(() => void checkpoints.set(name, value)),

    listInbox: (query) =>
      Effect.sync(() => {
        const statuses = query.status === undefined ? undefined : typeof query.status === "string" ? [query.status] : query.status
        return [...inbox.values()]
          .filter((e) => statuses === undefined || statuses.includes(e.status))
          .reverse()
          .slice(0, query.limit)
      }),
    listReprocessable: (receivedBefore, limit) =>
      Effect.sync(() =>
        [...inbox.values()]
          .filter((e) => e.status === "failed" || (e.status === "received" && e.receivedAt < receivedBefore))
          .sort((a, b) => a.receivedAt - b.receivedAt)
          .slice(0, limit)
      ),
    counts: Effect.sync((): Counts => {
      const byStatus: Record<InboxStatus, number> = { received: 0, processed: 0, ignored: 0, failed: 0 }
      for (const e of inbox.values()) byStatus[e.status]++
      return {
        users: [...users.values()].filter(isLive).length,
        organizations: [...organizations.values()].filter(isLive).length,
        memberships: [...memberships.values()].filter(isLive).length,
        inbox: byStatus,
        outboxPending: outbox.filter((n) => !n.published).length
      }
    }),

    readOutbox: (afterSeq, audiences, limit) =>
      Effect.sync(() =>
        outbox
          .filter((n) => n.seq > afterSeq && n.audiences.some((a) => audiences.includes(a)))
          .slice(0, limit)
          .map(({ published: _, ...n }) => n)
      ),
    outboxFloor: Effect.sync(() => outbox[0]?.seq ?? nextSeq),
    claimUnpublished: (limit) =>
      Effect.sync(() => outbox.filter((n) => !n.published).slice(0, limit).map(({ published: _, ...n }) => n)),
    markPublished: (seqs) =>
      Effect.sync(() => {
        const set = new Set(seqs)
        for (const n of outbox) if (set.has(n.seq)) n.published = true
      }),

    prune: (policy) =>
      Effect.sync(() => {
        let inboxPruned = 0
        for (const [id, e] of inbox) {
          if ((e.status === "processed" || e.status === "ignored") && e.receivedAt < policy.inboxBefore) {
            inbox.delete(id)
            inboxPruned++
          }
        }
        const before = outbox.length
        const kept = outbox.filter((n) => !(n.published && n.createdAt < policy.outboxBefore))
        outbox.splice(0, outbox.length, ...kept)
        return { inbox: inboxPruned, outbox: before - kept.length }
      })
  }
  return store
})

/** A layer with a fresh in-memory store. @category layers */
export const layer: Layer.Layer<SyncStore> = Layer.effect(SyncStore, make)
