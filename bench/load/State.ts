/**
 * Expected and actual final states, and how many entities differ.
 *
 * - The expected state is clerk-sync's canonical state after the history is applied once, in
 *   history order, on the core's in-memory store (the same reference the property tests use).
 * - clerk-sync's actual state is read through its own store from the server's database, in bulk.
 * - The baseline keeps other tables: both are compared on a common projection — each user and
 *   organization by Clerk id (deleted or not; if not, its email, names / name) and each live
 *   membership by (user, organization) with its role — which is what an app reads.
 */
import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { Domain, Ingest, MemoryStore, SyncStore } from "@clerk-sync/core"
import { Effect } from "effect"
import pg from "pg"
import type { Delivery } from "./Sender.ts"

export interface CanonicalState {
  readonly users: Readonly<Record<string, unknown>>
  readonly organizations: Readonly<Record<string, unknown>>
  readonly memberships: Readonly<Record<string, unknown>>
}

const ALL = 1_000_000_000

/** The canonical state of a whole store (internal ids left out, ended memberships left out). */
export const canonical: Effect.Effect<CanonicalState, SyncStore.StorageUnavailable, SyncStore.SyncStore> = Effect.gen(function*() {
  const store = yield* SyncStore.SyncStore
  const users: Record<string, unknown> = {}
  const organizations: Record<string, unknown> = {}
  const memberships: Record<string, unknown> = {}
  for (const { id: _, ...rest } of yield* store.listUsers(ALL)) users[rest.clerkUserId] = rest
  for (const { id: _, ...rest } of yield* store.listOrganizations(ALL)) organizations[rest.clerkOrgId] = rest
  for (const m of yield* store.listMemberships(ALL)) {
    if (!Domain.isLive(m)) continue
    const { id: _, userId: __, organizationId: ___, ...rest } = m
    memberships[`${m.clerkUserId}|${m.clerkOrgId}`] = rest
  }
  return { users, organizations, memberships }
})

/** The state after applying `events` once, in order, on the in-memory store. */
export const expected = (events: ReadonlyArray<Delivery>): Promise<CanonicalState> =>
  Effect.runPromise(
    Effect.gen(function*() {
      for (const e of events) yield* Ingest.ingest(e)
      return yield* canonical
    }).pipe(Effect.provide(MemoryStore.layer))
  )

/** clerk-sync's state in a database. */
export const readClerkSync = (url: string, schema?: string): Promise<CanonicalState> =>
  Effect.runPromise(
    canonical.pipe(Effect.provide(PostgresStore.layerPg({ connectionString: url, migrate: false, groupCommit: false, poolSize: 2, ...(schema ? { schema } : {}) })))
  )

/** What an app reads: the common projection of both servers' tables. */
export interface Projection {
  readonly users: Readonly<Record<string, string>>
  readonly organizations: Readonly<Record<string, string>>
  readonly memberships: Readonly<Record<string, string>>
}

const userKey = (deleted: boolean, email: string | null, first: string | null, last: string | null) =>
  deleted ? "deleted" : JSON.stringify([email, first, last])
const orgKey = (deleted: boolean, name: string) => (deleted ? "deleted" : JSON.stringify([name]))

/** The projection of a canonical state. */
export const project = (state: CanonicalState): Projection => {
  const users: Record<string, string> = {}
  const organizations: Record<string, string> = {}
  const memberships: Record<string, string> = {}
  for (const [id, u] of Object.entries(state.users) as Array<[string, Omit<Domain.UserRow, "id">]>) {
    users[id] = userKey(u.deletedAt !== null, u.email, u.firstName, u.lastName)
  }
  for (const [id, o] of Object.entries(state.organizations) as Array<[string, Omit<Domain.OrganizationRow, "id">]>) {
    organizations[id] = orgKey(o.deletedAt !== null, o.name)
  }
  for (const [pair, m] of Object.entries(state.memberships) as Array<[string, { readonly role: string }]>) memberships[pair] = m.role
  return { users, organizations, memberships }
}

const query = async <R extends pg.QueryResultRow>(url: string, text: string): Promise<Array<R>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<R>(text)).rows
  } finally {
    await client.end()
  }
}

/** The baseline's tables, projected. */
export const readBaseline = async (url: string): Promise<Projection> => {
  const users: Record<string, string> = {}
  const organizations: Record<string, string> = {}
  const memberships: Record<string, string> = {}
  for (const u of await query<{ clerk_user_id: string; email: string | null; first_name: string | null; last_name: string | null; deleted_at: Date | null }>(url, "SELECT clerk_user_id, email, first_name, last_name, deleted_at FROM users")) {
    users[u.clerk_user_id] = userKey(u.deleted_at !== null, u.email, u.first_name, u.last_name)
  }
  for (const o of await query<{ clerk_org_id: string; name: string; deleted_at: Date | null }>(url, "SELECT clerk_org_id, name, deleted_at FROM organizations")) {
    organizations[o.clerk_org_id] = orgKey(o.deleted_at !== null, o.name)
  }
  for (const m of await query<{ u: string; o: string; role: string }>(
    url,
    "SELECT u.clerk_user_id AS u, o.clerk_org_id AS o, m.role FROM user_organizations m JOIN users u ON u.id = m.user_id JOIN organizations o ON o.id = m.organization_id"
  )) memberships[`${m.u}|${m.o}`] = m.role
  return { users, organizations, memberships }
}

/** Stable JSON (keys sorted), for comparing rows read from different stores. */
export const stable = (value: unknown): string =>
  JSON.stringify(value, (_, v) =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v)

export interface Diff {
  /** Entities (users, organizations, live memberships) whose state differs, missing or extra ones included. */
  readonly count: number
  readonly examples: ReadonlyArray<string>
}

/** Compares two states (canonical states or projections) entity by entity. */
export const diff = (expectedState: CanonicalState | Projection, actual: CanonicalState | Projection): Diff => {
  let count = 0
  const examples: Array<string> = []
  for (const part of ["users", "organizations", "memberships"] as const) {
    const a = expectedState[part] as Record<string, unknown>
    const b = actual[part] as Record<string, unknown>
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const x = key in a ? stable(a[key]) : "(absent)"
      const y = key in b ? stable(b[key]) : "(absent)"
      if (x !== y) {
        count++
        if (examples.length < 5) examples.push(`${part} ${key}: expected ${x.slice(0, 200)}, got ${y.slice(0, 200)}`)
      }
    }
  }
  return { count, examples }
}
