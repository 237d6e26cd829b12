/**
 * What the server knew about a request that a Fetch `Request` cannot carry: the peer address, and
 * whether a framework already consumed the body. Keyed by the request object itself.
 */
interface Connection {
  remoteAddress?: string
  bodyConsumed?: boolean
}

const connections = new WeakMap<Request, Connection>()

const connectionOf = (request: Request): Connection => {
  let connection = connections.get(request)
  if (connection === undefined) {
    connection = {}
    connections.set(request, connection)
  }
  return connection
}

export const attachRemoteAddress = (request: Request, address: string | null | undefined): Request => {
  if (address) connectionOf(request).remoteAddress = address
  return request
}

export const remoteAddressOf = (request: Request): string | undefined => connections.get(request)?.remoteAddress

export const markBodyConsumed = (request: Request): Request => {
  connectionOf(request).bodyConsumed = true
  return request
}

export const isBodyConsumed = (request: Request): boolean => connections.get(request)?.bodyConsumed === true
