/**
 * The sync store port: where synced state, the webhook inbox and the notification outbox live.
 *
 * One method does the work of a webhook, {@link SyncStore.ingest}: in ONE transaction it records the
 * delivery in the inbox (a `svix-id` already there is a duplicate and nothing else happens), reads the
 * planner's scope, runs the pure planner, writes the plan's rows and outbox notifications, and sets
 * the inbox status. A failure rolls all of it back and surfaces as {@link StorageUnavailable}
 * (answered 503, so Svix retries): nothing is ever half-written.
 *
 * The rest serves the auth helpers (reads), the outbox relay and resume (outbox), operations
 * (inbox listing, reprocess, retention). Adapters prove themselves with the contract suite exported
 * from `@clerk-sync/core/testing`.
 *
 * @since 0.1.0
 */
import { Context, Data, type Effect, type Option } from "effect"
import type { MembershipRow, OrganizationRow, UserRow } from "./Domain.ts"
import type { Stored } from "./Notification.ts"
import type { Plan, Scope, Snapshot } from "./Plan.ts"

/** The storage could not be reached or the transaction failed; safe to retry. @category errors */
export class StorageUnavailable extends Data.TaggedError("StorageUnavailable")<{
  /** What was being done, for the log line (never contains secrets or payloads). */
  readonly operation: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `storage unavailable during ${this.operation}`
  }
}

/** @category models */
export type InboxStatus = "received" | "processed" | "ignored" | "failed"

/** A delivery as recorded in the inbox. @category models */
export interface InboxRecord {
  readonly svixId: string
  /** The event type, or `"unknown"` when the body had none. */
  readonly type: string
  /** The parsed body (or the raw text, as a JSON string, when it was not JSON). */
  readonly payload: unknown
  readonly receivedAt: number
}

/** A row of the inbox. @category models */
export interface InboxEntry extends InboxRecord {
  readonly status: InboxStatus
  readonly attempts: number
  readonly error: string | null
  readonly processedAt: number | null
}

/**
 * What to do with a delivery: apply a plan, record it as ignored (unknown type), or record it as
 * failed (authentic but undecodable).
 *
 * @category models
 */
export type IngestRequest =
  | {
    readonly _tag: "Apply"
    readonly inbox: InboxRecord
    readonly scope: Scope
    readonly plan: (snapshot: Snapshot) => Plan
  }
  | { readonly _tag: "Ignore"; readonly inbox: InboxRecord }
  | { readonly _tag: "Fail"; readonly inbox: InboxRecord; readonly error: string }

/** @category models */
export interface IngestOptions {
  /**
   * Re-run a delivery already in the inbox whose status is `failed` or `received` (reprocess after
   * an upgrade, or after a crash). Rows already `processed` or `ignored` stay duplicates.
   */
  readonly reprocess?: boolean
}

/** @category models */
export type IngestOutcome =
  | { readonly _tag: "Processed"; readonly applied: boolean; readonly notifications: number }
  | { readonly _tag: "Duplicate" }
  | { readonly _tag: "Ignored" }
  | { readonly _tag: "Failed"; readonly error: string }

/** A live membership with its organization. @category models */
export interface OrganizationMembership {
  readonly organization: OrganizationRow
  readonly membership: MembershipRow
}

/** @category models */
export interface InboxQuery {
  readonly status?: InboxStatus | ReadonlyArray<InboxStatus>
  readonly limit: number
}

/** @category models */
export interface Counts {
  readonly users: number
  readonly organizations: number
  readonly memberships: number
  readonly inbox: Readonly<Record<InboxStatus, number>>
  readonly outboxPending: number
}

/** @category models */
export interface RetentionPolicy {
  /** Processed/ignored inbox rows received before this time (ms) are deleted. */
  readonly inboxBefore: number
  /** Published outbox rows created before this time (ms) are deleted. */
  readonly outboxBefore: number
}

/** @category models */
export interface Pruned {
  readonly inbox: number
  readonly outbox: number
}

/** @category models */
export interface SyncStoreShape {
  /** Records a delivery and applies it, in one transaction. */
  readonly ingest: (request: IngestRequest, options?: IngestOptions) => Effect.Effect<IngestOutcome, StorageUnavailable>

  /** A user by Clerk id (tombstones included: check `deletedAt`). */
  readonly findUser: (clerkUserId: string) => Effect.Effect<Option.Option<UserRow>, StorageUnavailable>
  /** An organization by Clerk id (tombstones included). */
  readonly findOrganization: (clerkOrgId: string) => Effect.Effect<Option.Option<OrganizationRow>, StorageUnavailable>
  /** The LIVE membership of a user in an organization. */
  readonly findMembership: (
    clerkUserId: string,
    clerkOrgId: string
  ) => Effect.Effect<Option.Option<MembershipRow>, StorageUnavailable>
  /** The user's live memberships in live organizations, ordered by organization name. */
  readonly listUserOrganizations: (
    clerkUserId: string
  ) => Effect.Effect<ReadonlyArray<OrganizationMembership>, StorageUnavailable>

  /** Users (tombstones included), most recently updated first: for dashboards and audits. */
  readonly listUsers: (limit: number) => Effect.Effect<ReadonlyArray<UserRow>, StorageUnavailable>
  /** Organizations (tombstones included), most recently updated first. */
  readonly listOrganizations: (limit: number) => Effect.Effect<ReadonlyArray<OrganizationRow>, StorageUnavailable>
  /** Membership rows (ended ones included), most recently updated first. */
  readonly listMemberships: (limit: number) => Effect.Effect<ReadonlyArray<MembershipRow>, StorageUnavailable>

  /** Live members of an organization (live users only), for member lists and reconciliation. */
  readonly listOrganizationMembers: (clerkOrgId: string) => Effect.Effect<ReadonlyArray<MembershipRow>, StorageUnavailable>
  /**
   * Clerk ids of live users or organizations after `afterClerkId` (exclusive, `null` for the start),
   * in ascending code-unit order (`COLLATE "C"`), at most `limit`: keyset pages for reconciliation.
   */
  readonly listClerkIds: (
    entity: "user" | "organization",
    afterClerkId: string | null,
    limit: number
  ) => Effect.Effect<ReadonlyArray<string>, StorageUnavailable>

  /** A named checkpoint (e.g. a backfill's progress), if set. */
  readonly getCheckpoint: (name: string) => Effect.Effect<Option.Option<string>, StorageUnavailable>
  /** Sets a named checkpoint (upsert). */
  readonly setCheckpoint: (name: string, value: string) => Effect.Effect<void, StorageUnavailable>

  /** Inbox rows, newest first. */
  readonly listInbox: (query: InboxQuery) => Effect.Effect<ReadonlyArray<InboxEntry>, StorageUnavailable>
  /** Inbox rows to reprocess: `failed`, and `received` rows older than `receivedBefore`, oldest first. */
  readonly listReprocessable: (
    receivedBefore: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<InboxEntry>, StorageUnavailable>
  readonly counts: Effect.Effect<Counts, StorageUnavailable>

  /** Notifications after `afterSeq` for any of the audiences, in `seq` order (resume). */
  readonly readOutbox: (
    afterSeq: number,
    audiences: ReadonlyArray<string>,
    limit: number
  ) => Effect.Effect<ReadonlyArray<Stored>, StorageUnavailable>
  /** The lowest `seq` still retained (resume beyond it must resync), or the next seq if empty. */
  readonly outboxFloor: Effect.Effect<number, StorageUnavailable>
  /** Unpublished notifications in `seq` order, for the relay. */
  readonly claimUnpublished: (limit: number) => Effect.Effect<ReadonlyArray<Stored>, StorageUnavailable>
  readonly markPublished: (seqs: ReadonlyArray<number>) => Effect.Effect<void, StorageUnavailable>

  /** Deletes old processed inbox rows and published outbox rows. */
  readonly prune: (policy: RetentionPolicy) => Effect.Effect<Pruned, StorageUnavailable>
}

/**
 * The sync store service.
 *
 * @category services
 */
export class SyncStore extends Context.Service<SyncStore, SyncStoreShape>()("@clerk-sync/core/SyncStore") {}
