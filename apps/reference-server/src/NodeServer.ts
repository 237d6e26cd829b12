/**
 * The process's Node HTTP server, shared by the Effect HTTP routes and Socket.IO (which attaches to
 * the same server, so one port serves webhooks, the dashboard and realtime clients).
 */
import { Context, Layer } from "effect"
import { createServer, type Server } from "node:http"

export class NodeServer extends Context.Service<NodeServer, Server>()("reference-server/NodeServer") {
  static readonly layer = Layer.sync(NodeServer, () => {
    const server = createServer()
    // Svix waits 15 s for an answer; a slow or stalled client must not hold a socket much longer.
    server.requestTimeout = 30_000
    server.headersTimeout = 20_000
    return server
  })
}
