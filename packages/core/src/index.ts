/**
 * clerk-sync core: decode Clerk webhook events, apply the sync rules, and talk to stores and
 * publishers through ports. Depends on nothing but `effect`.
 *
 * @since 0.1.0
 */
export * as AuthHelpers from "./AuthHelpers.ts"
export * as Cipher from "./Cipher.ts"
export * as ClerkEvent from "./ClerkEvent.ts"
export * as ClerkSimulator from "./ClerkSimulator.ts"
export * as ClerkSync from "./ClerkSync.ts"
export * as Domain from "./Domain.ts"
export * as Ingest from "./Ingest.ts"
export * as MemoryStore from "./MemoryStore.ts"
export * as Notification from "./Notification.ts"
export * as Plan from "./Plan.ts"
export * as Planner from "./Planner.ts"
export * as Projection from "./Projection.ts"
export * as Publisher from "./Publisher.ts"
export * as Relay from "./Relay.ts"
export * as Role from "./Role.ts"
export * as SyncStore from "./SyncStore.ts"
export * as Version from "./Version.ts"
