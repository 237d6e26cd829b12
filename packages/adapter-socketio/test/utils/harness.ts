/**
 * A clerk-sync Socket.IO server on 127.0.0.1 (ephemeral port) over a store, with the relay driven
 * by the test, and raw socket.io-client connections that record what they receive.
 */
import { ClerkSimulator, Ingest, Notification, Publisher, Relay, SyncStore } from "@clerk-sync/core"
import { Effect } from "effect"
import { createServer, type Server as HttpServer } from "node:http"
import type { AddressInfo } from "node:net"
import { io as connectClient, type Socket as ClientSocket } from "socket.io-client"
import * as SocketIoRealtime from "../../src/SocketIoRealtime.ts"
import type { Options } from "../../src/SocketIoRealtime.ts"
import type { Hello, Ready } from "../../src/Protocol.ts"
import { CLOSING, HELLO, READY } from "../../src/Protocol.ts"
import { makeIssuer, type TestIssuer } from "./keys.ts"

export const ADMIN_TOKEN = "admin-token-for-tests-0123456789"

export interface TestServer {
  readonly url: string
  readonly http: HttpServer
  readonly realtime: SocketIoRealtime.SocketIoRealtime
  readonly store: SyncStore.SyncStoreShape
  readonly issuer: TestIssuer
  /** Ingests deliveries into the store (no publishing). */
  readonly ingest: (events: ReadonlyArray<{ readonly svixId: string; readonly body: string }>) => Promise<void>
  /** Runs the outbox relay once through this node's publisher. */
  readonly relay: () => Promise<number>
  /** Ingests, then relays. */
  readonly send: (events: ReadonlyArray<{ readonly svixId: string; readonly body: string }>) => Promise<void>
  readonly close: () => Promise<void>
}

export const startServer = async (
  store: SyncStore.SyncStoreShape,
  options: Partial<Options> & { readonly issuer?: TestIssuer } = {}
): Promise<TestServer> => {
  const issuer = options.issuer ?? (await makeIssuer())
  const http = createServer()
  const realtime = SocketIoRealtime.attach(store, {
    httpServer: http,
    auth: { jwtKey: issuer.publicPem, adminToken: ADMIN_TOKEN },
    pollIntervalMs: 0,
    onError: () => {},
    ...options
  })
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve))
  await realtime.ready
  const { port } = http.address() as AddressInfo
  const provide = <A, E>(effect: Effect.Effect<A, E, SyncStore.SyncStore | Publisher.Publisher>) =>
    Effect.runPromise(effect.pipe(
      Effect.provideService(SyncStore.SyncStore, store),
      Effect.provideService(Publisher.Publisher, realtime.publisher)
    ))
  const ingest = async (events: ReadonlyArray<{ readonly svixId: string; readonly body: string }>) => {
    for (const e of events) await provide(Ingest.ingest({ svixId: e.svixId, body: e.body }))
  }
  const relay = () => provide(Relay.drain())
  return {
    url: `http://127.0.0.1:${port}`,
    http,
    realtime,
    store,
    issuer,
    ingest,
    relay,
    send: async (events) => {
      await ingest(events)
      await relay()
    },
    close: async () => {
      await realtime.close()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    }
  }
}

export interface Recorder {
  readonly socket: ClientSocket
  /** Notifications received, in order. */
  readonly delivered: Array<Notification.Delivered>
  readonly hellos: Array<Hello>
  readonly readies: Array<Ready>
  readonly closings: Array<unknown>
  /** Resolves with the connect_error, or null once connected. */
  readonly connected: Promise<{ readonly message: string; readonly code: string | undefined } | null>
  readonly lastSeq: () => number
  readonly waitFor: (predicate: () => boolean, what?: string, timeoutMs?: number) => Promise<void>
  readonly close: () => void
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const waitFor = async (predicate: () => boolean, what = "condition", timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

export const record = (
  url: string,
  auth: { readonly token?: string | undefined; readonly lastSeq?: number | undefined },
  options: { readonly namespace?: string } = {}
): Recorder => {
  const socket = connectClient(`${url}${options.namespace ?? "/clerk-sync"}`, {
    auth: { ...auth },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true
  })
  const delivered: Array<Notification.Delivered> = []
  const hellos: Array<Hello> = []
  const readies: Array<Ready> = []
  const closings: Array<unknown> = []
  socket.on(HELLO, (h: Hello) => hellos.push(h))
  socket.on(READY, (r: Ready) => readies.push(r))
  socket.on(CLOSING, (c: unknown) => closings.push(c))
  for (const name of Notification.NAMES) socket.on(name, (d: Notification.Delivered) => delivered.push(d))
  const connected = new Promise<{ readonly message: string; readonly code: string | undefined } | null>((resolve) => {
    socket.once("connect", () => resolve(null))
    socket.once("connect_error", (err: Error & { data?: { code?: string } }) => resolve({ message: err.message, code: err.data?.code }))
  })
  return {
    socket,
    delivered,
    hellos,
    readies,
    closings,
    connected,
    lastSeq: () => delivered.at(-1)?.seq ?? readies.at(-1)?.seq ?? 0,
    waitFor,
    close: () => socket.disconnect()
  }
}

/** Connects and waits until the server says the client is caught up. */
export const connectReady = async (
  url: string,
  auth: { readonly token?: string | undefined; readonly lastSeq?: number | undefined }
): Promise<Recorder> => {
  const r = record(url, auth)
  const error = await r.connected
  if (error) throw new Error(`connect_error ${error.code}: ${error.message}`)
  await waitFor(() => r.readies.length > 0, "ready")
  return r
}

export { ClerkSimulator }
