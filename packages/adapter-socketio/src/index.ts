/**
 * Socket.IO realtime for clerk-sync: authenticated connections, org-scoped rooms decided by the
 * server, a publisher for the outbox relay, gap-free resume, several nodes over one Postgres.
 *
 * @since 0.1.0
 */
export * as Auth from "./Auth.ts"
export * as Protocol from "./Protocol.ts"
export * as Rooms from "./Rooms.ts"
export * as SocketIoRealtime from "./SocketIoRealtime.ts"
