/**
 * The Clerk webhook endpoint of clerk-sync: Svix verification over the exact raw body, then the
 * core's ingest. One implementation ({@link WebhookHandler.handleWebhook}) behind three surfaces:
 *
 * - `createWebhookHandler(options)`: `(request: Request) => Promise<Response>` for Next.js route
 *   handlers, Hono, Bun, Deno;
 * - `toNodeHandler(handler)`: `(req, res) => void` for Node `http` and Express (mount it before
 *   body parsers);
 * - `WebhookRoute.layer(options)`: an `effect/http` route for Effect servers.
 *
 * `signWebhook` signs a delivery the way Svix does, for tests and local tools: there is no
 * verification bypass.
 *
 * @since 0.1.0
 */
export * as Cidr from "./Cidr.ts"
export * as ClientAddress from "./ClientAddress.ts"
export * as FetchHandler from "./FetchHandler.ts"
export * as NodeHandler from "./NodeHandler.ts"
export * as RateLimiter from "./RateLimiter.ts"
export * as Signature from "./Signature.ts"
export * as SvixSourceAddresses from "./SvixSourceAddresses.ts"
export * as WebhookConfig from "./WebhookConfig.ts"
export * as WebhookHandler from "./WebhookHandler.ts"
export * as WebhookRoute from "./WebhookRoute.ts"

// The four functions most apps call, also at the top level.
export { createWebhookHandler, type FetchHandler as WebhookFetchHandler } from "./FetchHandler.ts"
export { toNodeHandler } from "./NodeHandler.ts"
export { signWebhook } from "./Signature.ts"
export { handleWebhook } from "./WebhookHandler.ts"
