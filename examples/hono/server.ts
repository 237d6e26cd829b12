// Hono on Node: the Fetch handler as is; the socket address is attached for an optional allow-list.
import { MemoryStore } from "@clerk-sync/core"
// import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { ClientAddress, createWebhookHandler } from "@clerk-sync/adapter-http"
import { serve } from "@hono/node-server"
import { getConnInfo } from "@hono/node-server/conninfo"
import { Hono } from "hono"

const webhook = createWebhookHandler({
  store: MemoryStore.layer // or PostgresStore.layerPg({ connectionString: process.env.DATABASE_URL! })
}) // secret: CLERK_WEBHOOK_SIGNING_SECRET (or CLERK_WEBHOOK_SECRET)
const app = new Hono()
app.all("/api/webhooks/clerk", (c) => webhook(ClientAddress.attach(c.req.raw, getConnInfo(c).remote.address)))
serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000) })
