/**
 * Socket.IO realtime for clerk-sync: authenticated connections, rooms decided by the server from the
 * database, a {@link Publisher} for the outbox relay, gap-free resume, and several server processes
 * over the same Postgres.
 *
 * - **Who**: the client sends its Clerk session token (`auth.token`); it is verified without a
 *   network call (`CLERK_JWT_KEY`) or through a JWKS URL. An admin credential grants `admin`.
 *   Refusals are `connect_error`s with `data.code` (see {@link Auth.AuthErrorCode}).
 * - **Rooms**: `user:<id>`, and `org:<id>` for each live membership, decided by the server; no client
 *   event can change them. A membership created joins the user's sockets before it is delivered;
 *   a membership ended, an organization or a user deleted, leaves right after, on every node.
 * - **Order and resume**: each client receives its notifications once, in `seq` order. A client that
 *   reconnects with `auth.lastSeq` first receives what it missed (from the outbox), then live ones;
 *   beyond the retention window it is told to resync.
 * - **Several nodes**: with `postgres: { pool }` (the `@socket.io/postgres-adapter`, no new
 *   infrastructure), an event published on node A reaches clients on node B, exactly once.
 * - **Expiry**: a connection lasts as long as its token. Before it expires the client sends a fresh
 *   one (`clerk-sync:refresh`, same user; its rooms are decided again); otherwise the server says
 *   `clerk-sync:closing` `auth_expired` and disconnects it, and the client reconnects with a fresh
 *   token and its `lastSeq`. One timer per connection, cleared when it disconnects.
 * - **Shutdown**: when the HTTP server is closed, the clients are told `shutdown` and disconnected,
 *   so that the close completes (a WebSocket would hold it open); {@link SocketIoRealtime.close}
 *   then releases the adapter's Postgres connections, so the pool can end.
 *
 * @example
 * import { createServer } from "node:http"
 * import { MemoryStore, Relay } from "@clerk-sync/core"
 * import { SocketIoRealtime } from "@clerk-sync/adapter-socketio"
 * const server = createServer()
 * const store = await Effect.runPromise(MemoryStore.make)
 * const realtime = SocketIoRealtime.attach(store, { httpServer: server, auth: { jwtKey: process.env.CLERK_JWT_KEY } })
 * server.listen(3000)
 * // the relay hands the outbox to realtime.publisher
 *
 * @since 0.1.0
 */
import type { Publisher as PublisherNs } from "@clerk-sync/core"
import { type Notification, Publisher, SyncStore } from "@clerk-sync/core"
import { createAdapter } from "@socket.io/postgres-adapter"
import { Context, Effect, Layer, type Scope } from "effect"
import type { Server as HttpServer } from "node:http"
import type { Server as HttpsServer } from "node:https"
import { randomUUID } from "node:crypto"
import type pg from "pg"
import { type ExtendedError, type Namespace, Server, type ServerOptions, type Socket } from "socket.io"
import { Adapter } from "socket.io-adapter"
import {
  AuthError,
  DEFAULT_CLOCK_TOLERANCE_SECONDS,
  type Identity,
  makeVerifier,
  sameIdentity,
  type Verifier,
  type VerifierOptions
} from "./Auth.ts"
import { AdapterPool } from "./internal/AdapterPool.ts"
import { closeWith, Hub } from "./internal/Hub.ts"
import { Session } from "./internal/Session.ts"
import { BATCH, type Batch, CLOSING, type Closing, NAMESPACE, REFRESH, type RefreshResult } from "./Protocol.ts"

/** Cluster over Postgres: the `@socket.io/postgres-adapter` on this pool. @category models */
export interface PostgresClusterOptions {
  readonly pool: pg.Pool
  /** Table for payloads too large for NOTIFY (created if missing; default `socket_io_attachments`). */
  readonly tableName?: string
  /** NOTIFY channel prefix (default `clerk-sync`). */
  readonly channelPrefix?: string
}

/** @category models */
export interface Options {
  /** Attach to this Node HTTP(S) server: a Socket.IO server is created on it. */
  readonly httpServer?: HttpServer | HttpsServer | undefined
  /** Or use this Socket.IO server (yours: its own adapter, middleware and namespaces stay untouched). */
  readonly io?: Server | undefined
  /**
   * Options of the Socket.IO server created on `httpServer` (`path`, `cors`, …). When that HTTP
   * server is closed (`server.close()`), the clients are told `shutdown` and disconnected first.
   */
  readonly serverOptions?: Partial<ServerOptions> | undefined
  /** Several nodes on one Postgres (only when the server is created here; with `io`, set your adapter). */
  readonly postgres?: PostgresClusterOptions | undefined
  /** The namespace clients connect to (default `/clerk-sync`). */
  readonly namespace?: string | undefined
  /** How tokens are verified: options for {@link makeVerifier}, or a verifier of your own. */
  readonly auth: VerifierOptions | Verifier
  /** Notifications read from the outbox at a time (default 500). */
  readonly readBatchSize?: number | undefined
  /** Recent notifications each node keeps for handing catching-up clients over (default 10,000). */
  readonly logSize?: number | undefined
  /** How long an out-of-order batch from another node waits for the missing one (ms, default 50). */
  readonly reorderWindowMs?: number | undefined
  /** Safety-net read of the outbox, in case a message between nodes was lost (ms, default 2,000; 0: off). */
  readonly pollIntervalMs?: number | undefined
  /** Pause a replay while a slow client has this many packets waiting (default 1,000). */
  readonly maxBufferedPackets?: number | undefined
  /** The last `seq` already in the outbox at start (default: found by reading the outbox). */
  readonly head?: (() => Promise<number>) | undefined
  /**
   * Clerk org ids a user is a live member of now (default: the store's `listUserOrganizations`). For
   * tests and for apps that narrow who hears an organization.
   */
  readonly organizationsOf?: ((clerkUserId: string) => Promise<ReadonlyArray<string>>) | undefined
  readonly onError?: ((message: string, error: unknown) => void) | undefined
}

/** @category models */
export interface SocketIoRealtime {
  readonly io: Server
  readonly namespace: Namespace
  /** The publisher to give the outbox relay. */
  readonly publisher: PublisherNs.PublisherShape
  /** Promise form of `publisher.publish`. */
  readonly publish: (notifications: ReadonlyArray<Notification.Stored>) => Promise<void>
  /** Resolves when the node knows the outbox's head (connections wait for it anyway). */
  readonly ready: Promise<void>
  /** The last `seq` this node has delivered (every one up to it). */
  readonly head: () => number
  /** Reads the outbox past the head now, without waiting for the next poll. */
  readonly catchUp: () => Promise<void>
  /**
   * Disconnects the clients (telling them `shutdown`); when the Socket.IO server was created here,
   * closes it (not the HTTP server) and its cluster adapter, releasing every Postgres connection the
   * adapter held, so `pool.end()` can complete. Call it before ending the pool.
   */
  readonly close: () => Promise<void>
}

const parseLastSeq = (value: unknown): number | null => {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : null
}

const bearer = (header: unknown): string | null =>
  typeof header === "string" && header.toLowerCase().startsWith("bearer ") ? header.slice(7).trim() : null

const refuse = (error: AuthError): ExtendedError => {
  const err = new Error(error.message) as ExtendedError
  err.data = { code: error.code }
  return err
}

/** `setTimeout` fires at once past this (about 24.8 days): a later expiry is waited for in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/** How long clients told `shutdown` have to go before their transports are cut. */
const SHUTDOWN_GRACE_MS = 1_000

const SHUTDOWN: Closing = { code: "shutdown", message: "the server is shutting down; reconnect with your lastSeq" }
const EXPIRED: Closing = {
  code: "auth_expired",
  message: "the session token expired; reconnect with a fresh token and your lastSeq (or refresh it before it expires)"
}

const tokenOf = (request: unknown): string | null => {
  const token = typeof request === "object" && request !== null ? (request as { readonly token?: unknown }).token : undefined
  return typeof token === "string" ? token : null
}

const defaultOnError = (message: string, error: unknown) => {
  console.warn(`[clerk-sync socket.io] ${message}:`, error instanceof Error ? error.message : error)
}

/**
 * Attaches clerk-sync realtime to an HTTP server or a Socket.IO server, over a store.
 *
 * @category constructors
 */
export const attach = (store: SyncStore.SyncStoreShape, options: Options): SocketIoRealtime => {
  if (!options.io && !options.httpServer) throw new Error("clerk-sync socket.io: give httpServer or io")
  const onError = options.onError ?? defaultOnError
  const owned = options.io === undefined
  let setup: Promise<unknown> = Promise.resolve()
  const io = options.io ?? new Server(options.httpServer, { ...options.serverOptions })
  let adapterPool: AdapterPool | undefined
  if (owned && options.postgres) {
    const table = options.postgres.tableName ?? "socket_io_attachments"
    setup = options.postgres.pool.query(
      `CREATE TABLE IF NOT EXISTS ${table} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`
    )
    adapterPool = new AdapterPool(options.postgres.pool, onError)
    io.adapter(createAdapter(adapterPool.pool, {
      tableName: table,
      channelPrefix: options.postgres.channelPrefix ?? "clerk-sync",
      errorHandler: (error) => onError("postgres adapter", error)
    }))
  }
  const nsp = io.of(options.namespace ?? NAMESPACE)
  const verify: Verifier = typeof options.auth === "function" ? options.auth : makeVerifier(options.auth)
  // A connection lasts exactly as long as its token would be accepted: until `exp`, plus the
  // verifier's tolerance, on the verifier's clock.
  const now = typeof options.auth === "function" ? Date.now : options.auth.now ?? Date.now
  const toleranceMs = typeof options.auth === "function"
    ? 0
    : (options.auth.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS) * 1000
  const readBatchSize = options.readBatchSize ?? 500
  const hub = new Hub({
    nsp,
    store,
    logSize: options.logSize ?? 10_000,
    reorderWindowMs: options.reorderWindowMs ?? 50,
    pollIntervalMs: options.pollIntervalMs ?? 2_000,
    readBatchSize,
    head: options.head,
    onError
  })
  const ready = Promise.all([hub.ready, setup.catch((error) => onError("could not create the attachments table", error))])
    .then(() => undefined)

  /** Who a token speaks for, at connection and at each refresh. Rejects with an {@link AuthError}. */
  const admit = async (token: string | null): Promise<Identity> => {
    try {
      const identity = await verify(token)
      if (identity.kind === "user") {
        const user = await Effect.runPromise(store.findUser(identity.userId)).catch(() => {
          throw new AuthError("auth_unavailable", "the server cannot reach its database; try again")
        })
        if (user._tag === "Some" && user.value.deletedAt !== null) {
          throw new AuthError("user_deleted", "this user was deleted")
        }
      }
      return identity
    } catch (error) {
      throw error instanceof AuthError ? error : new AuthError("invalid_token", "the session token is not accepted")
    }
  }

  let stopping = false

  nsp.use((socket, next) => {
    if (stopping) return next(refuse(new AuthError("auth_unavailable", "the server is shutting down; try again")))
    const auth = (socket.handshake.auth ?? {}) as { readonly token?: unknown; readonly lastSeq?: unknown }
    const token = typeof auth.token === "string" ? auth.token : bearer(socket.handshake.headers.authorization)
    admit(token)
      .then((identity) => {
        socket.data.identity = identity
        socket.data.lastSeq = parseLastSeq(auth.lastSeq)
        next()
      })
      .catch((error: AuthError) => next(refuse(error)))
  })

  nsp.on("connection", (socket: Socket) => {
    let identity = socket.data.identity as Identity
    const expiresIn = (): number | null => identity.expiresAt === null ? null : Math.max(0, identity.expiresAt + toleranceMs - now())
    const session = new Session({
      socket,
      identity,
      lastSeq: socket.data.lastSeq as number | null,
      hub,
      store,
      readBatchSize,
      organizationsOf: options.organizationsOf,
      maxBufferedPackets: options.maxBufferedPackets ?? 1_000,
      expiresIn
    })

    // One timer per connection, re-armed by each refresh, cleared at disconnect.
    let expiry: ReturnType<typeof setTimeout> | undefined
    const arm = () => {
      clearTimeout(expiry)
      const left = expiresIn()
      if (left === null) return
      expiry = setTimeout(() => {
        if (expiresIn()! > 0) return arm()
        session.close()
        closeWith(socket, EXPIRED, "all")
      }, Math.min(left, MAX_TIMEOUT_MS))
      expiry.unref?.()
    }
    arm()
    socket.on("disconnect", () => {
      clearTimeout(expiry)
      session.close()
    })

    const refresh = async (request: unknown): Promise<RefreshResult> => {
      let next: Identity
      try {
        next = await admit(tokenOf(request))
      } catch (error) {
        const { code, message } = error as AuthError
        return { ok: false, code, message }
      }
      if (!sameIdentity(identity, next)) {
        return { ok: false, code: "identity_mismatch", message: "the token is another identity's: connect again to change users" }
      }
      if (socket.disconnected) return { ok: false, code: "expired_token", message: "the connection has already closed" }
      identity = next
      arm()
      try {
        await session.reauthorize()
      } catch (error) {
        onError("could not decide a refreshed connection's rooms", error)
        socket.disconnect(true)
        return { ok: false, code: "auth_unavailable", message: "the server cannot reach its database; reconnect" }
      }
      return { ok: true, expiresIn: expiresIn() }
    }
    // One refresh at a time per connection: each decides the rooms from where the last one left them.
    let refreshing: Promise<unknown> = Promise.resolve()
    socket.on(REFRESH, (request: unknown, ack: unknown) => {
      const reply = typeof ack === "function" ? (ack as (result: RefreshResult) => void) : () => {}
      refreshing = refreshing.then(() => refresh(request)).then(reply).catch((error) => onError("a refresh failed", error))
    })

    session.start().catch((error) => {
      onError("could not start a session", error)
      socket.disconnect(true)
    })
  })

  const clustered = !(nsp.adapter instanceof Adapter && nsp.adapter.constructor === Adapter)
  ;(nsp as unknown as { on: (event: string, f: (batch: Batch) => void) => void }).on(BATCH, (batch) => {
    void hub.receive(batch)
  })

  const id = randomUUID()
  let prev: number | null = null
  const publish = async (items: ReadonlyArray<Notification.Stored>): Promise<void> => {
    if (items.length === 0) return
    const batch: Batch = { from: id, prev, items }
    prev = items[items.length - 1]!.seq
    if (clustered) nsp.serverSideEmit(BATCH, batch)
    await hub.receive(batch)
  }

  const publisher: PublisherNs.PublisherShape = {
    name: "socket.io",
    publish: (items) =>
      Effect.tryPromise({
        try: () => publish(items),
        catch: (cause) => new Publisher.PublishError({ publisher: "socket.io", cause })
      })
  }

  /** Tells every client of this node `shutdown` and disconnects it; refuses new ones from now on. */
  const disconnectAll = () => {
    stopping = true
    for (const socket of nsp.sockets.values()) {
      socket.emit(CLOSING, SHUTDOWN)
      socket.disconnect(true)
    }
  }

  // `server.close()` waits for every connection to end, and a WebSocket never does by itself; the
  // engine only closes its clients on the server's `close` event, which that wait holds back.
  const httpServer = owned ? options.httpServer : undefined
  const serverClose = httpServer?.close
  if (httpServer && serverClose) {
    io.engine.on("connection", (conn: { close: () => void }) => {
      if (stopping) conn.close()
    })
    httpServer.close = function(this: typeof httpServer, ...args: Parameters<typeof serverClose>) {
      if (!stopping) {
        disconnectAll()
        // Clients normally go at once; the transports of those that don't are cut.
        setTimeout(() => io.engine.close(), SHUTDOWN_GRACE_MS).unref?.()
      }
      return serverClose.apply(this, args)
    } as typeof serverClose
  }

  const close = async () => {
    hub.close()
    disconnectAll()
    if (httpServer && serverClose) httpServer.close = serverClose
    if (owned) {
      // The adapter's own close releases its LISTEN client; any other still out is released here.
      await io.of("/").adapter.close()
      await nsp.adapter.close()
      adapterPool?.close()
      io.engine.close()
    }
  }

  return { io, namespace: nsp, publisher, publish, ready, head: () => hub.head, catchUp: () => hub.catchUp(), close }
}

/**
 * The node's realtime, as a service (the {@link Publisher} service is provided beside it).
 *
 * @category services
 */
export class SocketIo extends Context.Service<SocketIo, SocketIoRealtime>()("@clerk-sync/adapter-socketio/SocketIo") {}

/**
 * Attaches within a scope (closed with it), over the {@link SyncStore} in context.
 *
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<SocketIoRealtime, never, SyncStore.SyncStore | Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const store = yield* SyncStore.SyncStore
      return attach(store, options)
    }),
    (realtime) => Effect.promise(() => realtime.close())
  )

/**
 * Layer: the {@link SocketIo} service and the core's {@link Publisher}, over the store in context.
 *
 * @example
 * const RealtimeLive = SocketIoRealtime.layer({ httpServer, auth: { jwtKey, adminToken } })
 * // Relay.run({ wakeup }) then publishes through it
 *
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<SocketIo | Publisher.Publisher, never, SyncStore.SyncStore> =>
  Layer.effectContext(
    Effect.map(make(options), (realtime) =>
      Context.make(SocketIo, realtime).pipe(Context.add(Publisher.Publisher, realtime.publisher)))
  )
