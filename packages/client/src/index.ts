/**
 * The clerk-sync realtime client for browsers, Expo (React Native) and Next.js: typed notifications,
 * once each and in order, resume after an absence, status and errors. React hooks are in
 * `@clerk-sync/client/react`.
 *
 * @since 0.1.0
 */
export { type ClerkSyncClient, type ClerkSyncError, connect, type ConnectOptions, type Status, type Unsubscribe } from "./Client.ts"
export * from "./Protocol.ts"
export { createSyncState, fromSnapshot, reduce, type RoleChange, roleChanges, type SyncState, type SyncStateValue, type UserOrganization } from "./State.ts"
export { defaultStorage, memoryStorage, type SeqStorage } from "./Storage.ts"
