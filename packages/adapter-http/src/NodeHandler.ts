/**
 * The Node `http` / Express adapter: turns a Fetch handler into `(req, res) => void`.
 *
 * It reads the raw body itself, streaming, so the handler's size limit stops an oversize upload
 * early (the rest of it is discarded up to a bound, then the connection is closed) and the
 * signature covers the exact bytes received. It attaches the socket address to the request (the
 * handler's default client address).
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

/** @category models */
export interface NodeHandlerOptions {
  /**
   * Bytes of an unread request body (rejected early, or oversize) discarded after answering so the
   * client sees the answer, before the connection is closed instead (default 1 MiB).
   */
  readonly discardLimitBytes?: number
}

interface Upload {
  readonly stream: ReadableStream<Uint8Array>
  /** Detaches the stream from the socket (the handler is done with it). */
  readonly stop: () => void
}

const uploadOf = (req: IncomingMessage): Upload => {
  let settled = false
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      req.on("data", (chunk: Uint8Array) => {
        if (settled) return
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
  return { stream, stop: () => void (settled = true) }
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

const discardRest = (req: IncomingMessage, limit: number): void => {
  let discarded = 0
  req.on("data", (chunk: Uint8Array) => {
    discarded += chunk.byteLength
    if (discarded > limit) req.socket.destroy()
  })
  req.resume()
}

const send = async (
  req: IncomingMessage,
  res: ServerResponse,
  upload: Upload | undefined,
  response: Response,
  discardLimit: number
): Promise<void> => {
  const body = Buffer.from(await response.arrayBuffer())
  if (res.headersSent || res.destroyed) return
  const headers: Record<string, string> = {}
  response.headers.forEach((value, key) => {
    headers[key] = value
  })
  headers["content-length"] = String(body.byteLength)
  res.writeHead(response.status, headers)
  res.end(body)
  upload?.stop()
  if (!req.readableEnded && !req.destroyed) discardRest(req, discardLimit)
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
  const discardLimit = options.discardLimitBytes ?? 1024 * 1024
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
