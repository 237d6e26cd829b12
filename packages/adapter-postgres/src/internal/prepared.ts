/**
 * Prepared statements for the store's hot path, under Kysely.
 *
 * The ingest statements are big (CTEs over JSON, upserts, joins): parsing and planning them costs
 * the server more than executing them. Kysely sends every query unnamed, so the server parses and
 * plans each one afresh. This wraps the `pg` pool Kysely uses: a query whose text starts with
 * {@link PREPARED} is sent as a named statement (named after a hash of its text), which `pg`
 * prepares once per connection and then only binds and executes. Only the store's own, fixed
 * statements carry the marker, so the number of statements per connection stays small; every
 * other query goes through untouched.
 */
import { createHash } from "node:crypto"
import type { PostgresPool, PostgresPoolClient } from "kysely"
import type pg from "pg"

/** The marker that asks for a prepared statement. */
export const PREPARED = "/* clerk-sync */ "

const names = new Map<string, string>()
const nameOf = (text: string): string => {
  let name = names.get(text)
  if (name === undefined) {
    name = `clerk_sync_${createHash("sha1").update(text).digest("hex").slice(0, 24)}`
    names.set(text, name)
  }
  return name
}

export const preparingPool = (pool: pg.Pool): PostgresPool => {
  const wrapped = new WeakMap<pg.PoolClient, PostgresPoolClient>()
  const wrap = (client: pg.PoolClient): PostgresPoolClient => {
    let w = wrapped.get(client)
    if (w === undefined) {
      const query = (text: unknown, values?: ReadonlyArray<unknown>): unknown =>
        typeof text === "string" && text.startsWith(PREPARED)
          ? client.query({ name: nameOf(text), text, values: values as Array<unknown> })
          : client.query(text as string, values as Array<unknown>)
      w = {
        query: query as unknown as PostgresPoolClient["query"],
        release: (destroy?: boolean) => client.release(destroy),
        get processID() {
          return (client as unknown as { processID?: number }).processID
        }
      } as PostgresPoolClient
      wrapped.set(client, w)
    }
    return w
  }
  return {
    Client: (pool as unknown as { Client: NonNullable<PostgresPool["Client"]> }).Client,
    options: pool.options,
    connect: async () => wrap(await pool.connect()),
    end: () => pool.end()
  }
}
