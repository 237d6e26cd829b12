/**
 * Realtime clients for the benchmarks: Socket.IO clients of either server that report, for each
 * `user.updated` notification, the marker in the user's first name and when it arrived.
 *
 * - clerk-sync: namespace `/clerk-sync`, admin credential (the `admin` audience receives every
 *   notification, as every client of the baseline does), payload `{ user: { firstName }, seq }`.
 * - baseline: the default namespace, no credential (its `io.emit` reaches everyone), payload
 *   `{ user: { first_name } }`.
 */
import { io, type Socket } from "socket.io-client"

export type ServerKind = "clerk-sync" | "baseline"

export interface ClientPool {
  readonly sockets: ReadonlyArray<Socket>
  /** Connected clients now. */
  readonly connected: () => number
  readonly close: () => void
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Connects `n` clients (in waves, so the server is not flooded with handshakes) and calls
 * `onMarker(marker, receivedAt)` for each `user.updated` any of them receives.
 */
export const connectClients = async (options: {
  readonly kind: ServerKind
  readonly url: string
  readonly token?: string
  readonly n: number
  readonly onMarker: (marker: string, at: number, client: number) => void
  readonly wave?: number
  readonly timeoutMs?: number
}): Promise<ClientPool> => {
  const sockets: Array<Socket> = []
  let connected = 0
  const wave = options.wave ?? 200
  for (let i = 0; i < options.n; i++) {
    const index = i
    const socket = options.kind === "clerk-sync"
      ? io(`${options.url}/clerk-sync`, { transports: ["websocket"], forceNew: true, auth: { token: options.token } })
      : io(options.url, { transports: ["websocket"], forceNew: true })
    socket.on("connect", () => void connected++)
    socket.on("disconnect", () => void connected--)
    socket.on("user.updated", (payload: { readonly user?: { readonly firstName?: string; readonly first_name?: string } }) => {
      const at = performance.now()
      const marker = payload.user?.firstName ?? payload.user?.first_name
      if (marker) options.onMarker(marker, at, index)
    })
    sockets.push(socket)
    if (sockets.length % wave === 0) {
      const deadline = Date.now() + (options.timeoutMs ?? 60_000)
      while (connected < sockets.length && Date.now() < deadline) await sleep(20)
    }
  }
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  while (connected < options.n && Date.now() < deadline) await sleep(20)
  return {
    sockets,
    connected: () => connected,
    close: () => {
      for (const s of sockets) s.disconnect()
    }
  }
}
