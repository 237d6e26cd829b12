/**
 * Node's `IncomingMessage` as the handler's `Incoming`, read directly: no Fetch `Request`, no web
 * stream (converting cost more CPU than verifying the signature). It must read exactly what the
 * Fetch path of the Node adapter reads (`requestOf` in `NodeHandler.ts`), since a handler takes one
 * path or the other depending only on how it was made.
 */
import { Effect } from "effect"
import type { IncomingMessage } from "node:http"
import type { BodyRead, Incoming } from "../WebhookHandler.ts"
import { attachRemoteAddress } from "./connection.ts"
import { concatBytes, decodeUtf8 } from "./utf8.ts"

export interface NodeIncoming {
  readonly incoming: Incoming
  /** Body bytes taken from the request so far (what is left is settled after the answer). */
  readonly bytesRead: () => number
}

const unreadable: BodyRead = { _tag: "Unreadable" }
const tooLarge: BodyRead = { _tag: "TooLarge" }
const empty: BodyRead = { _tag: "Read", text: "" }

const textOf = (bytes: Uint8Array): BodyRead => {
  const text = decodeUtf8(bytes)
  return text === undefined ? unreadable : { _tag: "Read", text }
}

/** The request's headers as a Fetch `Headers` (values the Fetch API refuses are dropped). */
export const fetchHeadersOf = (req: IncomingMessage): Headers => {
  const headers = new Headers()
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    try {
      headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
    } catch {
      // a header value the Fetch API refuses: drop it (svix headers are plain ASCII)
    }
  }
  return headers
}

/** The request's URL; the host is not the client's to choose, so it is always `localhost`. */
export const urlOf = (req: IncomingMessage): URL => {
  try {
    return new URL(req.url ?? "/", "http://localhost")
  } catch {
    return new URL("http://localhost/")
  }
}

/**
 * Where the body is, as the Fetch path decides it: unread in the socket, kept as bytes by
 * `express.raw()` (exactly what Svix signed), or parsed by another body parser (gone).
 */
export const bodySourceOf = (
  req: IncomingMessage
): { readonly _tag: "None" } | { readonly _tag: "Stream" } | { readonly _tag: "Kept"; readonly bytes: Uint8Array } | {
  readonly _tag: "Consumed"
} => {
  const method = req.method ?? "GET"
  if (method === "GET" || method === "HEAD") return { _tag: "None" }
  if (!(req.readableDidRead || req.readableEnded)) return { _tag: "Stream" }
  const parsed: unknown = (req as { body?: unknown }).body
  return parsed instanceof Uint8Array ? { _tag: "Kept", bytes: parsed } : { _tag: "Consumed" }
}

export const nodeIncoming = (req: IncomingMessage): NodeIncoming => {
  const method = req.method ?? "GET"
  const source = bodySourceOf(req)
  const remoteAddress = req.socket?.remoteAddress || undefined
  let bytesRead = 0
  let read = false
  let request: Request | undefined

  // Node joins a repeated header with ", " as `Headers.get` does (only a few, like
  // `content-length`, keep their first value, and the parser refuses conflicting lengths), so a
  // rotation's signatures sent as separate `svix-signature` lines read the same on both paths.
  const header = (name: string): string | undefined => {
    const value = req.headers[name]
    return Array.isArray(value) ? value.join(", ") : value
  }

  const stream = (limit: number): Effect.Effect<BodyRead> =>
    Effect.callback<BodyRead>((resume) => {
      if (req.destroyed) return resume(Effect.succeed(unreadable))
      const chunks: Array<Uint8Array> = []
      let size = 0
      const finish = (result: BodyRead) => {
        detach()
        resume(Effect.succeed(result))
      }
      const onData = (chunk: Uint8Array) => {
        bytesRead += chunk.byteLength
        size += chunk.byteLength
        if (size > limit) {
          // leave the rest in the socket: the adapter decides whether to discard it or close
          req.pause()
          return finish(tooLarge)
        }
        chunks.push(chunk)
      }
      const onEnd = () => finish(textOf(concatBytes(chunks, size)))
      const onFailure = () => finish(unreadable) // an error, or a close before the end: the upload broke
      const detach = () => {
        req.off("data", onData)
        req.off("end", onEnd)
        req.off("error", onFailure)
        req.off("close", onFailure)
      }
      req.on("data", onData)
      req.once("end", onEnd)
      req.once("error", onFailure)
      req.once("close", onFailure)
      req.resume() // a `data` listener alone does not restart a stream someone paused
      return Effect.sync(() => {
        detach()
        req.pause()
      })
    })

  const readBody = (limit: number): Effect.Effect<BodyRead> =>
    Effect.suspend(() => {
      // like a Fetch body, it can be taken once
      if (read) return Effect.succeed(unreadable)
      read = true
      switch (source._tag) {
        case "None":
          return Effect.succeed(empty)
        case "Consumed":
          return Effect.succeed(unreadable)
        case "Kept":
          return Effect.succeed(source.bytes.byteLength > limit ? tooLarge : textOf(source.bytes))
        case "Stream":
          return stream(limit)
      }
    })

  return {
    incoming: {
      method,
      header,
      bodyConsumed: source._tag === "Consumed",
      remoteAddress,
      readBody,
      // only for the `clientAddress` and rate-limit `key` callbacks, so built only when one asks
      toRequest: () => request ??= attachRemoteAddress(new Request(urlOf(req), { method, headers: fetchHeadersOf(req) }), remoteAddress)
    },
    bytesRead: () => bytesRead
  }
}
