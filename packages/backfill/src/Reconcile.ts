/**
 * Reconcile: find what is live locally but no longer exists in Clerk (deleted while webhooks were
 * not arriving) and end it by the same rules as a `*.deleted` webhook.
 *
 * - **Users / organizations.** Local live ids are walked in keyset pages
 *   (`SyncStore.listClerkIds`), 100 at a time, and Clerk is asked which of them exist
 *   (`GET /users?user_id=…`, `GET /organizations?organization_id=…`). An id missing from the answer
 *   is confirmed by `GET /users/{id}` (404) before it counts: a tombstone is forever, so one list
 *   lagging behind must not cause one.
 * - **Memberships.** For each live organization with local members, Clerk's member list
 *   (`GET /organizations/{id}/memberships`, all pages, walked like backfill's lists) is compared
 *   with `SyncStore.listOrganizationMembers`; a local member Clerk does not list is ended.
 * - **Same rules.** Each finding becomes a synthetic `user.deleted`, `organization.deleted` or
 *   `organizationMembership.deleted` delivery ({@link Deliveries}) through `Ingest`, stamped with the
 *   time Clerk was asked: a re-join after that outranks it, a later real deletion webhook replaces
 *   it with the true deletion time. Deleting a user or organization ends its memberships.
 * - **Grace.** Rows whose version is younger than `graceMs` (default 5 minutes) before the check are
 *   left alone: they may be newer than what Clerk's lists show yet.
 * - **Dry run by default.** `dryRun: true` (the default) reports without writing; pass
 *   `dryRun: false` to write. A second run after an applied one finds nothing.
 *
 * Memory stays bounded: one page of ids, one organization's members, and at most `sampleLimit` ids
 * per entity in the report (counts are exact).
 *
 * @example
 * import { Effect } from "effect"
 * import { Reconcile } from "@clerk-sync/backfill"
 * const report = Effect.gen(function*() {
 *   const dry = yield* Reconcile.run()                   // requires SyncStore and ClerkApi
 *   return dry.users // { checked: 2000, missing: 3, changed: 0, skippedRecent: 0, sample: ["user_…", …] }
 * })
 *
 * @since 0.1.0
 */
import { Clock, Data, Effect, Option, Ref } from "effect"
import { Domain, SyncStore, Version } from "@clerk-sync/core"
import { type ApiObject, ClerkApi, type ClerkApiError, MAX_IDS_PER_FILTER, MAX_PAGE_SIZE } from "./ClerkApi.ts"
import * as Deliveries from "./Deliveries.ts"
import * as Walk from "./internal/Walk.ts"

/** @category models */
export interface Options {
  /** Report without writing (default true). */
  readonly dryRun?: boolean
  /** The entities to check (default all three). */
  readonly only?: ReadonlyArray<Deliveries.Entity>
  /** Rows changed less than this long (ms) before the check are skipped (default 300,000). */
  readonly graceMs?: number
  /** Ids per Clerk request (default and maximum 100). */
  readonly batchSize?: number
  /** Ids listed in the report per entity (default 50). */
  readonly sampleLimit?: number
  /** Write client notifications for the changes (default true). */
  readonly notify?: boolean
}

/** @category models */
export interface EntityReport {
  /** Live local rows compared with Clerk. */
  readonly checked: number
  /** Live locally, absent from Clerk. */
  readonly missing: number
  /** Rows ended by this run (0 in a dry run). */
  readonly changed: number
  /** Missing from Clerk's answer but changed within the grace period: left alone. */
  readonly skippedRecent: number
  readonly sample: ReadonlyArray<string>
}

/** @category models */
export interface MembershipReport extends EntityReport {
  /** Organizations whose member lists were compared. */
  readonly organizations: number
}

/** @category models */
export interface Report {
  readonly dryRun: boolean
  readonly users: EntityReport
  readonly organizations: EntityReport
  readonly memberships: MembershipReport
  readonly requests: number
  readonly durationMs: number
}

/** Clerk listed a membership without `public_user_data.user_id`; its organization is skipped. */
class Unverifiable extends Data.TaggedError("Unverifiable")<{}> {}
class OrganizationGone extends Data.TaggedError("OrganizationGone")<{}> {}

interface Tally {
  checked: number
  missing: number
  changed: number
  skippedRecent: number
  organizations: number
  readonly sample: Array<string>
}

const tally = (): Tally => ({ checked: 0, missing: 0, changed: 0, skippedRecent: 0, organizations: 0, sample: [] })

const userIdOf = (o: ApiObject): string | null => {
  const data = o.json.public_user_data
  return typeof data === "object" && data !== null && "user_id" in data && typeof data.user_id === "string" ? data.user_id : null
}

/**
 * Runs a reconcile.
 *
 * @category programs
 */
export const run = Effect.fn("Reconcile.run")(function*(
  options: Options = {}
): Effect.fn.Return<Report, ClerkApiError | SyncStore.StorageUnavailable, ClerkApi | SyncStore.SyncStore> {
  const api = yield* ClerkApi
  const store = yield* SyncStore.SyncStore
  const dryRun = options.dryRun ?? true
  const only = options.only
  const wants = (e: Deliveries.Entity) => only === undefined || only.includes(e)
  const graceMs = Math.max(0, options.graceMs ?? 300_000)
  const batchSize = Math.max(1, Math.min(MAX_IDS_PER_FILTER, Math.floor(options.batchSize ?? MAX_IDS_PER_FILTER)))
  const sampleLimit = Math.max(0, Math.floor(options.sampleLimit ?? 50))
  const ingestOptions: Deliveries.IngestOptions = options.notify === false ? { notify: false } : {}
  const startedAt = yield* Clock.currentTimeMillis
  const requestsAtStart = (yield* api.stats).requests

  // Ids found missing in this run: in a dry run nothing is tombstoned, so their memberships would
  // be reported a second time; they end with their user or organization instead.
  const missingIds = yield* Ref.make(new Set<string>())

  const isRecent = (version: Version.Version, checkedAt: number) => Version.atOf(version) > checkedAt - graceMs

  const entityPass = (entity: "user" | "organization") =>
    Effect.gen(function*() {
      const t = tally()
      let after: string | null = null
      for (;;) {
        const ids: ReadonlyArray<string> = yield* store.listClerkIds(entity, after, batchSize)
        if (ids.length === 0) break
        after = ids[ids.length - 1]!
        t.checked += ids.length
        const checkedAt = yield* Clock.currentTimeMillis
        const present = new Set((yield* api.listByIds(entity, ids)).map((o) => o.id))
        for (const id of ids) {
          if (present.has(id)) continue
          const row: Option.Option<{ readonly version: string; readonly deletedAt: number | null }> = entity === "user"
            ? yield* store.findUser(id)
            : yield* store.findOrganization(id)
          if (Option.isNone(row) || !Domain.isLive(row.value)) continue
          if (isRecent(row.value.version, checkedAt)) {
            t.skippedRecent++
            continue
          }
          if (Option.isSome(yield* api.get(entity, id))) continue
          t.missing++
          if (t.sample.length < sampleLimit) t.sample.push(id)
          yield* Ref.update(missingIds, (s) => s.add(id))
          if (!dryRun) {
            const delivery = entity === "user" ? Deliveries.userDeleted(id, checkedAt) : Deliveries.organizationDeleted(id, checkedAt)
            const result = yield* Deliveries.ingest(delivery, ingestOptions)
            if (result.applied) t.changed++
          }
        }
      }
      return t
    })

  /** The user ids Clerk lists as members of an organization (all pages, walked like backfill's lists). */
  const remoteMembers = (clerkOrgId: string) =>
    Effect.gen(function*() {
      const members = new Set<string>()
      let cursor = Walk.initial
      for (;;) {
        const step = yield* Walk.readStep(
          (start) =>
            Effect.flatMap(api.listOrganizationMemberships(clerkOrgId, { offset: start, limit: MAX_PAGE_SIZE }), (page) =>
              Option.isSome(page) ? Effect.succeed(page.value) : Effect.fail(new OrganizationGone())),
          cursor,
          10,
          MAX_PAGE_SIZE
        )
        for (const m of step.fresh) {
          const userId = userIdOf(m)
          if (userId === null) return yield* new Unverifiable()
          members.add(userId)
        }
        if (step.done) return members
        cursor = step.next
      }
    })

  const membershipPass = Effect.gen(function*() {
    const t = tally()
    let after: string | null = null
    for (;;) {
      const orgIds: ReadonlyArray<string> = yield* store.listClerkIds("organization", after, batchSize)
      if (orgIds.length === 0) break
      after = orgIds[orgIds.length - 1]!
      for (const clerkOrgId of orgIds) {
        if ((yield* Ref.get(missingIds)).has(clerkOrgId)) continue
        const local = yield* store.listOrganizationMembers(clerkOrgId)
        if (local.length === 0) continue
        const checkedAt = yield* Clock.currentTimeMillis
        const remote = yield* remoteMembers(clerkOrgId).pipe(
          Effect.map(Option.some),
          Effect.catchTag("OrganizationGone", () => Effect.succeed(Option.none<Set<string>>())),
          Effect.catchTag("Unverifiable", () => Effect.succeed(Option.none<Set<string>>()))
        )
        if (Option.isNone(remote)) continue
        t.organizations++
        t.checked += local.length
        const missing = yield* Ref.get(missingIds)
        for (const m of local) {
          if (remote.value.has(m.clerkUserId) || missing.has(m.clerkUserId)) continue
          if (isRecent(m.version, checkedAt)) {
            t.skippedRecent++
            continue
          }
          t.missing++
          if (t.sample.length < sampleLimit) t.sample.push(`${m.clerkUserId}|${clerkOrgId}`)
          if (!dryRun) {
            const organization = yield* store.findOrganization(clerkOrgId)
            if (Option.isNone(organization)) continue
            const user = yield* store.findUser(m.clerkUserId)
            const delivery = Deliveries.membershipDeleted(m, organization.value, Option.getOrUndefined(user), checkedAt)
            const result = yield* Deliveries.ingest(delivery, ingestOptions)
            if (result.applied) t.changed++
          }
        }
      }
    }
    return t
  })

  const users = wants("user") ? yield* entityPass("user") : tally()
  const organizations = wants("organization") ? yield* entityPass("organization") : tally()
  const memberships = wants("membership") ? yield* membershipPass : tally()
  const finishedAt = yield* Clock.currentTimeMillis
  const entityReport = ({ organizations: _, ...t }: Tally): EntityReport => t
  return {
    dryRun,
    users: entityReport(users),
    organizations: entityReport(organizations),
    memberships: { ...entityReport(memberships), organizations: memberships.organizations },
    requests: (yield* api.stats).requests - requestsAtStart,
    durationMs: finishedAt - startedAt
  }
})
