/**
 * The Node `http` / Express adapter: turns a Fetch handler into `(req, res) => void`.
 *
 * It reads the raw body itself, streaming, so the handler's size limit stops an oversize upload
 * early and the signature covers the exact bytes received. A body the handler did not read to its
 * end (an early rejection, or past the limit) is discarded before answering when what is left is
 * short, so the connection stays usable; otherwise the answer says `Connection: close` and the
 * connection is closed after it, gracefully, without reading the rest. It attaches the socket
 * address to the request (the handler's default client address).
 *
 * Mount it BEFORE any body parser. If `express.json()` (or another parser) already consumed the
 * body, the bytes Svix signed are gone: the handler answers 500 `body_already_parsed` and logs it,
 * rather than failing every signature quietly. A body kept as raw bytes by `express.raw()` is used
 * as is.
 *
 * @example
 * import express from "express"
 * import { MemoryStore } from "@clerk-sync/core"
 * import { createWebhookHandler, toNodeHandler } from "@clerk-sync/adapter-http"
 * const app = express()
 * app.all("/api/webhooks/clerk", toNodeHandler(createWebhookHandler({ store: MemoryStore.layer, secret })))
 * app.use(express.json()) // after the webhook
 *
 * @since 0.1.0
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { attachRemoteAddress, markBodyConsumed } from "./internal/connection.ts"
import { closeGraceMs, defaultDiscardLimitBytes, skipsDiscard } from "./internal/unreadBody.ts"

/** @category models */
export interface NodeHandlerOptions {
  /**
   * Bytes of a request body left unread by the handler (rejected early, or oversize) that are
   * discarded before answering, so the connection can carry the next request (default 256 KiB).
   * Past it, or when `Content-Length` says there is more, the rest is not read: the answer says
   * `Connection: close` and the connection is closed after it.
   */
  readonly discardLimitBytes?: number
}

interface Upload {
  readonly stream: ReadableStream<Uint8Array>
  /** Detaches the stream from the socket (the handler is done with it). */
  readonly stop: () => void
  /** Body bytes received so far. */
  readonly bytesRead: () => number
}

const uploadOf = (req: IncomingMessage): Upload => {
  let settled = false
  let bytesRead = 0
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      req.on("data", (chunk: Uint8Array) => {
        if (settled) return
        bytesRead += chunk.byteLength
        controller.enqueue(chunk)
        if ((controller.desiredSize ?? 0) <= 0) req.pause()
      })
      req.on("end", () => {
        if (settled) return
        settled = true
        controller.close()
      })
      req.on("error", (error) => {
        if (settled) return
        settled = true
        controller.error(error)
      })
      req.on("close", () => {
        if (settled) return
        settled = true
        controller.error(new Error("request aborted"))
      })
      req.pause()
    },
    pull() {
      req.resume()
    },
    cancel() {
      settled = true
      req.pause()
    }
  })
  return { stream, stop: () => void (settled = true), bytesRead: () => bytesRead }
}

const requestOf = (req: IncomingMessage): { readonly request: Request; readonly upload: Upload | undefined } => {
  const headers = new Headers()
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    try {
      headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
    } catch {
      // a header value the Fetch API refuses: drop it (svix headers are plain ASCII)
    }
  }
  let url: URL
  try {
    url = new URL(req.url ?? "/", "http://localhost")
  } catch {
    url = new URL("http://localhost/")
  }
  const method = req.method ?? "GET"
  const parsed: unknown = (req as { body?: unknown }).body
  const consumed = req.readableDidRead || req.readableEnded
  let body: BodyInit | null = null
  let upload: Upload | undefined
  let bodyConsumed = false
  if (method !== "GET" && method !== "HEAD") {
    if (!consumed) body = (upload = uploadOf(req)).stream
    else if (parsed instanceof Uint8Array) body = new Uint8Array(parsed) // express.raw(): the exact bytes
    else bodyConsumed = true
  }
  const init: RequestInit & { duplex?: "half" } = { method, headers, body }
  if (body !== null) init.duplex = "half"
  const request = new Request(url, init)
  attachRemoteAddress(request, req.socket.remoteAddress)
  return { request: bodyConsumed ? markBodyConsumed(request) : request, upload }
}

/**
 * Reads and discards the rest of a body the handler left unread, up to `limit` bytes (see
 * `internal/unreadBody.ts`). True when the body ended: the connection can carry the next request.
 */
const discardRest = (req: IncomingMessage, bytesRead: number, limit: number): Promise<boolean> => {
  if (req.complete) return Promise.resolve(true)
  if (req.destroyed || skipsDiscard({ get: (name) => headerOf(req, name) }, bytesRead, limit)) return Promise.resolve(false)
  return new Promise((resolve) => {
    let discarded = 0
    const finish = (ended: boolean) => {
      req.off("data", onData)
      req.off("end", onEnd)
      req.off("close", onClose)
      if (!ended) req.pause() // stop pulling from the socket: the rest stays unread
      resolve(ended)
    }
    const onData = (chunk: Uint8Array) => {
      discarded += chunk.byteLength
      if (discarded > limit) finish(false)
    }
    const onEnd = () => finish(true)
    const onClose = () => finish(req.complete)
    req.on("data", onData)
    req.once("end", onEnd)
    req.once("close", onClose)
    req.resume()
  })
}

const headerOf = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/**
 * Node closes a `Connection: close` answer's socket (`destroySoon`) as soon as the answer is handed
 * to the kernel; with body bytes unread that close is a RST, which can destroy the answer before the
 * client reads it, and `_dump` would first read the whole upload. Both are skipped through
 * `_consuming` and `_last`, internal fields, the same ones `@effect/platform-node` sets for the same
 * reason (there is no public way in). The socket is then half-closed behind the answer, left unread,
 * and destroyed after a grace period unless the client closed it first.
 */
const closeGracefully = (req: IncomingMessage, res: ServerResponse): void => {
  res.prependListener("finish", () => {
    if (req.complete || req.socket.destroyed) return
    const socket = req.socket
    ;(req as unknown as { _consuming: boolean })._consuming = true
    ;(res as unknown as { _last: boolean })._last = false
    req.pause()
    socket.end()
    const timer = setTimeout(() => socket.destroy(), closeGraceMs)
    timer.unref()
    socket.once("close", () => clearTimeout(timer))
  })
}

const send = async (
  req: IncomingMessage,
  res: ServerResponse,
  upload: Upload | undefined,
  response: Response,
  discardLimit: number
): Promise<void> => {
  const body = Buffer.from(await response.arrayBuffer())
  upload?.stop()
  // HTTP/2 (the compatibility API) ends an unread stream on its own, and forbids `Connection`
  const ended = req.httpVersionMajor !== 1 || await discardRest(req, upload?.bytesRead() ?? 0, discardLimit)
  if (res.headersSent || res.destroyed) return
  const headers: Record<string, string> = {}
  response.headers.forEach((value, key) => {
    headers[key] = value
  })
  headers["content-length"] = String(body.byteLength)
  if (!ended) {
    headers["connection"] = "close"
    closeGracefully(req, res)
  }
  res.writeHead(response.status, headers)
  res.end(body)
}

const internalError = new Response(JSON.stringify({ status: "error", eventId: null, error: "internal_error" }), {
  status: 500,
  headers: { "content-type": "application/json; charset=utf-8" }
})

/**
 * Adapts a Fetch handler (e.g. from `createWebhookHandler`) to Node's `http` and Express.
 *
 * @category adapters
 */
export const toNodeHandler = (
  handler: (request: Request) => Promise<Response>,
  options: NodeHandlerOptions = {}
): (req: IncomingMessage, res: ServerResponse) => void => {
  const discardLimit = options.discardLimitBytes ?? defaultDiscardLimitBytes
  return (req, res) => {
    let incoming: ReturnType<typeof requestOf>
    try {
      incoming = requestOf(req)
    } catch {
      void send(req, res, undefined, internalError.clone(), discardLimit).catch(() => res.destroy())
      return
    }
    handler(incoming.request)
      .catch(() => internalError.clone())
      .then((response) => send(req, res, incoming.upload, response, discardLimit))
      .catch(() => {
        if (!res.headersSent) res.destroy()
      })
  }
}
