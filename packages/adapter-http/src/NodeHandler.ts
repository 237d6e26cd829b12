/**
 * The Node `http` / Express adapter: turns a Fetch handler into `(req, res) => void`.
 *
 * It reads the raw body itself, streaming, so the handler's size limit stops an oversize upload
 * early and the signature covers the exact bytes received. A body the handler did not read to its
 * end (an early rejection, or past the limit) is discarded before answering when what is left is
 * short, so the connection stays usable; otherwise the answer says `Connection: close` and the
 * connection is closed after it, gracefully, without reading the rest. The socket address is the
 * request's (the handler's default client address).
 *
 * clerk-sync's own handler (from `createWebhookHandler`, not wrapped) is run on Node's request
 * directly (`internal/nodeIncoming.ts`), as the Effect route does on its server's: a Fetch
 * `Request` with a web-stream body, and the `Response` read back, cost more CPU than the signature.
 * Any other Fetch handler gets a `Request` whose body streams from the socket, with the address
 * attached (`ClientAddress.remoteAddress`). Both paths read the same headers, body and address.
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
import { incomingRunnerOf } from "./internal/incomingRunner.ts"
import { bodySourceOf, fetchHeadersOf, type NodeIncoming, nodeIncoming, urlOf } from "./internal/nodeIncoming.ts"
import { closeGraceMs, defaultDiscardLimitBytes, skipsDiscard } from "./internal/unreadBody.ts"
import type * as WebhookHandler from "./WebhookHandler.ts"

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
  const method = req.method ?? "GET"
  const source = bodySourceOf(req)
  let body: BodyInit | null = null
  let upload: Upload | undefined
  if (source._tag === "Stream") body = (upload = uploadOf(req)).stream
  else if (source._tag === "Kept") body = new Uint8Array(source.bytes)
  const init: RequestInit & { duplex?: "half" } = { method, headers: fetchHeadersOf(req), body }
  if (body !== null) init.duplex = "half"
  const request = new Request(urlOf(req), init)
  attachRemoteAddress(request, req.socket.remoteAddress)
  return { request: source._tag === "Consumed" ? markBodyConsumed(request) : request, upload }
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

/**
 * Writes an answer once the rest of the body is settled: discarded when short (the connection is
 * kept), otherwise left unread behind `Connection: close`.
 */
const write = async (
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: Buffer,
  bytesRead: number,
  discardLimit: number
): Promise<void> => {
  // HTTP/2 (the compatibility API) ends an unread stream on its own, and forbids `Connection`
  const ended = req.httpVersionMajor !== 1 || await discardRest(req, bytesRead, discardLimit)
  if (res.headersSent || res.destroyed) return
  headers["content-length"] = String(body.byteLength)
  if (!ended) {
    headers["connection"] = "close"
    closeGracefully(req, res)
  }
  res.writeHead(status, headers)
  res.end(body)
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
  const headers: Record<string, string> = {}
  response.headers.forEach((value, key) => {
    headers[key] = value
  })
  await write(req, res, response.status, headers, body, upload?.bytesRead() ?? 0, discardLimit)
}

const sendAnswer = (
  req: IncomingMessage,
  res: ServerResponse,
  answer: WebhookHandler.Answer,
  bytesRead: number,
  discardLimit: number
): Promise<void> => write(req, res, answer.status, { ...answer.headers }, Buffer.from(answer.body), bytesRead, discardLimit)

const internalErrorAnswer: WebhookHandler.Answer = {
  status: 500,
  headers: { "content-type": "application/json; charset=utf-8" },
  body: JSON.stringify({ status: "error", eventId: null, error: "internal_error" })
}

const destroyUnanswered = (res: ServerResponse) => () => {
  if (!res.headersSent) res.destroy()
}

/**
 * Adapts a Fetch handler (e.g. from `createWebhookHandler`) to Node's `http` and Express.
 *
 * clerk-sync's own handler, passed as is, runs on Node's request directly: no Fetch `Request`,
 * web stream or `Response` in between, which saves more CPU than verifying the signature costs.
 * Any other Fetch handler (including one wrapping clerk-sync's) gets a Fetch `Request` whose body
 * streams from the socket. Both behave the same on the wire.
 *
 * @category adapters
 */
export const toNodeHandler = (
  handler: (request: Request) => Promise<Response>,
  options: NodeHandlerOptions = {}
): (req: IncomingMessage, res: ServerResponse) => void => {
  const discardLimit = options.discardLimitBytes ?? defaultDiscardLimitBytes
  const run = incomingRunnerOf(handler)
  if (run !== undefined) {
    return (req, res) => {
      let node: NodeIncoming
      try {
        node = nodeIncoming(req)
      } catch {
        void sendAnswer(req, res, internalErrorAnswer, 0, discardLimit).catch(destroyUnanswered(res))
        return
      }
      run(node.incoming)
        .catch(() => internalErrorAnswer)
        .then((answer) => sendAnswer(req, res, answer, node.bytesRead(), discardLimit))
        .catch(destroyUnanswered(res))
    }
  }
  return (req, res) => {
    let incoming: ReturnType<typeof requestOf>
    try {
      incoming = requestOf(req)
    } catch {
      void sendAnswer(req, res, internalErrorAnswer, 0, discardLimit).catch(destroyUnanswered(res))
      return
    }
    handler(incoming.request)
      .then(
        (response) => send(req, res, incoming.upload, response, discardLimit),
        () => {
          incoming.upload?.stop()
          return sendAnswer(req, res, internalErrorAnswer, incoming.upload?.bytesRead() ?? 0, discardLimit)
        }
      )
      .catch(destroyUnanswered(res))
  }
}
