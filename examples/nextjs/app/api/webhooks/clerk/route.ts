// Next.js App Router: Clerk's webhooks land here and keep your database in step with Clerk.
// Set CLERK_WEBHOOK_SIGNING_SECRET (whsec_…) from the Clerk dashboard; the handler refuses to start without it.
import { MemoryStore } from "@clerk-sync/core"
// import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { createWebhookHandler } from "@clerk-sync/adapter-http"

export const POST = createWebhookHandler({
  store: MemoryStore.layer // in production: PostgresStore.layerPg({ connectionString: process.env.DATABASE_URL! })
})

export const dynamic = "force-dynamic"
