/**
 * clerk-sync's store on PostgreSQL (a server through `pg`, or PGlite in-process): migrations,
 * inbox, synced state, outbox, group commit, and the outbox relay's primitives.
 *
 * @since 0.1.0
 */
export * as Migrations from "./Migrations.ts"
export * as OutboxRelay from "./OutboxRelay.ts"
export * as PostgresStore from "./PostgresStore.ts"
