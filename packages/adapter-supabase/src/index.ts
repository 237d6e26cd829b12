/**
 * Supabase Realtime Broadcast for clerk-sync: a publisher over the REST broadcast endpoint, and the
 * Row Level Security policies that let a client hear an organization only while a live member.
 *
 * @since 0.1.0
 */
export * as Policies from "./Policies.ts"
export * as SupabaseBroadcast from "./SupabaseBroadcast.ts"
