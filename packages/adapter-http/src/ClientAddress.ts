/**
 * Where a webhook request came from, for the allow-list, the rate limiter and (when enabled) logs.
 *
 * A Fetch `Request` carries no peer address. Servers that know it attach it with {@link attach}
 * (the Node adapter and the Effect route do so with the socket address); {@link remoteAddress},
 * the handler's default `clientAddress`, reads it back. Behind a proxy, {@link forwardedFor} reads
 * `X-Forwarded-For`, but only when the peer is one of your trusted proxies: the header is
 * otherwise whatever the client chose to send.
 *
 * @example
 * // Bun: Bun.serve({ fetch: (req, server) => handler(ClientAddress.attach(req, server.requestIP(req)?.address)) })
 * // Hono on Node: app.post(path, (c) => handler(ClientAddress.attach(c.req.raw, getConnInfo(c).remote.address)))
 * import { ClientAddress, createWebhookHandler } from "@clerk-sync/adapter-http"
 * const handler = createWebhookHandler({
 *   store, secret,
 *   allow: ["44.228.126.217", "50.112.21.217"],
 *   clientAddress: ClientAddress.forwardedFor({ trustedProxies: ["10.0.0.0/8"] })
 * })
 *
 * @since 0.1.0
 */
import * as Cidr from "./Cidr.ts"
import { attachRemoteAddress, remoteAddressOf } from "./internal/connection.ts"

/**
 * Records the peer address of a request (the TCP socket's). Returns the same request, for chaining.
 *
 * @category attaching
 */
export const attach: (request: Request, address: string | null | undefined) => Request = attachRemoteAddress

/**
 * The peer address attached to a request, if any. The default `clientAddress` of the handler.
 *
 * @category reading
 */
export const remoteAddress: (request: Request) => string | undefined = remoteAddressOf

/**
 * A `clientAddress` function for servers behind proxies: when the peer is a trusted proxy, the
 * client is the right-most `X-Forwarded-For` entry that is not itself a trusted proxy; otherwise
 * the client is the peer. Throws {@link Cidr.InvalidRange} on a bad range.
 *
 * @category reading
 */
export const forwardedFor = (options: {
  /** CIDR ranges of your own proxies / load balancers. */
  readonly trustedProxies: ReadonlyArray<string>
  /** Where the peer address comes from (default {@link remoteAddress}). */
  readonly peer?: (request: Request) => string | undefined
  /** The header to read (default `x-forwarded-for`). */
  readonly header?: string
}): (request: Request) => string | undefined => {
  const trusted = Cidr.make(options.trustedProxies)
  const peerOf = options.peer ?? remoteAddress
  const header = options.header ?? "x-forwarded-for"
  return (request) => {
    const peer = peerOf(request)
    if (peer === undefined || !Cidr.contains(trusted, peer)) return peer
    const hops = (request.headers.get(header) ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!
      if (!Cidr.contains(trusted, hop)) return Cidr.parseAddress(hop) === undefined ? undefined : hop
    }
    return hops[0] ?? peer
  }
}
