// Express 5: mount the webhook BEFORE express.json() — Svix signs the raw bytes, a parsed body cannot be verified.
import { MemoryStore } from "@clerk-sync/core"
// import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { createWebhookHandler, toNodeHandler } from "@clerk-sync/adapter-http"
import express from "express"

const app = express()
app.all("/api/webhooks/clerk", toNodeHandler(createWebhookHandler({
  store: MemoryStore.layer // or PostgresStore.layerPg({ connectionString: process.env.DATABASE_URL! })
}))) // secret: CLERK_WEBHOOK_SIGNING_SECRET (or CLERK_WEBHOOK_SECRET)
app.use(express.json()) // the rest of your API
app.listen(Number(process.env.PORT ?? 3000))
