/**
 * Synthetic deliveries: how an object read from the Backend API (or a deletion found by reconcile)
 * becomes a webhook-shaped delivery that goes through the same `Ingest.ingest` (inbox, planner,
 * versions, outbox) as Clerk's own webhooks.
 *
 * Delivery ids are deterministic, so running the same page twice is a duplicate in the inbox:
 * - `backfill:user:<id>:<updated_at>` (`organization`, `membership` likewise), type `*.updated`;
 * - `reconcile:user:<id>:<checked_at>` / `reconcile:organization:…` (`*.deleted`);
 * - `reconcile:membership:<user id>:<org id>:<checked_at>` (`organizationMembership.deleted`).
 *
 * **Versions against concurrent webhooks.** A backfilled object carries the version
 * `(real, updated_at, timestamp = updated_at, id = "backfill:…")`. Against a webhook for a different
 * `updated_at`, `updated_at` decides, as for any two webhooks: a backfill never overwrites newer data
 * with older, and newer data from the API replaces an older webhook's. Against a webhook with the
 * SAME `updated_at` (the same Clerk state), the tie-break (envelope timestamp, then id) always ranks
 * the backfill copy first: a webhook is sent at or after the change, so its timestamp is at least
 * `updated_at`, and at equal timestamps `"backfill:…" < "msg_…"` (Svix ids start with `msg_`). So the
 * webhook's row wins whichever arrives first, and a store that eventually receives every webhook ends
 * byte-for-byte in the state of those webhooks alone. Either winning would hold the same state; this
 * choice keeps the result independent of whether a backfill ever ran.
 *
 * **Reconcile deletions** use the time the API was asked (`checked_at`, from `Clock`, read before
 * the request) as their timestamp: a later re-join of a membership outranks the synthetic ending; a
 * real `*.deleted` webhook arriving afterwards carries the real, earlier deletion time, and the
 * planner keeps the earliest deletion of a user or organization.
 *
 * @since 0.1.0
 */
import { Clock, Effect } from "effect"
import { type Domain, Ingest, SyncStore } from "@clerk-sync/core"
import type { ApiObject } from "./ClerkApi.ts"

/** What backfill reads. @category models */
export type Entity = "user" | "organization" | "membership"

const UPDATED_TYPE: Readonly<Record<Entity, string>> = {
  user: "user.updated",
  organization: "organization.updated",
  membership: "organizationMembership.updated"
}

const body = (type: string, timestamp: number, data: unknown): string =>
  JSON.stringify({ object: "event", type, timestamp, data })

/**
 * The delivery of an object read from the API, as a `*.updated` event.
 *
 * @example
 * import { Deliveries } from "@clerk-sync/backfill"
 * Deliveries.ofObject("user", { id: "user_1", createdAt: 1, updatedAt: 2, json })
 * // { svixId: "backfill:user:user_1:2", body: '{"object":"event","type":"user.updated","timestamp":2,"data":{…}}' }
 *
 * @category constructors
 */
export const ofObject = (entity: Entity, object: ApiObject): Ingest.Delivery => ({
  svixId: `backfill:${entity}:${object.id}:${object.updatedAt ?? "none"}`,
  body: body(UPDATED_TYPE[entity], object.updatedAt ?? 0, object.json)
})

/** A `user.deleted` for a user Clerk no longer has. @category constructors */
export const userDeleted = (clerkUserId: string, checkedAt: number): Ingest.Delivery => ({
  svixId: `reconcile:user:${clerkUserId}:${checkedAt}`,
  body: body("user.deleted", checkedAt, { object: "user", id: clerkUserId, deleted: true })
})

/** An `organization.deleted` for an organization Clerk no longer has. @category constructors */
export const organizationDeleted = (clerkOrgId: string, checkedAt: number): Ingest.Delivery => ({
  svixId: `reconcile:organization:${clerkOrgId}:${checkedAt}`,
  body: body("organization.deleted", checkedAt, { object: "organization", id: clerkOrgId, deleted: true })
})

/**
 * An `organizationMembership.deleted` for a local membership Clerk no longer lists, built from the
 * local rows (the planner reads the pair's user and organization ids from it).
 *
 * @category constructors
 */
export const membershipDeleted = (
  membership: Domain.MembershipRow,
  organization: Domain.OrganizationRow,
  user: Domain.UserRow | undefined,
  checkedAt: number
): Ingest.Delivery => ({
  svixId: `reconcile:membership:${membership.clerkUserId}:${membership.clerkOrgId}:${checkedAt}`,
  body: body("organizationMembership.deleted", checkedAt, {
    object: "organization_membership",
    id: membership.clerkMembershipId,
    role: membership.role,
    permissions: membership.permissions,
    public_metadata: membership.publicMetadata,
    organization: {
      object: "organization",
      id: organization.clerkOrgId,
      name: organization.name,
      slug: organization.slug,
      image_url: organization.imageUrl,
      public_metadata: organization.publicMetadata,
      created_at: organization.createdAt,
      updated_at: organization.updatedAt
    },
    public_user_data: {
      user_id: membership.clerkUserId,
      first_name: user?.firstName ?? null,
      last_name: user?.lastName ?? null,
      image_url: user?.imageUrl ?? null,
      identifier: user?.email ?? user?.username ?? null
    },
    created_at: membership.createdAt,
    updated_at: checkedAt
  })
})

/** @category models */
export interface IngestOptions {
  /**
   * Write client notifications to the outbox (default true, as a webhook would). Turn it off for a
   * first import into an empty database, where thousands of `*.created` notifications are noise.
   */
  readonly notify?: boolean
}

/**
 * Ingests a synthetic delivery: `Ingest.ingest`, optionally without outbox notifications.
 *
 * @category programs
 */
export const ingest = (
  delivery: Ingest.Delivery,
  options: IngestOptions = {}
): Effect.Effect<Ingest.IngestResult, SyncStore.StorageUnavailable, SyncStore.SyncStore> =>
  options.notify === false ? ingestSilently(delivery) : Ingest.ingest(delivery)

const ingestSilently = Effect.fn("Deliveries.ingestSilently")(function*(delivery: Ingest.Delivery) {
  const store = yield* SyncStore.SyncStore
  const settings = yield* Ingest.PlannerSettings
  const receivedAt = yield* Clock.currentTimeMillis
  const request = Ingest.request(delivery, receivedAt, settings)
  const silent: SyncStore.IngestRequest = request._tag === "Apply"
    ? { ...request, plan: (snapshot) => ({ ...request.plan(snapshot), notifications: [] }) }
    : request
  const outcome = yield* store.ingest(silent)
  const type = request.inbox.type === "unknown" ? null : request.inbox.type
  const base = { eventId: delivery.svixId, type }
  switch (outcome._tag) {
    case "Processed":
      return { ...base, status: "processed", applied: outcome.applied, error: null } satisfies Ingest.IngestResult
    case "Duplicate":
      return { ...base, status: "duplicate", applied: false, error: null } satisfies Ingest.IngestResult
    case "Ignored":
      return { ...base, status: "ignored", applied: false, error: null } satisfies Ingest.IngestResult
    case "Failed":
      return { ...base, status: "failed", applied: false, error: outcome.error } satisfies Ingest.IngestResult
  }
})
