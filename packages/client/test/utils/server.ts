/**
 * A real clerk-sync Socket.IO server (in-memory store) on 127.0.0.1, and a Clerk-like token issuer.
 */
import { SocketIoRealtime } from "@clerk-sync/adapter-socketio"
import { ClerkSimulator, Ingest, MemoryStore, Publisher, Relay, SyncStore } from "@clerk-sync/core"
import { Effect } from "effect"
import * as jose from "jose"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"

export const ADMIN_TOKEN = "client-tests-admin-token"

export interface Issuer {
  readonly publicPem: string
  readonly sign: (sub: string, expiresIn?: number) => Promise<string>
}

export const makeIssuer = async (): Promise<Issuer> => {
  const { publicKey, privateKey } = await jose.generateKeyPair("RS256")
  return {
    publicPem: await jose.exportSPKI(publicKey),
    sign: (sub, expiresIn = 600) => {
      const now = Math.floor(Date.now() / 1000)
      return new jose.SignJWT({ sid: "sess_1" }).setProtectedHeader({ alg: "RS256" }).setSubject(sub).setIssuedAt(now)
        .setNotBefore(now - 5).setExpirationTime(now + expiresIn).sign(privateKey)
    }
  }
}

export interface TestServer {
  readonly url: string
  readonly http: Server
  readonly issuer: Issuer
  readonly clerk: ClerkSimulator.ClerkSimulator
  readonly store: SyncStore.SyncStoreShape
  readonly realtime: SocketIoRealtime.SocketIoRealtime
  /** Ingests the simulator's new events and relays them. */
  readonly flush: () => Promise<void>
  readonly close: () => Promise<void>
}

export interface ServerOptions {
  /** The server's clock (default: the system's), to make tokens expire soon. */
  readonly now?: () => number
  /** Tolerance for `exp` (default the verifier's, 5 s). */
  readonly clockToleranceSeconds?: number
}

export const startServer = async (issuer?: Issuer, options: ServerOptions = {}): Promise<TestServer> => {
  const iss = issuer ?? (await makeIssuer())
  const store = await Effect.runPromise(MemoryStore.make)
  const http = createServer()
  const realtime = SocketIoRealtime.attach(store, {
    httpServer: http,
    auth: { jwtKey: iss.publicPem, adminToken: ADMIN_TOKEN, ...options },
    pollIntervalMs: 0,
    onError: () => {}
  })
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve))
  await realtime.ready
  const clerk = new ClerkSimulator.ClerkSimulator({ startAt: Date.UTC(2026, 0, 1) })
  let sent = 0
  const run = <A, E>(effect: Effect.Effect<A, E, SyncStore.SyncStore | Publisher.Publisher>) =>
    Effect.runPromise(effect.pipe(
      Effect.provideService(SyncStore.SyncStore, store),
      Effect.provideService(Publisher.Publisher, realtime.publisher)
    ))
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    http,
    issuer: iss,
    clerk,
    store,
    realtime,
    flush: async () => {
      const events = clerk.events.slice(sent)
      sent = clerk.events.length
      for (const e of events) await run(Ingest.ingest(e))
      await run(Relay.drain())
    },
    close: async () => {
      await realtime.close()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const waitFor = async (predicate: () => boolean, what = "condition", timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}
