/**
 * Realtime delivery: the publishers the outbox relay hands notifications to (Socket.IO on this
 * server's port, Supabase Realtime Broadcast, both, or none), and the relay itself.
 *
 * With a `DATABASE_URL`, Socket.IO runs clustered over the same Postgres
 * (`@socket.io/postgres-adapter`), so an event ingested on one process reaches clients connected
 * to another: no new infrastructure.
 */
import { OutboxRelay } from "@clerk-sync/adapter-postgres"
import { SocketIoRealtime } from "@clerk-sync/adapter-socketio"
import { Publisher, Relay, SyncStore } from "@clerk-sync/core"
import { Context, Effect, Layer, Option, Redacted, Schedule } from "effect"
import pg from "pg"
import { NodeServer, shareWith } from "./NodeServer.ts"
import { ServerSettings } from "./Settings.ts"

/** What the rest of the server needs to know of realtime. */
export interface RealtimeShape {
  readonly connectedClients: () => number
  /** Whether the dashboard can subscribe (Socket.IO is on). */
  readonly socketIo: boolean
}

export class Realtime extends Context.Service<Realtime, RealtimeShape>()("reference-server/Realtime") {}

const clusterPool = (url: Redacted.Redacted<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new pg.Pool({ connectionString: Redacted.value(url), max: 4, application_name: "clerk-sync-socket.io" })
      pool.on("error", () => {}) // a dropped idle connection is replaced; the adapter reconnects
      return pool
    }),
    // Released after the realtime closed, which gave back the adapter's LISTEN client. A query
    // still waiting on an unreachable database must not hold the shutdown: past the bound the
    // process exits anyway, and the database drops the connections.
    (pool) =>
      Effect.promise(() => pool.end().catch(() => undefined)).pipe(
        Effect.timeoutOrElse({
          duration: "5 seconds",
          orElse: () => Effect.logWarning("shutdown: the Socket.IO cluster's database connections did not close within 5 s")
        })
      )
  )

/** The publishers, as one {@link Publisher}, and the {@link Realtime} facts. */
export const publishers = Layer.effectContext(Effect.gen(function*() {
  const settings = yield* ServerSettings
  const store = yield* SyncStore.SyncStore
  const shapes: Array<Publisher.PublisherShape> = []
  let connectedClients = () => 0
  if (settings.realtime.includes("socketio")) {
    const httpServer = yield* NodeServer
    const pool = Option.isSome(settings.databaseUrl) ? yield* clusterPool(settings.databaseUrl.value) : undefined
    const realtime = yield* shareWith(httpServer, "/socket.io/", SocketIoRealtime.make({
      httpServer,
      // The adapter's table for large payloads lives in clerk-sync's schema, not in `public`.
      ...(pool ? { postgres: { pool, tableName: `${settings.schema}.socket_io_attachments` } } : {}),
      auth: {
        jwtKey: Option.getOrUndefined(settings.clerkJwtKey),
        jwksUrl: Option.getOrUndefined(settings.clerkJwksUrl),
        authorizedParties: settings.authorizedParties,
        adminToken: Redacted.value(settings.adminToken)
      }
    })).pipe(Effect.provideService(SyncStore.SyncStore, store))
    shapes.push(realtime.publisher)
    connectedClients = () => realtime.io.engine.clientsCount
  }
  if (settings.realtime.includes("supabase") && Option.isSome(settings.supabase)) {
    shapes.push(yield* supabasePublisher(settings.supabase.value))
  }
  return Context.make(Publisher.Publisher, Publisher.combine(shapes)).pipe(
    Context.add(Realtime, { connectedClients, socketIo: settings.realtime.includes("socketio") })
  )
}))

const supabasePublisher = (config: { readonly url: string; readonly serviceKey: Redacted.Redacted<string> }) =>
  Effect.gen(function*() {
    const { SupabaseBroadcast } = yield* Effect.promise(() => import("@clerk-sync/adapter-supabase"))
    return SupabaseBroadcast.make({ url: config.url, serviceKey: Redacted.value(config.serviceKey) })
  })

/**
 * The outbox relay (one active across processes, woken by the database) and retention. On
 * shutdown it drains the outbox once more, after the HTTP server has stopped taking webhooks.
 */
export const relay = Layer.effectDiscard(Effect.gen(function*() {
  const settings = yield* ServerSettings
  yield* Effect.forkScoped(OutboxRelay.runRelay())
  const day = 24 * 60 * 60 * 1000
  const prune = Effect.gen(function*() {
    const store = yield* SyncStore.SyncStore
    const cutoff = Date.now() - settings.retentionDays * day
    const pruned = yield* store.prune({ inboxBefore: cutoff, outboxBefore: cutoff })
    if (pruned.inbox + pruned.outbox > 0) yield* Effect.logInfo(`retention: pruned ${pruned.inbox} inbox and ${pruned.outbox} outbox rows`)
  }).pipe(Effect.catch((e) => Effect.logWarning(`retention: ${e.message}`)))
  yield* Effect.forkScoped(prune.pipe(Effect.repeat(Schedule.spaced("1 hour"))))
  yield* Effect.addFinalizer(() =>
    Relay.drain().pipe(
      Effect.timeout("5 seconds"),
      Effect.catchCause(() => Effect.logWarning("shutdown: the outbox could not be flushed; the next start publishes it")),
      Effect.asVoid
    )
  )
}))
