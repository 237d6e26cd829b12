/**
 * The process's Node HTTP server, shared by the Effect HTTP routes and Socket.IO (which attaches to
 * the same server, so one port serves webhooks, the dashboard and realtime clients).
 */
import { Context, Effect, Layer } from "effect"
import { createServer, type IncomingMessage, type Server } from "node:http"

export class NodeServer extends Context.Service<NodeServer, Server>()("reference-server/NodeServer") {
  static readonly layer = Layer.sync(NodeServer, () => {
    const server = createServer()
    // Svix waits 15 s for an answer; a slow or stalled client must not hold a socket much longer.
    server.requestTimeout = 30_000
    server.headersTimeout = 20_000
    // Idle connections outlive those of the clients and proxies reusing them (load balancers commonly
    // idle out at 60 s; Node's agents close theirs a second before the `Keep-Alive: timeout` hint).
    // With Node's default 5 s, a sender reusing a connection as the server closes it gets a reset
    // instead of an answer, which a CI run of the overload test caught (24 of 2,354 attempts).
    server.keepAliveTimeout = 65_000
    return server
  })
}

type Listener = (...args: Array<any>) => void

/**
 * Runs `attach` (Socket.IO attaching to `server`) and gives the `request` and `upgrade` listeners it
 * adds the requests under `path`, alone: the Effect HTTP app's listeners, added later, would
 * otherwise answer them too (a second response on a polling request, a 404 written on a WebSocket
 * being upgraded), and Socket.IO's never see the others.
 */
export const shareWith = <A, E, R>(server: Server, path: string, attach: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const events = ["request", "upgrade"] as const
    const before = new Set(events.flatMap((e) => server.listeners(e)))
    const result = yield* attach
    const theirs = new Set(events.flatMap((e) => server.listeners(e)).filter((l) => !before.has(l)))
    const emit = server.emit.bind(server)
    server.emit = ((event: string | symbol, ...args: Array<any>): boolean => {
      if (event !== "request" && event !== "upgrade") return emit(event as string, ...args)
      const forThem = (args[0] as IncomingMessage).url?.startsWith(path) === true
      const listeners = (server.listeners(event) as Array<Listener>).filter((l) => theirs.has(l) === forThem)
      for (const l of listeners) l.apply(server, args)
      return listeners.length > 0
    }) as typeof server.emit
    return result
  })
