/**
 * The ingest transaction: record the delivery in the inbox, lock and read the planner's scope, run
 * the pure planner, write its rows and outbox notifications, set the inbox status. One delivery,
 * or a batch of them sharing a transaction (group commit), each in its own savepoint.
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
import { toJson, toText, toTextOrNull } from "./text.ts"

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
  | { readonly _tag: "PlanFailed"; readonly cause: unknown }
  /** Failed inside its savepoint (the rest of the batch went on): retry it alone. */
  | { readonly _tag: "Failed"; readonly error: DbError }

/** How many times a transaction is retried after a deadlock or serialization failure. */
const RETRIES = 5

const statusOf = (request: SyncStore.IngestRequest): SyncStore.InboxStatus =>
  request._tag === "Apply" ? "processed" : request._tag === "Ignore" ? "ignored" : "failed"

const unique = (values: Iterable<string>): Array<string> => [...new Set(values)]

/** The advisory lock keys of a batch (hashed and sorted by the lock statement). */
const lockKeys = (schema: string, items: ReadonlyArray<Pending>): Array<string> => {
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

/** The ids of the membership rows a scope reads: of users, of organizations, of pairs. */
const membershipIds = (t: Tables, scope: { readonly mu: Array<string>; readonly mo: Array<string>; readonly pu: Array<string>; readonly po: Array<string> }) => {
  const parts: Array<RawBuilder<unknown>> = []
  if (scope.mu.length > 0) {
    parts.push(sql`SELECT m.id FROM ${t.users} u JOIN ${t.memberships} m ON m.user_id = u.id WHERE u.clerk_user_id = ANY(${scope.mu}::text[])`)
  }
  if (scope.mo.length > 0) {
    parts.push(sql`SELECT m.id FROM ${t.organizations} o JOIN ${t.memberships} m ON m.organization_id = o.id WHERE o.clerk_org_id = ANY(${scope.mo}::text[])`)
  }
  if (scope.pu.length > 0) {
    parts.push(sql`SELECT m.id FROM unnest(${scope.pu}::text[], ${scope.po}::text[]) AS p(cu, co)
      JOIN ${t.users} u ON u.clerk_user_id = p.cu
      JOIN ${t.organizations} o ON o.clerk_org_id = p.co
      JOIN ${t.memberships} m ON m.user_id = u.id AND m.organization_id = o.id`)
  }
  return parts.length === 0 ? undefined : sql.join(parts, sql` UNION `)
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
  readonly inserted: number | string
  readonly memberships: ReadonlyArray<Rows.MembershipRecord> | string | null
  readonly users: ReadonlyArray<Rows.UserRecord> | string | null
  readonly organizations: ReadonlyArray<Rows.OrganizationRecord> | string | null
}

const jsonArray = <A>(value: ReadonlyArray<A> | string | null): ReadonlyArray<A> =>
  value === null ? [] : typeof value === "string" ? (JSON.parse(value) as ReadonlyArray<A>) : value

/**
 * Inserts the inbox row (final status, since everything commits together) and, for an `Apply`,
 * reads the snapshot in the same round trip. `inserted = 0` means the svix-id was already there.
 */
const recordAndRead = (t: Tables, tx: Transaction, item: Pending): Effect.Effect<SnapshotRecord, DbError> => {
  const { request, now } = item
  const inbox = request.inbox
  const insert = sql`INSERT INTO ${t.inbox} (svix_id, type, payload, status, attempts, error, received_at, processed_at)
    VALUES (${toText(inbox.svixId)}, ${toText(inbox.type)}, ${toJson(inbox.payload)}::jsonb, ${statusOf(request)}, 1,
      ${request._tag === "Fail" ? toText(request.error) : null}, ${Rows.iso(inbox.receivedAt)}::timestamptz, ${Rows.iso(now)}::timestamptz)
    ON CONFLICT (svix_id) DO NOTHING RETURNING id`
  if (request._tag !== "Apply") {
    return Effect.map(
      tx.run((trx) => sql<SnapshotRecord>`WITH ins AS (${insert}) SELECT count(*) AS inserted, NULL AS memberships, NULL AS users, NULL AS organizations FROM ins`.execute(trx)),
      (r) => r.rows[0]!
    )
  }
  return Effect.map(tx.run((trx) => snapshotQuery(t, scopeArrays(request.scope), insert).execute(trx)), (r) => r.rows[0]!)
}

const snapshotQuery = (t: Tables, s: ReturnType<typeof scopeArrays>, insert: RawBuilder<unknown> | undefined) => {
  const ids = membershipIds(t, s)
  const ins = insert === undefined ? sql`SELECT 1 AS id WHERE false` : insert
  const m = ids === undefined
    ? sql`SELECT NULL::uuid AS id, NULL::uuid AS user_id, NULL::uuid AS organization_id WHERE false`
    : sql`SELECT m.id, m.clerk_membership_id, m.user_id, m.organization_id, u.clerk_user_id, o.clerk_org_id, m.role, m.permissions,
          m.public_metadata, m.version, m.created_at, m.updated_at, m.deleted_at
        FROM ${t.memberships} m JOIN ${t.users} u ON u.id = m.user_id JOIN ${t.organizations} o ON o.id = m.organization_id
        WHERE m.id IN (${ids})`
  return sql<SnapshotRecord>`WITH ins AS (${ins}), m AS (${m})
    SELECT
      (SELECT count(*) FROM ins) AS inserted,
      (SELECT json_agg(m) FROM m) AS memberships,
      (SELECT json_agg(u) FROM ${t.users} u WHERE u.clerk_user_id = ANY(${s.users}::text[]) OR u.id IN (SELECT user_id FROM m)) AS users,
      (SELECT json_agg(o) FROM ${t.organizations} o WHERE o.clerk_org_id = ANY(${s.organizations}::text[]) OR o.id IN (SELECT organization_id FROM m)) AS organizations`
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

/** Writes a plan's rows and notifications in one statement; returns how many notifications. */
const writePlan = (t: Tables, tx: Transaction, plan: Plan.Plan, now: number): Effect.Effect<number, DbError> => {
  const users = lastBy(plan.users, (u: Domain.UserRow) => u.clerkUserId)
  const organizations = lastBy(plan.organizations, (o: Domain.OrganizationRow) => o.clerkOrgId)
  const memberships = lastBy(plan.memberships, (m: Domain.MembershipRow) => `${m.userId}|${m.organizationId}`)
  if (users.length + organizations.length + memberships.length + plan.notifications.length === 0) return Effect.succeed(0)
  const payload = toJson({
    users: users.map(Rows.userJson),
    organizations: organizations.map(Rows.organizationJson),
    memberships: memberships.map(Rows.membershipJson),
    notifications: plan.notifications
  })
  const query = sql<{ notified: string | number }>`WITH p AS (SELECT ${payload}::json AS j),
    iu AS (
      INSERT INTO ${t.users} AS t (id, clerk_user_id, email, first_name, last_name, username, image_url, public_metadata, placeholder, version, created_at, updated_at, deleted_at, synced_at)
      SELECT r.id, r.clerk_user_id, r.email, r.first_name, r.last_name, r.username, r.image_url, coalesce(r.public_metadata, '{}'), r.placeholder, r.version, r.created_at, r.updated_at, r.deleted_at, now()
      FROM p, json_to_recordset(p.j -> 'users') AS r(id uuid, clerk_user_id text, email text, first_name text, last_name text, username text, image_url text,
        public_metadata json, placeholder boolean, version text, created_at timestamptz, updated_at timestamptz, deleted_at timestamptz)
      ON CONFLICT (clerk_user_id) DO UPDATE SET email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name,
        username = excluded.username, image_url = excluded.image_url, public_metadata = excluded.public_metadata, placeholder = excluded.placeholder,
        version = excluded.version, created_at = excluded.created_at, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at, synced_at = excluded.synced_at
      RETURNING 1),
    io AS (
      INSERT INTO ${t.organizations} AS t (id, clerk_org_id, name, slug, image_url, public_metadata, placeholder, version, created_at, updated_at, deleted_at, synced_at)
      SELECT r.id, r.clerk_org_id, r.name, r.slug, r.image_url, coalesce(r.public_metadata, '{}'), r.placeholder, r.version, r.created_at, r.updated_at, r.deleted_at, now()
      FROM p, json_to_recordset(p.j -> 'organizations') AS r(id uuid, clerk_org_id text, name text, slug text, image_url text,
        public_metadata json, placeholder boolean, version text, created_at timestamptz, updated_at timestamptz, deleted_at timestamptz)
      ON CONFLICT (clerk_org_id) DO UPDATE SET name = excluded.name, slug = excluded.slug, image_url = excluded.image_url,
        public_metadata = excluded.public_metadata, placeholder = excluded.placeholder, version = excluded.version,
        created_at = excluded.created_at, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at, synced_at = excluded.synced_at
      RETURNING 1),
    im AS (
      INSERT INTO ${t.memberships} AS t (id, clerk_membership_id, user_id, organization_id, role, permissions, public_metadata, version, created_at, updated_at, deleted_at, synced_at)
      SELECT r.id, r.clerk_membership_id, r.user_id, r.organization_id, r.role, coalesce(r.permissions, '{}'), coalesce(r.public_metadata, '{}'), r.version, r.created_at, r.updated_at, r.deleted_at, now()
      FROM p, json_to_recordset(p.j -> 'memberships') AS r(id uuid, clerk_membership_id text, user_id uuid, organization_id uuid, role text,
        permissions text[], public_metadata json, version text, created_at timestamptz, updated_at timestamptz, deleted_at timestamptz)
      ON CONFLICT (user_id, organization_id) DO UPDATE SET clerk_membership_id = excluded.clerk_membership_id, role = excluded.role,
        permissions = excluded.permissions, public_metadata = excluded.public_metadata, version = excluded.version,
        created_at = excluded.created_at, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at, synced_at = excluded.synced_at
      RETURNING 1),
    ob AS (
      INSERT INTO ${t.outbox} (audiences, event, payload, created_at)
      SELECT ARRAY(SELECT json_array_elements_text(n.value -> 'audiences')), n.value -> 'payload' ->> 'name', n.value -> 'payload', ${Rows.iso(now)}::timestamptz
      FROM p, json_array_elements(p.j -> 'notifications') WITH ORDINALITY AS n(value, ord)
      ORDER BY n.ord
      RETURNING 1)
    SELECT (SELECT count(*) FROM ob) AS notified,
      (SELECT count(*) FROM iu) + (SELECT count(*) FROM io) + (SELECT count(*) FROM im) AS written`
  return Effect.map(tx.run((trx) => query.execute(trx)), (r) => Number(r.rows[0]!.notified))
}

/** One delivery, inside the batch's transaction (and its own savepoint when batched). */
const processItem = (t: Tables, tx: Transaction, item: Pending): Effect.Effect<SyncStore.IngestOutcome, DbError | PlanFailed> =>
  Effect.gen(function*() {
    const { request, options, now } = item
    const record = yield* recordAndRead(t, tx, item)
    let rerun = false
    if (Number(record.inserted) === 0) {
      if (options?.reprocess !== true) return { _tag: "Duplicate" } as const
      const existing = yield* tx.run((trx) =>
        sql<{ status: SyncStore.InboxStatus }>`SELECT status FROM ${t.inbox} WHERE svix_id = ${toText(request.inbox.svixId)} FOR UPDATE`.execute(trx)
      )
      const status = existing.rows[0]?.status
      if (status !== "failed" && status !== "received") return { _tag: "Duplicate" } as const
      rerun = true
    }
    let outcome: SyncStore.IngestOutcome
    switch (request._tag) {
      case "Ignore":
        outcome = { _tag: "Ignored" }
        break
      case "Fail":
        outcome = { _tag: "Failed", error: request.error }
        break
      case "Apply": {
        const snapshot = toSnapshot(record)
        const planned = Result.try(() => request.plan(snapshot))
        if (Result.isFailure(planned)) return yield* Effect.fail(new PlanFailed(planned.failure))
        const plan = planned.success
        const notifications = yield* writePlan(t, tx, plan, now)
        outcome = { _tag: "Processed", applied: plan.outcome === "applied", notifications }
        break
      }
    }
    if (rerun) {
      const inbox = request.inbox
      yield* tx.run((trx) =>
        sql`UPDATE ${t.inbox} SET type = ${toText(inbox.type)}, payload = ${toJson(inbox.payload)}::jsonb, status = ${statusOf(request)},
          attempts = attempts + 1, error = ${request._tag === "Fail" ? toTextOrNull(request.error) : null},
          received_at = ${Rows.iso(inbox.receivedAt)}::timestamptz, processed_at = ${Rows.iso(now)}::timestamptz
          WHERE svix_id = ${toText(inbox.svixId)}`.execute(trx)
      )
    }
    return outcome
  })

/** Takes the batch's locks: advisory locks in lock order, then the fanned-out membership rows. */
const lock = (db: Database, t: Tables, tx: Transaction, items: ReadonlyArray<Pending>): Effect.Effect<void, DbError> =>
  Effect.gen(function*() {
    const keys = lockKeys(db.schema, items)
    yield* tx.run((trx) =>
      sql`SELECT pg_advisory_xact_lock(s.h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(${keys}::text[]) AS k) AS s ORDER BY s.h`
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
      yield* tx.run((trx) => sql`SELECT id FROM ${t.memberships} WHERE id IN (${ids}) ORDER BY id FOR UPDATE`.execute(trx))
    }
  })

const SAVEPOINT = sql.raw("SAVEPOINT clerk_sync_event")
const RELEASE = sql.raw("RELEASE SAVEPOINT clerk_sync_event")
const ROLLBACK_TO = sql.raw("ROLLBACK TO SAVEPOINT clerk_sync_event")

/**
 * Runs a batch in one transaction. A batch of one has no savepoint: any failure fails the
 * transaction. In a larger batch, a delivery that fails is rolled back to its savepoint and
 * reported, and the others commit.
 */
const runOnce = (db: Database, items: ReadonlyArray<Pending>): Effect.Effect<ReadonlyArray<ItemResult>, DbError | PlanFailed> => {
  const t = tables(db.schema)
  return db.transaction((tx) =>
    Effect.gen(function*() {
      yield* lock(db, t, tx, items)
      if (items.length === 1) {
        const outcome = yield* processItem(t, tx, items[0]!)
        return [{ _tag: "Done", outcome }] as const
      }
      const results: Array<ItemResult> = []
      for (const item of items) {
        yield* tx.run((trx) => SAVEPOINT.execute(trx))
        const result = yield* Effect.result(processItem(t, tx, item))
        if (Result.isSuccess(result)) {
          yield* tx.run((trx) => RELEASE.execute(trx))
          results.push({ _tag: "Done", outcome: result.success })
        } else {
          yield* tx.run((trx) => ROLLBACK_TO.execute(trx))
          yield* tx.run((trx) => RELEASE.execute(trx))
          const failure = result.failure
          results.push(failure._tag === "PlanFailed" ? { _tag: "PlanFailed", cause: failure.cause } : { _tag: "Failed", error: failure })
        }
      }
      return results
    })
  )
}

/** {@link runOnce}, retried after deadlocks and serialization failures. */
export const runBatch = (db: Database, items: ReadonlyArray<Pending>): Effect.Effect<ReadonlyArray<ItemResult>, DbError | PlanFailed> =>
  Effect.retry(runOnce(db, items), { times: RETRIES, while: (e) => e._tag === "DbError" && isRetryable(e) })
