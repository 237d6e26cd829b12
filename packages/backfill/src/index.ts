/**
 * clerk-sync backfill: fill and repair clerk-sync's tables from Clerk's Backend API.
 *
 * - {@link Backfill}: resumable, rate-limited backfill of users, organizations and memberships,
 *   through the same ingest and version rules as webhooks.
 * - {@link Reconcile}: find rows deleted in Clerk while webhooks were down, and end them (dry run first).
 * - {@link Revalidate}: on `user.updated` / `organization.updated`, ingest the API's current state.
 * - {@link ClerkBackfill}: the same as Promise functions; {@link runBackfillCli}: the command line.
 *
 * @since 0.1.0
 */
export * as Backfill from "./Backfill.ts"
export * as ClerkApi from "./ClerkApi.ts"
export * as ClerkBackfill from "./ClerkBackfill.ts"
export * as Cli from "./Cli.ts"
export * as Deliveries from "./Deliveries.ts"
export * as Progress from "./Progress.ts"
export * as RateLimiter from "./RateLimiter.ts"
export * as Reconcile from "./Reconcile.ts"
export * as Revalidate from "./Revalidate.ts"
export { runBackfillCli } from "./Cli.ts"
