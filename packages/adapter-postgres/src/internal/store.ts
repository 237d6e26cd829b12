/**
 * The {@link SyncStore} over a {@link Database}: ingest (one transaction per delivery, or group
 * commit), the auth-helper reads, operations, and the outbox with its sequencer.
 */
import { type Notification, SyncStore } from "@clerk-sync/core"
import { Clock, Effect, Option, type Scope } from "effect"
import { sql } from "kysely"
import type { Database, DbError } from "./database.ts"
import * as GroupCommit from "./groupCommit.ts"
import { tables } from "./ingest.ts"
import * as Rows from "./rows.ts"
import { toText } from "./text.ts"

export interface StoreOptions {
  /** Share transactions between concurrent ingests (see `groupCommit.ts`); off when omitted. */
  readonly groupCommit?: boolean | GroupCommit.Options
  /** Called after a transaction that wrote notifications has committed (wakes the relays). */
  readonly committed?: () => void
}

const unavailable = (operation: string) => (cause: DbError) => new SyncStore.StorageUnavailable({ operation, cause })

/** Rows sequenced per sequencer transaction. */
const SEQUENCE_CHUNK = 10_000
/** Rows deleted per retention statement (short transactions, short locks). */
const PRUNE_CHUNK = 10_000

const MEMBERSHIP_COLUMNS = sql`m.id, m.clerk_membership_id, m.user_id, m.organization_id, u.clerk_user_id, o.clerk_org_id, m.role,
  m.permissions, m.public_metadata, m.version, m.created_at, m.updated_at, m.deleted_at`

export const make = (db: Database, options: StoreOptions = {}): Effect.Effect<SyncStore.SyncStoreShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const t = tables(db.schema)
    const query = <R>(operation: string, build: () => { execute: (k: any) => Promise<{ rows: Array<R> }> }) =>
      Effect.mapError(
        Effect.map(db.run((k) => build().execute(k)), (r) => r.rows),
        unavailable(operation)
      )

    const groupOptions = options.groupCommit === true ? {} : options.groupCommit === false ? undefined : options.groupCommit
    const enqueue = groupOptions === undefined ? undefined : yield* GroupCommit.make(db, groupOptions)

    const committed = options.committed ?? (() => {})
    const ingest: SyncStore.SyncStoreShape["ingest"] = (request, ingestOptions) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const item = { request, options: ingestOptions, now }
        return enqueue === undefined ? GroupCommit.ingestAlone(db, item) : enqueue(item)
      }).pipe(Effect.tap((outcome) =>
        Effect.sync(() => {
          if (outcome._tag === "Processed" && outcome.notifications > 0) committed()
        })
      ))

    /**
     * Gives a `seq` to committed, unsequenced outbox rows, in id order, under the `outbox_state` row
     * lock (one sequencer at a time, across processes): the `sequence_outbox` function (migration
     * 2), one round trip. Rows of transactions still in flight are not visible and get a higher
     * `seq` once committed: `seq` order is visibility order.
     */
    const sequence = db.run((k) => sql`SELECT ${sql.id(db.schema, "sequence_outbox")}(${SEQUENCE_CHUNK}::integer)`.execute(k))

    const sequenced = <A, E>(operation: string, effect: Effect.Effect<A, E>) =>
      Effect.andThen(Effect.mapError(sequence, unavailable(operation)), effect)

    const store: SyncStore.SyncStoreShape = {
      ingest,

      findUser: (clerkUserId) =>
        Effect.map(
          query<Rows.UserRecord>("findUser", () => sql`SELECT * FROM ${t.users} WHERE clerk_user_id = ${toText(clerkUserId)}`),
          (rows) => Option.map(Option.fromNullishOr(rows[0]), Rows.toUser)
        ),
      findOrganization: (clerkOrgId) =>
        Effect.map(
          query<Rows.OrganizationRecord>("findOrganization", () => sql`SELECT * FROM ${t.organizations} WHERE clerk_org_id = ${toText(clerkOrgId)}`),
          (rows) => Option.map(Option.fromNullishOr(rows[0]), Rows.toOrganization)
        ),
      findMembership: (clerkUserId, clerkOrgId) =>
        Effect.map(
          query<Rows.MembershipRecord>("findMembership", () =>
            sql`SELECT ${MEMBERSHIP_COLUMNS} FROM ${t.users} u
              JOIN ${t.memberships} m ON m.user_id = u.id
              JOIN ${t.organizations} o ON o.id = m.organization_id
              WHERE u.clerk_user_id = ${toText(clerkUserId)} AND o.clerk_org_id = ${toText(clerkOrgId)} AND m.deleted_at IS NULL`),
          (rows) => Option.map(Option.fromNullishOr(rows[0]), Rows.toMembership)
        ),
      listUserOrganizations: (clerkUserId) =>
        Effect.map(
          query<Rows.MembershipRecord & { readonly organization: Rows.OrganizationRecord }>("listUserOrganizations", () =>
            sql`SELECT ${MEMBERSHIP_COLUMNS}, row_to_json(o) AS organization FROM ${t.users} u
              JOIN ${t.memberships} m ON m.user_id = u.id
              JOIN ${t.organizations} o ON o.id = m.organization_id
              WHERE u.clerk_user_id = ${toText(clerkUserId)} AND m.deleted_at IS NULL AND o.deleted_at IS NULL`),
          // Sorted here, as the core sorts (`localeCompare`): a user has few organizations, and the
          // order then does not depend on the database's collation.
          (rows) =>
            rows
              .map((r) => ({ organization: Rows.toOrganization(r.organization), membership: Rows.toMembership(r) }))
              .sort((a, b) => a.organization.name.localeCompare(b.organization.name))
        ),

      listUsers: (limit) =>
        Effect.map(
          query<Rows.UserRecord>("listUsers", () => sql`SELECT * FROM ${t.users} ORDER BY substr(version, 3) DESC LIMIT ${limit}`),
          (rows) => rows.map(Rows.toUser)
        ),
      listOrganizations: (limit) =>
        Effect.map(
          query<Rows.OrganizationRecord>("listOrganizations", () => sql`SELECT * FROM ${t.organizations} ORDER BY substr(version, 3) DESC LIMIT ${limit}`),
          (rows) => rows.map(Rows.toOrganization)
        ),
      listMemberships: (limit) =>
        Effect.map(
          query<Rows.MembershipRecord>("listMemberships", () =>
            sql`SELECT ${MEMBERSHIP_COLUMNS} FROM ${t.memberships} m
              JOIN ${t.users} u ON u.id = m.user_id
              JOIN ${t.organizations} o ON o.id = m.organization_id
              ORDER BY substr(m.version, 3) DESC LIMIT ${limit}`),
          (rows) => rows.map(Rows.toMembership)
        ),

      listOrganizationMembers: (clerkOrgId) =>
        Effect.map(
          query<Rows.MembershipRecord>("listOrganizationMembers", () =>
            sql`SELECT ${MEMBERSHIP_COLUMNS} FROM ${t.organizations} o
              JOIN ${t.memberships} m ON m.organization_id = o.id
              JOIN ${t.users} u ON u.id = m.user_id
              WHERE o.clerk_org_id = ${toText(clerkOrgId)} AND m.deleted_at IS NULL AND u.deleted_at IS NULL
              ORDER BY u.clerk_user_id`),
          (rows) => rows.map(Rows.toMembership)
        ),
      listClerkIds: (entity, afterClerkId, limit) =>
        Effect.map(
          query<{ id: string }>("listClerkIds", () => {
            const [table, column] = entity === "user" ? [t.users, sql.ref("clerk_user_id")] : [t.organizations, sql.ref("clerk_org_id")]
            const after = afterClerkId === null ? sql`` : sql`AND ${column} > ${toText(afterClerkId)}`
            return sql`SELECT ${column} AS id FROM ${table} WHERE deleted_at IS NULL ${after} ORDER BY ${column} LIMIT ${limit}`
          }),
          (rows) => rows.map((r) => r.id)
        ),

      getCheckpoint: (name) =>
        Effect.map(
          query<{ value: string }>("getCheckpoint", () => sql`SELECT value FROM ${t.checkpoints} WHERE name = ${toText(name)}`),
          (rows) => Option.map(Option.fromNullishOr(rows[0]), (r) => r.value)
        ),
      setCheckpoint: (name, value) =>
        Effect.asVoid(query("setCheckpoint", () =>
          sql`INSERT INTO ${t.checkpoints} (name, value) VALUES (${toText(name)}, ${toText(value)})
            ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = now()`)),

      listInbox: (q) => {
        const statuses = q.status === undefined ? undefined : typeof q.status === "string" ? [q.status] : [...q.status]
        return Effect.map(
          query<Rows.InboxRecord>("listInbox", () =>
            statuses === undefined
              ? sql`SELECT * FROM ${t.inbox} ORDER BY id DESC LIMIT ${q.limit}`
              : sql`SELECT * FROM ${t.inbox} WHERE status = ANY(${statuses}::text[]) ORDER BY id DESC LIMIT ${q.limit}`),
          (rows) => rows.map(Rows.toInbox)
        )
      },
      listReprocessable: (receivedBefore, limit) =>
        Effect.map(
          query<Rows.InboxRecord>("listReprocessable", () =>
            sql`SELECT * FROM ${t.inbox}
              WHERE status IN ('received', 'failed') AND (status = 'failed' OR received_at < ${Rows.iso(receivedBefore)}::timestamptz)
              ORDER BY received_at, id LIMIT ${limit}`),
          (rows) => rows.map(Rows.toInbox)
        ),
      counts: Effect.map(
        query<{ users: string; organizations: string; memberships: string; inbox: Record<string, number> | null; pending: string }>("counts", () =>
          sql`SELECT
            (SELECT count(*) FROM ${t.users} WHERE deleted_at IS NULL) AS users,
            (SELECT count(*) FROM ${t.organizations} WHERE deleted_at IS NULL) AS organizations,
            (SELECT count(*) FROM ${t.memberships} WHERE deleted_at IS NULL) AS memberships,
            (SELECT json_object_agg(status, n) FROM (SELECT status, count(*) AS n FROM ${t.inbox} GROUP BY status) s) AS inbox,
            (SELECT count(*) FROM ${t.outbox} WHERE published_at IS NULL) AS pending`),
        (rows): SyncStore.Counts => {
          const r = rows[0]!
          const inbox = r.inbox ?? {}
          return {
            users: Number(r.users),
            organizations: Number(r.organizations),
            memberships: Number(r.memberships),
            inbox: {
              received: Number(inbox["received"] ?? 0),
              processed: Number(inbox["processed"] ?? 0),
              ignored: Number(inbox["ignored"] ?? 0),
              failed: Number(inbox["failed"] ?? 0)
            },
            outboxPending: Number(r.pending)
          }
        }
      ),

      readOutbox: (afterSeq, audiences, limit) =>
        sequenced(
          "readOutbox",
          Effect.map(
            query<Rows.OutboxRecord>("readOutbox", () =>
              sql`SELECT seq, audiences, payload, created_at FROM ${t.outbox}
                WHERE seq > ${afterSeq} AND audiences && ${audiences.map(toText)}::text[] ORDER BY seq LIMIT ${limit}`),
            (rows) => rows.map(Rows.toStored)
          )
        ),
      outboxFloor: sequenced(
        "outboxFloor",
        Effect.map(
          query<{ floor: string | number }>("outboxFloor", () =>
            sql`SELECT coalesce((SELECT min(seq) FROM ${t.outbox}), (SELECT last_seq + 1 FROM ${t.outboxState})) AS floor`),
          (rows) => Number(rows[0]!.floor)
        )
      ),
      // Sequencing and reading in one round trip: the relay's hot path.
      claimUnpublished: (limit) =>
        Effect.map(
          query<Rows.OutboxRecord>("claimUnpublished", () =>
            sql`SELECT seq, audiences, payload, created_at FROM ${sql.id(db.schema, "claim_outbox")}(${limit}::integer)`),
          (rows): ReadonlyArray<Notification.Stored> => rows.map(Rows.toStored)
        ),
      // Committed without waiting for the WAL flush: a mark lost to a crash only makes the relay
      // publish those notifications again, which clients drop by `seq`; waiting would cost every
      // relay cycle an fsync (at one delivery at a time, one more per delivery).
      markPublished: (seqs) =>
        seqs.length === 0 ? Effect.void : Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.asVoid(query("markPublished", () =>
            sql`UPDATE ${t.outbox} SET published_at = ${Rows.iso(now)}::timestamptz
              FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
              WHERE seq = ANY(${seqs.map(String)}::bigint[]) AND published_at IS NULL`))),

      prune: (policy) =>
        Effect.gen(function*() {
          // In chunks: short transactions, short locks, however much there is to delete.
          const deleteAll = (table: typeof t.inbox, where: ReturnType<typeof sql>) =>
            Effect.gen(function*() {
              let total = 0
              while (true) {
                const rows = yield* query<{ n: string | number }>("prune", () =>
                  sql`WITH d AS (DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${where} LIMIT ${PRUNE_CHUNK}) RETURNING 1)
                    SELECT count(*) AS n FROM d`)
                const n = Number(rows[0]!.n)
                total += n
                if (n < PRUNE_CHUNK) return total
              }
            })
          const inbox = yield* deleteAll(
            t.inbox,
            sql`status IN ('processed', 'ignored') AND received_at < ${Rows.iso(policy.inboxBefore)}::timestamptz`
          )
          const outbox = yield* deleteAll(t.outbox, sql`published_at IS NOT NULL AND created_at < ${Rows.iso(policy.outboxBefore)}::timestamptz`)
          return { inbox, outbox }
        })
    }
    return store
  })
