/**
 * The clerk-sync realtime client, for browsers, Expo (React Native) and Next.js.
 *
 * - Typed handlers for every notification (`client.on("membership.updated", (n) => n.role)`).
 * - Each notification once, in `seq` order: the server sends them so, and the client drops any
 *   `seq` it already has.
 * - Resume: the last `seq` is kept in a pluggable storage (localStorage by default, AsyncStorage on
 *   React Native) per signed-in user; a reconnection or a restart receives what it missed first.
 * - A fresh token at every (re)connection (`getToken`, e.g. Clerk's `session.getToken()`); refusals
 *   that a new token can fix (expired, not yet valid) are retried, others stop with `unauthorized`.
 * - A connection lasts as long as its token: shortly before the server would close it, the client
 *   asks `getToken` for a fresh one and hands it over on the same connection. If that fails and the
 *   server closes it (`auth_expired`), the client reconnects at once with a fresh token, resuming
 *   after its last `seq`.
 * - Status and errors as values and events.
 *
 * @example
 * import { connect } from "@clerk-sync/client"
 * const sync = connect({ url: "https://api.example.com", getToken: () => clerk.session?.getToken() })
 * sync.on("membership.updated", (n) => console.log(`${n.membership.user.clerkUserId}: ${n.previousRole} → ${n.role}`))
 * sync.onStatus((status) => console.log(status)) // connecting → catching-up → live
 *
 * @since 0.1.0
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client"
import {
  CLOSING,
  type Closing,
  HELLO,
  type Hello,
  type Identity,
  NAMESPACE,
  type Notification,
  NOTIFICATION_NAMES,
  type NotificationName,
  type NotificationOf,
  READY,
  type Ready,
  REFRESH,
  type RefreshResult,
  type Snapshot
} from "./Protocol.ts"
import { defaultStorage, memoryStorage, type SeqStorage } from "./Storage.ts"

/**
 * - `connecting`: (re)connecting, or waiting to retry;
 * - `catching-up`: connected, receiving what was missed;
 * - `live`: caught up, receiving changes as they happen;
 * - `unauthorized`: refused (invalid token, deleted user…): call `reconnect()` after signing in again;
 * - `closed`: closed by `close()`.
 *
 * @category models
 */
export type Status = "connecting" | "catching-up" | "live" | "unauthorized" | "closed"

/** @category models */
export interface ClerkSyncError {
  /** The server's refusal code (`expired_token`, `invalid_signature`, `user_deleted`, …) or `connection_error`. */
  readonly code: string
  readonly message: string
}

/** @category models */
export interface ConnectOptions {
  /** The clerk-sync server's origin (e.g. `https://api.example.com`, or `location.origin`). */
  readonly url: string
  /** The Clerk session token, fetched at every (re)connection. Null while signed out. */
  readonly getToken: () => string | null | undefined | Promise<string | null | undefined>
  /** Namespace (default `/clerk-sync`). */
  readonly namespace?: string
  /** Socket.IO path (default `/socket.io`). */
  readonly path?: string
  /** Where the last `seq` is kept; default `localStorage` when available; `null`: memory only. */
  readonly storage?: SeqStorage | null
  /** Prefix of the storage key (default `clerk-sync:lastSeq`). */
  readonly storageKey?: string
  /** Resume after this `seq` on the first connection (instead of the stored one). */
  readonly lastSeq?: number
  /** Socket.IO transports (default websocket, then long-polling; React Native: `["websocket"]`). */
  readonly transports?: ReadonlyArray<"websocket" | "polling" | "webtransport">
  /** Any other Socket.IO client option. */
  readonly socketOptions?: Partial<ManagerOptions & SocketOptions>
}

/** Removes a handler. @category models */
export type Unsubscribe = () => void

/** @category models */
export interface ClerkSyncClient {
  readonly status: Status
  readonly error: ClerkSyncError | null
  /** The last `seq` received (what a resume continues after). */
  readonly lastSeq: number | null
  /** Who the server says we are, once connected. */
  readonly identity: Identity | null
  /** The signed-in user's organizations when the client last caught up. */
  readonly snapshot: Snapshot | null
  /** One notification name, typed. */
  readonly on: <N extends NotificationName>(name: N, handler: (notification: NotificationOf<N>) => void) => Unsubscribe
  /** Every notification. */
  readonly onAny: (handler: (notification: Notification) => void) => Unsubscribe
  /** Status changes; called at once with the current status. */
  readonly onStatus: (handler: (status: Status, error: ClerkSyncError | null) => void) => Unsubscribe
  readonly onError: (handler: (error: ClerkSyncError) => void) => Unsubscribe
  /** Caught up (after each connection), with a snapshot of the user's organizations. */
  readonly onReady: (handler: (ready: Ready) => void) => Unsubscribe
  /** What was missed is beyond the server's retention: refetch what you cache. */
  readonly onResync: (handler: (hello: Hello) => void) => Unsubscribe
  /** Resolves the next time the client is live; rejects if it is refused (`unauthorized`) or closed first. */
  readonly live: () => Promise<void>
  /**
   * Hands the server a fresh token (from `getToken`) on the live connection, e.g. when your auth
   * library renewed it; the client also does it by itself before the connection would expire.
   * Rejects with the server's `code` when refused; a token of another user makes the client
   * reconnect as that user.
   */
  readonly refresh: () => Promise<void>
  /** Connects again now (after signing in, or after `unauthorized`). */
  readonly reconnect: () => void
  readonly close: () => void
  /** The underlying Socket.IO socket (for diagnostics). */
  readonly socket: Socket
}

/** Refusals a new attempt (with a fresh token) may fix. */
const RETRYABLE = new Set(["expired_token", "token_not_yet_valid", "auth_unavailable", "missing_token", "connection_error"])

/** Ask for a fresh token this long before the connection expires, at most (and at most a quarter of its life). */
const REFRESH_LEAD_MS = 15_000
/** Below this much life left, another refresh is not tried: the server closes, the client reconnects. */
const REFRESH_FLOOR_MS = 2_000
/** How long the server has to answer a refresh. */
const REFRESH_TIMEOUT_MS = 10_000

const decodeSub = (token: string): string | null => {
  try {
    const part = token.split(".")[1]
    if (part === undefined || typeof atob !== "function") return null
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=")
    const json = JSON.parse(atob(base64)) as { sub?: unknown }
    return typeof json.sub === "string" ? json.sub : null
  } catch {
    return null
  }
}

const parseSeq = (value: string | null): number | null => {
  if (value === null) return null
  const n = Number(value)
  return Number.isSafeInteger(n) && n >= 0 ? n : null
}

/**
 * Connects to a clerk-sync server.
 *
 * @category constructors
 */
export const connect = (options: ConnectOptions): ClerkSyncClient => {
  const storage = options.storage === null ? memoryStorage() : options.storage ?? defaultStorage()
  const namespace = options.namespace ?? NAMESPACE
  const base = options.url.replace(/\/+$/, "")
  const keyPrefix = `${options.storageKey ?? "clerk-sync:lastSeq"}:${base}${namespace}`

  let status: Status = "connecting"
  let error: ClerkSyncError | null = null
  let lastSeq: number | null = null
  let identity: Identity | null = null
  let snapshot: Snapshot | null = null
  let storageKey: string | null = null
  let firstConnection = true
  let closed = false
  let closing: Closing | null = null
  let retries = 0
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let persistTimer: ReturnType<typeof setTimeout> | undefined
  /** When the server will close this connection as its token expires (local clock), if it will. */
  let expiresAt: number | null = null
  let refreshTimer: ReturnType<typeof setTimeout> | undefined
  let refreshing: Promise<void> | null = null

  const byName = new Map<NotificationName, Set<(n: Notification) => void>>()
  const any = new Set<(n: Notification) => void>()
  const statusHandlers = new Set<(s: Status, e: ClerkSyncError | null) => void>()
  const errorHandlers = new Set<(e: ClerkSyncError) => void>()
  const readyHandlers = new Set<(r: Ready) => void>()
  const resyncHandlers = new Set<(h: Hello) => void>()
  let liveWaiters: Array<{ readonly resolve: () => void; readonly reject: (e: Error) => void }> = []

  const call = <A>(handlers: Iterable<(a: A) => void>, value: A) => {
    for (const h of [...handlers]) {
      try {
        h(value)
      } catch (e) {
        console.error("[clerk-sync] a handler threw:", e)
      }
    }
  }
  const subscribe = <H>(set: Set<H>, handler: H): Unsubscribe => {
    set.add(handler)
    return () => void set.delete(handler)
  }

  const setStatus = (next: Status) => {
    if (next === status) return
    status = next
    for (const h of [...statusHandlers]) {
      try {
        h(status, error)
      } catch (e) {
        console.error("[clerk-sync] a handler threw:", e)
      }
    }
    if (status === "live" || status === "unauthorized" || status === "closed") {
      const waiters = liveWaiters
      liveWaiters = []
      for (const w of waiters) {
        if (status === "live") w.resolve()
        else w.reject(Object.assign(new Error(`clerk-sync: ${status}${error ? ` (${error.code}: ${error.message})` : ""}`), { code: error?.code ?? status }))
      }
    }
  }
  const fail = (e: ClerkSyncError) => {
    error = e
    call(errorHandlers, e)
  }

  const persistNow = () => {
    clearTimeout(persistTimer)
    persistTimer = undefined
    if (storageKey === null || lastSeq === null) return
    try {
      void Promise.resolve(storage.setItem(storageKey, String(lastSeq))).catch(() => undefined)
    } catch {
      // a full or unavailable storage costs a longer replay next time, nothing else
    }
  }
  const persistSoon = () => {
    if (persistTimer === undefined) persistTimer = setTimeout(persistNow, 250)
  }

  const freshToken = async (): Promise<string | null> => {
    try {
      return (await options.getToken()) ?? null
    } catch {
      return null
    }
  }

  /** The handshake's `auth`: a fresh token, and the seq to resume after. */
  const auth = async (): Promise<{ token: string | null; lastSeq?: number }> => {
    const token = await freshToken()
    const key = `${keyPrefix}:${token === null ? "anonymous" : decodeSub(token) ?? "token"}`
    if (key !== storageKey) {
      // A new user (or the first connection): its own resume point, never another user's.
      storageKey = key
      lastSeq = null
      if (firstConnection && options.lastSeq !== undefined) lastSeq = options.lastSeq
      else {
        try {
          lastSeq = parseSeq(await storage.getItem(key))
        } catch {
          lastSeq = null
        }
      }
    }
    firstConnection = false
    return lastSeq === null ? { token } : { token, lastSeq }
  }

  const socket: Socket = io(`${base}${namespace}`, {
    autoConnect: false,
    reconnectionDelay: 500,
    reconnectionDelayMax: 10_000,
    ...(options.path ? { path: options.path } : {}),
    ...(options.transports ? { transports: [...options.transports] } : {}),
    ...options.socketOptions,
    auth: (cb: (data: object) => void) => {
      void auth().then(cb)
    }
  })

  const scheduleRetry = () => {
    clearTimeout(retryTimer)
    const delay = Math.min(30_000, 1_000 * 2 ** Math.min(retries++, 5))
    retryTimer = setTimeout(() => {
      if (!closed && !socket.connected) socket.connect()
    }, delay)
  }

  /** Plans the next refresh for a connection that now expires in `expiresIn` ms. */
  const expireIn = (expiresIn: number | null | undefined) => {
    clearTimeout(refreshTimer)
    refreshTimer = undefined
    const before = expiresAt
    expiresAt = typeof expiresIn === "number" ? Date.now() + expiresIn : null
    if (expiresAt === null || typeof expiresIn !== "number") return
    if (before !== null && expiresAt - before < 1_000) {
      // Not extended: the app's token cache gave the same token back. Try again halfway, while
      // there is time; past that, the server closes and the reconnection gets a fresh token.
      if (expiresIn >= 2 * REFRESH_FLOOR_MS) refreshTimer = setTimeout(refreshSoon, expiresIn / 2)
      return
    }
    // A token's last stretch is when caches such as Clerk's renew it.
    refreshTimer = setTimeout(refreshSoon, Math.max(0, expiresIn - Math.min(REFRESH_LEAD_MS, expiresIn / 4)))
  }

  const refreshOnce = async (): Promise<void> => {
    if (closed || !socket.connected) throw Object.assign(new Error("clerk-sync: not connected"), { code: "not_connected" })
    const token = await freshToken()
    if (token === null) throw Object.assign(new Error("clerk-sync: getToken gave no token"), { code: "missing_token" })
    const result = await socket.timeout(REFRESH_TIMEOUT_MS).emitWithAck(REFRESH, { token }) as RefreshResult
    if (result.ok) return expireIn(result.expiresIn)
    fail({ code: result.code, message: result.message })
    // Another user's token: the app switched users; their own connection, their own resume point.
    if (result.code === "identity_mismatch") reconnect()
    else if (expiresAt !== null && expiresAt - Date.now() >= 2 * REFRESH_FLOOR_MS) {
      refreshTimer = setTimeout(refreshSoon, (expiresAt - Date.now()) / 2)
    }
    throw Object.assign(new Error(`clerk-sync: refresh refused (${result.code}: ${result.message})`), { code: result.code })
  }
  const refresh = (): Promise<void> => {
    if (refreshing === null) refreshing = refreshOnce().finally(() => (refreshing = null))
    return refreshing
  }
  const refreshSoon = () => void refresh().catch(() => undefined)

  const reconnect = () => {
    if (closed) return
    closing = null
    retries = 0
    clearTimeout(retryTimer)
    if (socket.connected) socket.disconnect()
    setStatus("connecting")
    socket.connect()
  }

  socket.on("connect", () => {
    retries = 0
    error = null
    setStatus("catching-up")
  })
  socket.on(HELLO, (hello: Hello) => {
    identity = hello.identity
    lastSeq = hello.resync || lastSeq === null ? hello.seq : Math.max(lastSeq, hello.seq)
    persistNow()
    expiresAt = null
    expireIn(hello.expiresIn)
    if (hello.resync) call(resyncHandlers, hello)
  })
  for (const name of NOTIFICATION_NAMES) {
    socket.on(name, (n: Notification) => {
      if (typeof n?.seq !== "number" || (lastSeq !== null && n.seq <= lastSeq)) return
      lastSeq = n.seq
      persistSoon()
      const handlers = byName.get(n.name)
      if (handlers) call(handlers, n)
      call(any, n)
    })
  }
  socket.on(READY, (ready: Ready) => {
    if (lastSeq === null || ready.seq > lastSeq) lastSeq = ready.seq
    snapshot = ready.snapshot
    persistNow()
    call(readyHandlers, ready)
    setStatus("live")
  })
  socket.on(CLOSING, (c: Closing) => {
    closing = c
    fail({ code: c.code, message: c.message })
  })
  socket.on("connect_error", (err: Error & { data?: { code?: string } }) => {
    const code = err.data?.code ?? "connection_error"
    fail({ code, message: err.message })
    if (closed) return
    if (socket.active) return setStatus("connecting") // a transport failure: Socket.IO retries
    if (RETRYABLE.has(code)) {
      setStatus("connecting")
      scheduleRetry()
    } else {
      setStatus("unauthorized")
    }
  })
  socket.on("disconnect", (reason: string) => {
    persistNow()
    clearTimeout(refreshTimer)
    expiresAt = null
    if (closed) return setStatus("closed")
    const why = closing?.code
    if (why === "auth_expired" || why === "shutdown") closing = null
    if (closing !== null) return setStatus("unauthorized") // the user was deleted: for good
    setStatus("connecting")
    // The token expired: a fresh one now, resuming after lastSeq.
    if (why === "auth_expired") {
      clearTimeout(retryTimer)
      retryTimer = setTimeout(() => {
        if (!closed && !socket.connected) socket.connect()
      }, 0)
    } else if (reason === "io server disconnect") {
      // Disconnected by the server on purpose (or shutting down): Socket.IO does not retry by itself.
      scheduleRetry()
    }
  })
  socket.io.on("reconnect_attempt", () => {
    if (!closed) setStatus("connecting")
  })

  socket.connect()

  return {
    get status() {
      return status
    },
    get error() {
      return error
    },
    get lastSeq() {
      return lastSeq
    },
    get identity() {
      return identity
    },
    get snapshot() {
      return snapshot
    },
    on: (name, handler) => {
      let set = byName.get(name)
      if (!set) byName.set(name, (set = new Set()))
      return subscribe(set, handler as (n: Notification) => void)
    },
    onAny: (handler) => subscribe(any, handler),
    onStatus: (handler) => {
      const off = subscribe(statusHandlers, handler)
      handler(status, error)
      return off
    },
    onError: (handler) => subscribe(errorHandlers, handler),
    onReady: (handler) => subscribe(readyHandlers, handler),
    onResync: (handler) => subscribe(resyncHandlers, handler),
    live: () => {
      if (status === "live") return Promise.resolve()
      if (status === "closed" || status === "unauthorized") return Promise.reject(new Error(`clerk-sync: ${status}`))
      return new Promise<void>((resolve, reject) => void liveWaiters.push({ resolve, reject }))
    },
    refresh,
    reconnect,
    close: () => {
      if (closed) return
      closed = true
      clearTimeout(retryTimer)
      clearTimeout(refreshTimer)
      persistNow()
      socket.disconnect()
      setStatus("closed")
    },
    socket
  }
}
