/**
 * The ingest transaction: lock, read the planner's scope (and whether the delivery is already in
 * the inbox), run the pure planner, then write in one statement the inbox row (with its final
 * status), the plan's rows and its outbox notifications. Two round trips per delivery, plus BEGIN,
 * the locks and COMMIT, which a batch of deliveries sharing a transaction (group commit) pays once;
 * and deliveries of a batch with disjoint keys are read and written all at once, so a batch costs
 * BEGIN, the locks and COMMIT plus two round trips per wave of disjoint keys, however large it is
 * (deletions, which fan out, go one by one).
 *
 * Concurrency (several connections, several processes) is made safe by locking, never by luck:
 * 1. Transaction-scoped advisory locks on every key the batch may touch (`u:<clerk user>`,
 *    `o:<clerk org>`, `e:<svix-id>`), taken at the start, in one statement, in ascending lock
 *    order. Two deliveries touching the same user, organization or membership pair are therefore
 *    serialized, and the second one plans against what the first committed (READ COMMITTED takes
 *    a fresh snapshot per statement, after the locks are held).
 * 2. The membership rows a deletion fans out to (every membership of a user, or of an
 *    organization) are locked `FOR UPDATE` in id order right after, because a user's deletion and
 *    an organization's deletion share no entity key but may end the same membership.
 * After these two steps a transaction never waits for a lock held by another ingest, so ingests
 * cannot deadlock one another; a deadlock or serialization failure caused by anything else is
 * retried a bounded number of times.
 */
import { Effect, Result } from "effect"
import type { Domain, Plan, SyncStore } from "@clerk-sync/core"
import { sql, type RawBuilder } from "kysely"
import { type Database, type DbError, isRetryable, type Transaction } from "./database.ts"
import * as Rows from "./rows.ts"
import { PREPARED } from "./prepared.ts"
import { toJson, toText } from "./text.ts"

/** Marks a statement for preparing (see `prepared.ts`). */
const PREPARED_SQL = sql.raw(PREPARED)

/** One delivery waiting to be ingested. */
export interface Pending {
  readonly request: SyncStore.IngestRequest
  readonly options: SyncStore.IngestOptions | undefined
  /** The caller's clock reading (ms): `processed_at` and the outbox rows' `created_at`. */
  readonly now: number
}

/** The planner threw: not a storage problem, and retrying cannot help. */
export class PlanFailed {
  readonly _tag = "PlanFailed"
  constructor(readonly cause: unknown) {}
}

export type ItemResult =
  | { readonly _tag: "Done"; readonly outcome: SyncStore.IngestOutcome }
  /** The planner threw; nothing of this delivery was written, and the batch went on. */
  | { readonly _tag: "PlanFailed"; readonly cause: unknown }

/** How many times a transaction is retried after a deadlock or serialization failure. */
const RETRIES = 5

const statusOf = (request: SyncStore.IngestRequest): SyncStore.InboxStatus =>
  request._tag === "Apply" ? "processed" : request._tag === "Ignore" ? "ignored" : "failed"

const unique = (values: Iterable<string>): Array<string> => [...new Set(values)]

/** The advisory lock keys of a batch (hashed and sorted by the lock statement). */
export const lockKeys = (schema: string, items: ReadonlyArray<Pending>): Array<string> => {
  const keys = new Set<string>()
  for (const { request } of items) {
    keys.add(`${schema}:e:${request.inbox.svixId}`)
    if (request._tag !== "Apply") continue
    const scope = request.scope
    for (const u of scope.users) keys.add(`${schema}:u:${u}`)
    for (const o of scope.organizations) keys.add(`${schema}:o:${o}`)
    for (const [u, o] of scope.membershipPairs) {
      keys.add(`${schema}:u:${u}`)
      keys.add(`${schema}:o:${o}`)
    }
    for (const u of scope.membershipsOfUsers) keys.add(`${schema}:u:${u}`)
    for (const o of scope.membershipsOfOrganizations) keys.add(`${schema}:o:${o}`)
  }
  return [...keys].map(toText)
}

/** SQL for the tables of the schema. */
export const tables = (schema: string) => ({
  users: sql.id(schema, "users"),
  organizations: sql.id(schema, "organizations"),
  memberships: sql.id(schema, "user_organizations"),
  inbox: sql.id(schema, "clerk_webhook_events"),
  outbox: sql.id(schema, "outbox"),
  outboxState: sql.id(schema, "outbox_state"),
  checkpoints: sql.id(schema, "checkpoints")
})

type Tables = ReturnType<typeof tables>

/*
 * Every read below reaches rows through their unique keys, one probe per key, behind a `LIMIT`
 * (or `OFFSET 0`) that keeps the planner from flattening the probe into a join. Without that
 * fence, a table that grew since it was last analyzed (a fresh database filling up, a first
 * backfill) still looks empty to the planner, and prepared statements cache plans that hash-join
 * or scan whole tables for each delivery: measured at 4.7 ms per bulk read with 800 users, and
 * growing with the tables. A probe costs the same at any size and with any statistics.
 */

/** The ids of the users with these Clerk ids (an SQL `text[]` expression). */
const userIdsOf = (t: Tables, clerkUserIds: unknown) =>
  sql`SELECT x.id FROM unnest(${clerkUserIds}::text[]) AS k(key)
    CROSS JOIN LATERAL (SELECT id FROM ${t.users} WHERE clerk_user_id = k.key LIMIT 1) AS x`

/** The ids of the organizations with these Clerk ids (an SQL `text[]` expression). */
const organizationIdsOf = (t: Tables, clerkOrgIds: unknown) =>
  sql`SELECT x.id FROM unnest(${clerkOrgIds}::text[]) AS k(key)
    CROSS JOIN LATERAL (SELECT id FROM ${t.organizations} WHERE clerk_org_id = k.key LIMIT 1) AS x`

/** The ids of the memberships of these (Clerk user, Clerk organization) pairs. */
const pairMembershipIdsOf = (t: Tables, clerkUserIds: unknown, clerkOrgIds: unknown) =>
  sql`SELECT x.id FROM unnest(${clerkUserIds}::text[], ${clerkOrgIds}::text[]) AS p(cu, co)
    CROSS JOIN LATERAL (SELECT id FROM ${t.users} WHERE clerk_user_id = p.cu LIMIT 1) AS u
    CROSS JOIN LATERAL (SELECT id FROM ${t.organizations} WHERE clerk_org_id = p.co LIMIT 1) AS o
    CROSS JOIN LATERAL (SELECT id FROM ${t.memberships} WHERE user_id = u.id AND organization_id = o.id LIMIT 1) AS x`

/** The distinct ids of a query of ids (duplicates allowed), as the FROM item `d`. */
const distinctIds = (ids: RawBuilder<unknown>) => sql`(SELECT DISTINCT id FROM (${ids}) AS i) AS d`

/** The rows of `table` with these ids, as a JSON array or null. */
const rowsById = (table: RawBuilder<unknown>, ids: RawBuilder<unknown>) =>
  sql`(SELECT json_agg(r) FROM ${distinctIds(ids)}
    CROSS JOIN LATERAL (SELECT * FROM ${table} WHERE id = d.id LIMIT 1) AS r)`

/**
 * The FROM items `m` (membership rows with these ids), `u` and `o` (their user's and organization's
 * Clerk ids). May follow `CROSS JOIN LATERAL` when `ids` refers to an earlier FROM item.
 */
const membershipsById = (t: Tables, ids: RawBuilder<unknown>) =>
  sql`${distinctIds(ids)}
    CROSS JOIN LATERAL (SELECT * FROM ${t.memberships} WHERE id = d.id LIMIT 1) AS m
    CROSS JOIN LATERAL (SELECT clerk_user_id FROM ${t.users} WHERE id = m.user_id LIMIT 1) AS u
    CROSS JOIN LATERAL (SELECT clerk_org_id FROM ${t.organizations} WHERE id = m.organization_id LIMIT 1) AS o`

/** The ids of the membership rows a scope reads: of users, of organizations, of pairs. */
const membershipIds = (t: Tables, scope: { readonly mu: Array<string>; readonly mo: Array<string>; readonly pu: Array<string>; readonly po: Array<string> }) => {
  const parts: Array<RawBuilder<unknown>> = []
  if (scope.mu.length > 0) {
    parts.push(sql`SELECT m.id FROM (${userIdsOf(t, scope.mu)}) AS u
      CROSS JOIN LATERAL (SELECT id FROM ${t.memberships} WHERE user_id = u.id OFFSET 0) AS m`)
  }
  if (scope.mo.length > 0) {
    parts.push(sql`SELECT m.id FROM (${organizationIdsOf(t, scope.mo)}) AS o
      CROSS JOIN LATERAL (SELECT id FROM ${t.memberships} WHERE organization_id = o.id OFFSET 0) AS m`)
  }
  if (scope.pu.length > 0) parts.push(pairMembershipIdsOf(t, scope.pu, scope.po))
  return parts.length === 0 ? undefined : sql.join(parts, sql` UNION ALL `)
}

const scopeArrays = (scope: Plan.Scope) => ({
  users: unique(scope.users).map(toText),
  organizations: unique(scope.organizations).map(toText),
  mu: unique(scope.membershipsOfUsers).map(toText),
  mo: unique(scope.membershipsOfOrganizations).map(toText),
  pu: scope.membershipPairs.map(([u]) => toText(u)),
  po: scope.membershipPairs.map(([, o]) => toText(o))
})

interface SnapshotRecord {
  /** The inbox status of the delivery, when it is there already. */
  readonly existing: SyncStore.InboxStatus | null
  readonly memberships: ReadonlyArray<Rows.MembershipRecord> | string | null
  readonly users: ReadonlyArray<Rows.UserRecord> | string | null
  readonly organizations: ReadonlyArray<Rows.OrganizationRecord> | string | null
}

const jsonArray = <A>(value: ReadonlyArray<A> | string | null): ReadonlyArray<A> =>
  value === null ? [] : typeof value === "string" ? (JSON.parse(value) as ReadonlyArray<A>) : value

/**
 * Whether the delivery is in the inbox already (its status), and the snapshot of its scope, in one
 * round trip. Race-free: the transaction holds the delivery's `e:` lock, so nobody else can be
 * recording the same svix-id meanwhile.
 */
const read = (t: Tables, tx: Transaction, request: Extract<SyncStore.IngestRequest, { _tag: "Apply" }>): Effect.Effect<SnapshotRecord, DbError> => {
  const s = scopeArrays(request.scope)
  const ids = membershipIds(t, s)
  const m = ids === undefined
    ? sql`SELECT NULL::uuid AS id, NULL::uuid AS user_id, NULL::uuid AS organization_id WHERE false`
    : sql`SELECT m.id, m.clerk_membership_id, m.user_id, m.organization_id, u.clerk_user_id, o.clerk_org_id, m.role, m.permissions,
          m.public_metadata, m.version, m.created_at, m.updated_at, m.deleted_at
        FROM ${membershipsById(t, ids)}`
  const query = sql<SnapshotRecord>`${PREPARED_SQL}WITH m AS (${m})
    SELECT
      (SELECT status FROM ${t.inbox} WHERE svix_id = ${toText(request.inbox.svixId)}) AS existing,
      (SELECT json_agg(m) FROM m) AS memberships,
      ${rowsById(t.users, sql`${userIdsOf(t, s.users)} UNION ALL SELECT user_id FROM m`)} AS users,
      ${rowsById(t.organizations, sql`${organizationIdsOf(t, s.organizations)} UNION ALL SELECT organization_id FROM m`)} AS organizations`
  return Effect.map(tx.run((trx) => query.execute(trx)), (r) => r.rows[0]!)
}

/** The inbox row's columns, as the write statement inserts or updates them. */
const inboxValues = (request: SyncStore.IngestRequest, now: number) => ({
  svixId: toText(request.inbox.svixId),
  type: toText(request.inbox.type),
  payload: toJson(request.inbox.payload),
  status: statusOf(request),
  error: request._tag === "Fail" ? toText(request.error) : null,
  receivedAt: Rows.iso(request.inbox.receivedAt),
  processedAt: Rows.iso(now)
})

/**
 * Records the delivery: a new row (`insert`), or, when reprocessing, the existing row updated
 * (`update`: status, error, attempts + 1, and the payload as delivered now).
 */
const inboxStatement = (t: Tables, mode: "insert" | "update", request: SyncStore.IngestRequest, now: number) => {
  const v = inboxValues(request, now)
  return mode === "insert"
    ? sql`INSERT INTO ${t.inbox} (svix_id, type, payload, status, attempts, error, received_at, processed_at)
        VALUES (${v.svixId}, ${v.type}, ${v.payload}::jsonb, ${v.status}, 1, ${v.error}, ${v.receivedAt}::timestamptz, ${v.processedAt}::timestamptz)`
    : sql`UPDATE ${t.inbox} SET type = ${v.type}, payload = ${v.payload}::jsonb, status = ${v.status}, attempts = attempts + 1,
        error = ${v.error}, received_at = ${v.receivedAt}::timestamptz, processed_at = ${v.processedAt}::timestamptz
        WHERE svix_id = ${v.svixId}`
}

const toSnapshot = (record: SnapshotRecord): Plan.Snapshot => ({
  users: new Map(jsonArray(record.users).map((r) => [r.clerk_user_id, Rows.toUser(r)])),
  organizations: new Map(jsonArray(record.organizations).map((r) => [r.clerk_org_id, Rows.toOrganization(r)])),
  memberships: jsonArray(record.memberships).map(Rows.toMembership)
})

/** Keeps the last row per key (a plan never repeats one, but one statement cannot write a row twice). */
const lastBy = <A>(rows: ReadonlyArray<A>, key: (a: A) => string): ReadonlyArray<A> => {
  if (rows.length < 2) return rows
  return [...new Map(rows.map((r) => [key(r), r])).values()]
}

/** An inbox row as the write statement inserts it. */
interface InboxRow {
  readonly svix_id: string
  readonly type: string
  readonly payload: unknown
  readonly status: SyncStore.InboxStatus
  readonly error: string | null
  readonly received_at: string | null
  readonly processed_at: string | null
}

const inboxRow = (request: SyncStore.IngestRequest, now: number): InboxRow => ({
  svix_id: request.inbox.svixId,
  type: request.inbox.type,
  payload: request.inbox.payload,
  status: statusOf(request),
  error: request._tag === "Fail" ? request.error : null,
  received_at: Rows.iso(request.inbox.receivedAt),
  processed_at: Rows.iso(now)
})

/** What one write statement writes: inbox rows, the plans' rows, their notifications in order. */
interface Writes {
  readonly inbox: Array<InboxRow>
  readonly users: Array<Domain.UserRow>
  readonly organizations: Array<Domain.OrganizationRow>
  readonly memberships: Array<Domain.MembershipRow>
  /** With the caller's clock reading: the outbox row's `created_at`. */
  readonly notifications: Array<{ readonly audiences: ReadonlyArray<string>; readonly payload: unknown; readonly created_at: string | null }>
}

const emptyWrites = (): Writes => ({ inbox: [], users: [], organizations: [], memberships: [], notifications: [] })

const addPlan = (writes: Writes, plan: Plan.Plan, now: number): void => {
  writes.users.push(...plan.users)
  writes.organizations.push(...plan.organizations)
  writes.memberships.push(...plan.memberships)
  const createdAt = Rows.iso(now)
  for (const n of plan.notifications) writes.notifications.push({ audiences: n.audiences, payload: n.payload, created_at: createdAt })
}

const membershipKey = (m: Domain.MembershipRow) => `${m.userId}|${m.organizationId}`

/** Whether two plans of the writes touch the same row (one statement cannot write a row twice). */
const overlaps = (writes: Writes): boolean =>
  new Set(writes.users.map((u) => u.clerkUserId)).size !== writes.users.length ||
  new Set(writes.organizations.map((o) => o.clerkOrgId)).size !== writes.organizations.length ||
  new Set(writes.memberships.map(membershipKey)).size !== writes.memberships.length ||
  new Set(writes.inbox.map((r) => r.svix_id)).size !== writes.inbox.length

/**
 * Writes, in one statement, the inbox rows (or, when reprocessing, `inboxUpdate`), the rows and
 * the notifications (in order, so outbox ids follow it).
 */
const write = (t: Tables, tx: Transaction, writes: Writes, inboxUpdate?: RawBuilder<unknown>): Effect.Effect<void, DbError> => {
  // One parameter per section: `->` on a json document parses all of it, and the inbox section
  // (whole Clerk payloads) is most of it.
  const inboxJson = toJson(writes.inbox)
  const usersJson = toJson(writes.users.map(Rows.userJson))
  const organizationsJson = toJson(writes.organizations.map(Rows.organizationJson))
  const membershipsJson = toJson(writes.memberships.map(Rows.membershipJson))
  const notificationsJson = toJson(writes.notifications)
  const inbox = inboxUpdate ?? sql`INSERT INTO ${t.inbox} (svix_id, type, payload, status, attempts, error, received_at, processed_at)
      SELECT r.svix_id, r.type, r.payload, r.status, 1, r.error, r.received_at, r.processed_at
      FROM json_to_recordset(${inboxJson}::json) AS r(svix_id text, type text, payload jsonb, status text, error text, received_at timestamptz, processed_at timestamptz)`
  const query = sql<{ notified: string | number }>`${PREPARED_SQL}WITH ib AS (${inbox} RETURNING 1),
    iu AS (
      INSERT INTO ${t.users} AS t (id, clerk_user_id, email, first_name, last_name, username, image_url, public_metadata, placeholder, version, created_at, updated_at, deleted_at, synced_at)
      SELECT r.id, r.clerk_user_id, r.email, r.first_name, r.last_name, r.username, r.image_url, coalesce(r.public_metadata, '{}'), r.placeholder, r.version, r.created_at, r.updated_at, r.deleted_at, now()
      FROM json_to_recordset(${usersJson}::json) AS r(id uuid, clerk_user_id text, email text, first_name text, last_name text, username text, image_url text,
        public_metadata json, placeholder boolean, version text, created_at timestamptz, updated_at timestamptz, deleted_at timestamptz)
      ON CONFLICT (clerk_user_id) DO UPDATE SET email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name,
        username = excluded.username, image_url = excluded.image_url, public_metadata = excluded.public_metadata, placeholder = excluded.placeholder,
        version = excluded.version, created_at = excluded.created_at, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at, synced_at = excluded.synced_at
      RETURNING 1),
    io AS (
      INSERT INTO ${t.organizations} AS t (id, clerk_org_id, name, slug, image_url, public_metadata, placeholder, version, created_at, updated_at, deleted_at, synced_at)
      SELECT r.id, r.clerk_org_id, r.name, r.slug, r.image_url, coalesce(r.public_metadata, '{}'), r.placeholder, r.version, r.created_at, r.updated_at, r.deleted_at, now()
      FROM json_to_recordset(${organizationsJson}::json) AS r(id uuid, clerk_org_id text, name text, slug text, image_url text,
        public_metadata json, placeholder boolean, version text, created_at timestamptz, updated_at timestamptz, deleted_at timestamptz)
      ON CONFLICT (clerk_org_id) DO UPDATE SET name = excluded.name, slug = excluded.slug, image_url = excluded.image_url,
        public_metadata = excluded.public_metadata, placeholder = excluded.placeholder, version = excluded.version,
        created_at = excluded.created_at, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at, synced_at = excluded.synced_at
      RETURNING 1),
    im AS (
      INSERT INTO ${t.memberships} AS t (id, clerk_membership_id, user_id, organization_id, role, permissions, public_metadata, version, created_at, updated_at, deleted_at, synced_at)
      SELECT r.id, r.clerk_membership_id, r.user_id, r.organization_id, r.role, coalesce(r.permissions, '{}'), coalesce(r.public_metadata, '{}'), r.version, r.created_at, r.updated_at, r.deleted_at, now()
      FROM json_to_recordset(${membershipsJson}::json) AS r(id uuid, clerk_membership_id text, user_id uuid, organization_id uuid, role text,
        permissions text[], public_metadata json, version text, created_at timestamptz, updated_at timestamptz, deleted_at timestamptz)
      ON CONFLICT (user_id, organization_id) DO UPDATE SET clerk_membership_id = excluded.clerk_membership_id, role = excluded.role,
        permissions = excluded.permissions, public_metadata = excluded.public_metadata, version = excluded.version,
        created_at = excluded.created_at, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at, synced_at = excluded.synced_at
      RETURNING 1),
    ob AS (
      INSERT INTO ${t.outbox} (audiences, event, payload, created_at)
      SELECT ARRAY(SELECT json_array_elements_text(n.value -> 'audiences')), n.value -> 'payload' ->> 'name', n.value -> 'payload', (n.value ->> 'created_at')::timestamptz
      FROM json_array_elements(${notificationsJson}::json) WITH ORDINALITY AS n(value, ord)
      ORDER BY n.ord
      RETURNING 1)
    SELECT (SELECT count(*) FROM ob) AS notified, (SELECT count(*) FROM ib) AS recorded,
      (SELECT count(*) FROM iu) + (SELECT count(*) FROM io) + (SELECT count(*) FROM im) AS written`
  return Effect.asVoid(tx.run((trx) => query.execute(trx)))
}

/** The plan's own writes, with its rows deduplicated (a plan never repeats one; be safe). */
const writesOf = (plan: Plan.Plan, inbox: Array<InboxRow>, now: number): Writes => {
  const writes: Writes = { ...emptyWrites(), inbox }
  addPlan(writes, {
    ...plan,
    users: lastBy(plan.users, (u: Domain.UserRow) => u.clerkUserId),
    organizations: lastBy(plan.organizations, (o: Domain.OrganizationRow) => o.clerkOrgId),
    memberships: lastBy(plan.memberships, membershipKey)
  }, now)
  return writes
}

const rerunnable = (status: SyncStore.InboxStatus | null | undefined, options: SyncStore.IngestOptions | undefined): boolean =>
  options?.reprocess === true && (status === "failed" || status === "received")

/**
 * One delivery, inside its batch's transaction. Nothing is written before the planner has run, so
 * a planner that throws leaves the transaction clean for the rest of the batch.
 */
const processItem = (t: Tables, tx: Transaction, item: Pending): Effect.Effect<SyncStore.IngestOutcome, DbError | PlanFailed> =>
  Effect.gen(function*() {
    const { request, options, now } = item
    if (request._tag !== "Apply") {
      const outcome: SyncStore.IngestOutcome = request._tag === "Ignore" ? { _tag: "Ignored" } : { _tag: "Failed", error: request.error }
      // The usual case in one round trip: record it unless it is there already.
      const inserted = yield* tx.run((trx) =>
        sql<{ id: string }>`${PREPARED_SQL}${inboxStatement(t, "insert", request, now)} ON CONFLICT (svix_id) DO NOTHING RETURNING id`.execute(trx)
      )
      if (inserted.rows.length > 0) return outcome
      if (options?.reprocess !== true) return { _tag: "Duplicate" } as const
      const existing = yield* tx.run((trx) =>
        sql<{ status: SyncStore.InboxStatus }>`SELECT status FROM ${t.inbox} WHERE svix_id = ${toText(request.inbox.svixId)}`.execute(trx)
      )
      if (!rerunnable(existing.rows[0]?.status, options)) return { _tag: "Duplicate" } as const
      yield* tx.run((trx) => inboxStatement(t, "update", request, now).execute(trx))
      return outcome
    }
    const record = yield* read(t, tx, request)
    if (record.existing !== null && !rerunnable(record.existing, options)) return { _tag: "Duplicate" } as const
    const planned = Result.try(() => request.plan(toSnapshot(record)))
    if (Result.isFailure(planned)) return yield* Effect.fail(new PlanFailed(planned.failure))
    const plan = planned.success
    if (record.existing === null) yield* write(t, tx, writesOf(plan, [inboxRow(request, now)], now))
    else yield* write(t, tx, writesOf(plan, [], now), inboxStatement(t, "update", request, now))
    return processed(plan)
  })

const processed = (plan: Plan.Plan): SyncStore.IngestOutcome => ({
  _tag: "Processed",
  applied: plan.outcome === "applied",
  notifications: plan.notifications.length
})

/** Whether a delivery's plan may end memberships found only by reading (a deletion's fan-out). */
const fansOut = (item: Pending): boolean =>
  item.request._tag === "Apply" && (item.request.scope.membershipsOfUsers.length > 0 || item.request.scope.membershipsOfOrganizations.length > 0)

interface BulkRecord extends SnapshotRecord {
  readonly i: number
}

/**
 * Whether each delivery is in the inbox already, and the snapshot of each one's scope, in one
 * round trip for the whole batch (the same reads as {@link read}, per delivery, without the
 * fan-outs: deliveries that fan out are not read in bulk).
 */
const readAll = (t: Tables, tx: Transaction, items: ReadonlyArray<Pending>): Effect.Effect<ReadonlyArray<BulkRecord>, DbError> => {
  const requests = items.map(({ request }, i) => {
    const s = request._tag === "Apply" ? scopeArrays(request.scope) : undefined
    return { i, svix_id: request.inbox.svixId, users: s?.users ?? [], organizations: s?.organizations ?? [], pu: s?.pu ?? [], po: s?.po ?? [] }
  })
  const query = sql<BulkRecord>`${PREPARED_SQL}WITH req AS (
      SELECT r.i, r.svix_id, r.users, r.organizations, r.pu, r.po
      FROM json_to_recordset(${toJson(requests)}::json) AS r(i integer, svix_id text, users text[], organizations text[], pu text[], po text[])
    ), m AS (
      SELECT req.i, m.id, m.clerk_membership_id, m.user_id, m.organization_id, u.clerk_user_id, o.clerk_org_id, m.role, m.permissions,
        m.public_metadata, m.version, m.created_at, m.updated_at, m.deleted_at
      FROM req CROSS JOIN LATERAL ${membershipsById(t, pairMembershipIdsOf(t, sql`req.pu`, sql`req.po`))}
    )
    SELECT req.i,
      (SELECT status FROM ${t.inbox} WHERE svix_id = req.svix_id) AS existing,
      (SELECT json_agg(m) FROM m WHERE m.i = req.i) AS memberships,
      ${rowsById(t.users, sql`${userIdsOf(t, sql`req.users`)} UNION ALL SELECT user_id FROM m WHERE m.i = req.i`)} AS users,
      ${rowsById(t.organizations, sql`${organizationIdsOf(t, sql`req.organizations`)} UNION ALL SELECT organization_id FROM m WHERE m.i = req.i`)} AS organizations
    FROM req ORDER BY req.i`
  return Effect.map(tx.run((trx) => query.execute(trx)), (r) => r.rows)
}

/**
 * The waves of a batch: each delivery goes in the wave after the last one holding any of its lock
 * keys, so a wave's deliveries have disjoint keys, and deliveries sharing a key keep their order.
 */
const wavesOf = (schema: string, items: ReadonlyArray<Pending>): Array<Array<number>> => {
  const waves: Array<Array<number>> = []
  const lastWave = new Map<string, number>()
  items.forEach((item, i) => {
    const keys = lockKeys(schema, [item])
    const wave = keys.reduce((w, k) => Math.max(w, (lastWave.get(k) ?? -1) + 1), 0)
    for (const k of keys) lastWave.set(k, wave)
    ;(waves[wave] ??= []).push(i)
  })
  return waves
}

/**
 * A batch, wave by wave. Deliveries with disjoint lock keys read and write disjoint rows, so a
 * wave needs two round trips in all: one read for every snapshot, one write for every plan.
 * Deliveries that fan out (deletions: the memberships they end are found by reading, and two of
 * them may end the same one), and reprocessing, go one by one after their wave's bulk; so does a
 * whole wave if two of its plans turn out to write one row (never, if the keys are right: a safety
 * net, not a path).
 */
const processMany = (schema: string, t: Tables, tx: Transaction, items: ReadonlyArray<Pending>): Effect.Effect<Array<ItemResult>, DbError> =>
  Effect.gen(function*() {
    const results: Array<ItemResult> = []
    const one = (i: number) =>
      processItem(t, tx, items[i]!).pipe(
        Effect.map((outcome): ItemResult => ({ _tag: "Done", outcome })),
        Effect.catchTag("PlanFailed", (failure) => Effect.succeed<ItemResult>({ _tag: "PlanFailed", cause: failure.cause })),
        Effect.map((result) => void (results[i] = result))
      )
    for (const wave of wavesOf(schema, items)) {
      const alone = wave.filter((i) => fansOut(items[i]!) || items[i]!.options?.reprocess === true)
      const bulk = wave.filter((i) => !alone.includes(i))
      if (bulk.length > 1) {
        const records = yield* readAll(t, tx, bulk.map((i) => items[i]!))
        const writes = emptyWrites()
        const planned: Array<[number, ItemResult]> = []
        for (const record of records) {
          const i = bulk[record.i]!
          const { request, now } = items[i]!
          if (record.existing !== null) {
            planned.push([i, { _tag: "Done", outcome: { _tag: "Duplicate" } }])
          } else if (request._tag !== "Apply") {
            writes.inbox.push(inboxRow(request, now))
            planned.push([i, { _tag: "Done", outcome: request._tag === "Ignore" ? { _tag: "Ignored" } : { _tag: "Failed", error: request.error } }])
          } else {
            const plan = Result.try(() => request.plan(toSnapshot(record)))
            if (Result.isFailure(plan)) {
              planned.push([i, { _tag: "PlanFailed", cause: plan.failure }])
              continue
            }
            const own = writesOf(plan.success, [inboxRow(request, now)], now)
            writes.inbox.push(...own.inbox)
            writes.users.push(...own.users)
            writes.organizations.push(...own.organizations)
            writes.memberships.push(...own.memberships)
            writes.notifications.push(...own.notifications)
            planned.push([i, { _tag: "Done", outcome: processed(plan.success) }])
          }
        }
        if (overlaps(writes)) {
          yield* Effect.forEach(bulk, one, { discard: true })
        } else {
          if (writes.inbox.length > 0) yield* write(t, tx, writes)
          for (const [i, result] of planned) results[i] = result
        }
      } else {
        yield* Effect.forEach(bulk, one, { discard: true })
      }
      yield* Effect.forEach(alone, one, { discard: true })
    }
    return results
  })

/** Takes the batch's locks: advisory locks in lock order, then the fanned-out membership rows. */
const lock = (db: Database, t: Tables, tx: Transaction, items: ReadonlyArray<Pending>): Effect.Effect<void, DbError> =>
  Effect.gen(function*() {
    const keys = lockKeys(db.schema, items)
    yield* tx.run((trx) =>
      sql`${PREPARED_SQL}SELECT pg_advisory_xact_lock(s.h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(${keys}::text[]) AS k) AS s ORDER BY s.h`
        .execute(trx)
    )
    const mu = new Set<string>()
    const mo = new Set<string>()
    for (const { request } of items) {
      if (request._tag !== "Apply") continue
      for (const u of request.scope.membershipsOfUsers) mu.add(toText(u))
      for (const o of request.scope.membershipsOfOrganizations) mo.add(toText(o))
    }
    const ids = membershipIds(t, { mu: [...mu], mo: [...mo], pu: [], po: [] })
    if (ids !== undefined) {
      // Not prepared: deletions are rare, and a plan cached while the table was small would scan it.
      yield* tx.run((trx) => sql`SELECT id FROM ${t.memberships} WHERE id = ANY(ARRAY(${ids})) ORDER BY id FOR UPDATE`.execute(trx))
    }
  })

/**
 * Runs deliveries in one transaction, one after the other. A planner that throws fails its own
 * delivery only (it wrote nothing). A statement that fails aborts the transaction, and so fails
 * the batch: see {@link runBatch}.
 */
const runOnce = (db: Database, items: ReadonlyArray<Pending>): Effect.Effect<ReadonlyArray<ItemResult>, DbError | PlanFailed> => {
  const t = tables(db.schema)
  return db.transaction((tx) =>
    Effect.gen(function*() {
      yield* lock(db, t, tx, items)
      if (items.length === 1) return [{ _tag: "Done", outcome: yield* processItem(t, tx, items[0]!) }] as const
      return yield* processMany(db.schema, t, tx, items)
    })
  )
}

/** {@link runOnce}, retried after deadlocks and serialization failures. */
export const runBatch = (db: Database, items: ReadonlyArray<Pending>): Effect.Effect<ReadonlyArray<ItemResult>, DbError | PlanFailed> =>
  Effect.retry(runOnce(db, items), { times: RETRIES, while: (e) => e._tag === "DbError" && isRetryable(e) })
