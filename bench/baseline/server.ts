/**
 * The baseline: the webhook server the seeds describe, written by hand the way most teams write it
 * (and competently: raw body verified with `svix`, one pooled connection and one transaction per
 * request, the event recorded in `clerk_webhook_events` and a redelivered `svix-id` skipped, prepared
 * upserts, a pool of the same size as clerk-sync's, Socket.IO on the same port).
 *
 * What it does not do is what the seeds do not describe: no versions (the last delivery wins),
 * deletion is a soft delete that a late `created`/`updated` can undo, a membership whose user or
 * organization is not there yet fails (500, so Svix retries it), and every notification is
 * `io.emit`ted to every connected client.
 *
 * Run: `DATABASE_URL=… CLERK_WEBHOOK_SIGNING_SECRET=whsec_… PORT=3100 tsx bench/baseline/server.ts`
 */
import express from "express"
import { createServer } from "node:http"
import pg from "pg"
import { Server } from "socket.io"
import { Webhook } from "svix"

export const SCHEMA = `
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE IF NOT EXISTS users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  clerk_user_id text NOT NULL UNIQUE,
  email text, first_name text, last_name text, image_url text,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz
);
CREATE INDEX IF NOT EXISTS users_email_idx ON users (email);
CREATE TABLE IF NOT EXISTS organizations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  clerk_org_id text NOT NULL UNIQUE,
  name text NOT NULL, slug text, image_url text,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz
);
CREATE TABLE IF NOT EXISTS user_organizations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users (id),
  organization_id uuid NOT NULL REFERENCES organizations (id),
  role text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, organization_id)
);
CREATE INDEX IF NOT EXISTS user_organizations_org_idx ON user_organizations (organization_id);
CREATE TABLE IF NOT EXISTS clerk_webhook_events (
  id bigserial PRIMARY KEY,
  svix_id text NOT NULL UNIQUE,
  type text NOT NULL,
  payload jsonb NOT NULL,
  status text NOT NULL DEFAULT 'received',
  error text,
  received_at timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz
);
CREATE INDEX IF NOT EXISTS clerk_webhook_events_unprocessed_idx ON clerk_webhook_events (received_at) WHERE status <> 'processed';
`

type Json = Record<string, any>

interface Notify {
  readonly name: string
  readonly data: unknown
}

const primaryEmail = (d: Json): string | null =>
  (d.email_addresses as Array<Json> | undefined)?.find((e) => e.id === d.primary_email_address_id)?.email_address ?? null

/** Applies one event inside the request's transaction; returns what to broadcast. */
const apply = async (db: pg.PoolClient, type: string, d: Json): Promise<Notify | null> => {
  switch (type) {
    case "user.created":
    case "user.updated": {
      const { rows } = await db.query({
        name: "upsert_user",
        text: `INSERT INTO users (clerk_user_id, email, first_name, last_name, image_url) VALUES ($1, $2, $3, $4, $5)
          ON CONFLICT (clerk_user_id) DO UPDATE SET email = EXCLUDED.email, first_name = EXCLUDED.first_name,
            last_name = EXCLUDED.last_name, image_url = EXCLUDED.image_url, updated_at = now()
          RETURNING id, clerk_user_id, email, first_name, last_name, image_url`,
        values: [d.id, primaryEmail(d), d.first_name ?? null, d.last_name ?? null, d.image_url ?? null]
      })
      return { name: type, data: { user: rows[0] } }
    }
    case "user.deleted": {
      const { rows } = await db.query({ name: "delete_user", text: "UPDATE users SET deleted_at = now() WHERE clerk_user_id = $1 RETURNING id", values: [d.id] })
      if (rows[0]) await db.query({ name: "delete_user_memberships", text: "DELETE FROM user_organizations WHERE user_id = $1", values: [rows[0].id] })
      return { name: type, data: { user: { clerk_user_id: d.id } } }
    }
    case "organization.created":
    case "organization.updated": {
      const { rows } = await db.query({
        name: "upsert_org",
        text: `INSERT INTO organizations (clerk_org_id, name, slug, image_url) VALUES ($1, $2, $3, $4)
          ON CONFLICT (clerk_org_id) DO UPDATE SET name = EXCLUDED.name, slug = EXCLUDED.slug, image_url = EXCLUDED.image_url, updated_at = now()
          RETURNING id, clerk_org_id, name, slug, image_url`,
        values: [d.id, d.name, d.slug ?? null, d.image_url ?? null]
      })
      return { name: type, data: { organization: rows[0] } }
    }
    case "organization.deleted": {
      const { rows } = await db.query({ name: "delete_org", text: "UPDATE organizations SET deleted_at = now() WHERE clerk_org_id = $1 RETURNING id", values: [d.id] })
      if (rows[0]) await db.query({ name: "delete_org_memberships", text: "DELETE FROM user_organizations WHERE organization_id = $1", values: [rows[0].id] })
      return { name: type, data: { organization: { clerk_org_id: d.id } } }
    }
    case "organizationMembership.created":
    case "organizationMembership.updated": {
      const userId = d.public_user_data?.user_id
      const orgId = d.organization?.id
      const { rows } = await db.query({
        name: "upsert_membership",
        text: `INSERT INTO user_organizations (user_id, organization_id, role)
          SELECT u.id, o.id, $3 FROM users u, organizations o WHERE u.clerk_user_id = $1 AND o.clerk_org_id = $2
          ON CONFLICT (user_id, organization_id) DO UPDATE SET role = EXCLUDED.role, updated_at = now()
          RETURNING id, role`,
        values: [userId, orgId, d.role]
      })
      if (rows.length === 0) throw new Error(`user ${userId} or organization ${orgId} not synced yet`)
      const name = type === "organizationMembership.created" ? "membership.created" : "membership.updated"
      return { name, data: { membership: rows[0], userId, organizationId: orgId, newRole: d.role } }
    }
    case "organizationMembership.deleted": {
      await db.query({
        name: "delete_membership",
        text: `DELETE FROM user_organizations m USING users u, organizations o
          WHERE m.user_id = u.id AND m.organization_id = o.id AND u.clerk_user_id = $1 AND o.clerk_org_id = $2`,
        values: [d.public_user_data?.user_id, d.organization?.id]
      })
      return { name: "membership.deleted", data: { userId: d.public_user_data?.user_id, organizationId: d.organization?.id } }
    }
    default:
      return null
  }
}

export interface BaselineOptions {
  readonly databaseUrl: string
  readonly secret: string
  readonly port: number
  readonly host?: string
  readonly poolSize?: number
  readonly log?: boolean
}

/** Starts the baseline server; resolves when it listens. */
export const startBaseline = async (options: BaselineOptions) => {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 10 })
  pool.on("error", () => {})
  await pool.query(SCHEMA)
  const wh = new Webhook(options.secret)
  const app = express()
  const httpServer = createServer(app)
  const io = new Server(httpServer)
  const log = options.log ?? true

  app.post("/api/webhooks/clerk", express.raw({ type: "*/*", limit: "256kb" }), async (req, res) => {
    const raw = (req.body as Buffer).toString("utf8")
    let event: Json
    try {
      wh.verify(raw, {
        "svix-id": String(req.headers["svix-id"] ?? ""),
        "svix-timestamp": String(req.headers["svix-timestamp"] ?? ""),
        "svix-signature": String(req.headers["svix-signature"] ?? "")
      })
      event = JSON.parse(raw) as Json
    } catch {
      res.status(400).json({ error: "invalid signature" })
      return
    }
    const svixId = String(req.headers["svix-id"])
    let client: pg.PoolClient | undefined
    try {
      client = await pool.connect()
      await client.query("BEGIN")
      const recorded = await client.query({
        name: "record_event",
        text: "INSERT INTO clerk_webhook_events (svix_id, type, payload) VALUES ($1, $2, $3) ON CONFLICT (svix_id) DO NOTHING RETURNING id",
        values: [svixId, event.type, raw]
      })
      if (recorded.rowCount === 0) {
        await client.query("ROLLBACK")
        res.json({ status: "duplicate" })
        return
      }
      const notify = await apply(client, event.type, event.data ?? {})
      await client.query({
        name: "mark_processed",
        text: "UPDATE clerk_webhook_events SET status = $2, processed_at = now() WHERE svix_id = $1",
        values: [svixId, notify ? "processed" : "ignored"]
      })
      await client.query("COMMIT")
      if (log) console.log(JSON.stringify({ msg: "webhook processed", type: event.type, svixId }))
      res.json({ status: "processed" })
      if (notify) io.emit(notify.name, notify.data)
    } catch (error) {
      await client?.query("ROLLBACK").catch(() => {})
      if (log) console.error(JSON.stringify({ msg: "webhook failed", type: event.type, svixId, error: String(error) }))
      res.status(500).json({ error: "processing failed" })
    } finally {
      client?.release()
    }
  })
  app.get("/healthz", (_req, res) => void res.send("ok"))

  await new Promise<void>((resolve) => httpServer.listen(options.port, options.host ?? "127.0.0.1", resolve))
  const address = httpServer.address()
  return {
    port: typeof address === "object" && address ? address.port : options.port,
    io,
    close: async () => {
      io.close()
      await new Promise<void>((resolve) => httpServer.close(() => resolve()))
      await pool.end()
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const env = process.env
  const started = await startBaseline({
    databaseUrl: env.DATABASE_URL!,
    secret: env.CLERK_WEBHOOK_SIGNING_SECRET!,
    port: Number(env.PORT ?? 3100),
    host: env.HOST ?? "127.0.0.1",
    poolSize: Number(env.DATABASE_POOL_SIZE ?? 10)
  })
  console.log(`baseline listening on ${started.port}`)
  const stop = () => void started.close().then(() => process.exit(0))
  process.on("SIGTERM", stop)
  process.on("SIGINT", stop)
}
