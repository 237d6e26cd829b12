/**
 * HTTP/1.1 clients that show what happens on the connection: a raw `net` uploader that reads the
 * answer while it is still sending, and a keep-alive agent's pair of requests.
 */
import { Agent, request as httpRequest, type Server } from "node:http"
import { connect, type Socket } from "node:net"

export interface RawAnswer {
  readonly status: number
  /** Lower-cased names; the last value of a repeated header. */
  readonly headers: Record<string, string>
  readonly body: string
  /** Every socket error seen during the exchange (`ECONNRESET`, `EPIPE`…). */
  readonly errors: ReadonlyArray<string>
  /** Body bytes handed to the socket before the answer stopped the upload. */
  readonly bytesSent: number
}

/**
 * POSTs `total` body bytes on a keep-alive connection (chunked, or with a `Content-Length`),
 * writing as fast as the socket takes them, and reads the answer meanwhile. Once the answer is
 * complete it stops sending and, when the answer says `Connection: close`, closes the connection
 * as RFC 9112 §9.6 asks (as curl, undici and Node's client do). Otherwise it sends nothing more and
 * hangs up itself. Rejects if the connection ends before a complete answer.
 */
export const rawUpload = (
  port: number,
  options: {
    readonly path: string
    readonly headers?: Record<string, string>
    readonly total: number
    readonly framing: "chunked" | "content-length"
  }
): Promise<RawAnswer> =>
  new Promise((resolve, reject) => {
    const socket: Socket = connect(port, "127.0.0.1")
    const errors: Array<string> = []
    let received = Buffer.alloc(0)
    let bytesSent = 0
    let answered: Omit<RawAnswer, "errors" | "bytesSent"> | undefined
    const head = [
      `POST ${options.path} HTTP/1.1`,
      "Host: 127.0.0.1",
      "Connection: keep-alive",
      ...Object.entries(options.headers ?? {}).map(([name, value]) => `${name}: ${value}`),
      options.framing === "chunked" ? "Transfer-Encoding: chunked" : `Content-Length: ${options.total}`
    ]
    socket.write(head.join("\r\n") + "\r\n\r\n")
    const block = Buffer.alloc(64 * 1024, 0x61)
    const pump = () => {
      while (answered === undefined && !socket.destroyed && bytesSent < options.total) {
        const n = Math.min(block.length, options.total - bytesSent)
        const piece = options.framing === "chunked"
          ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), block.subarray(0, n), Buffer.from("\r\n")])
          : block.subarray(0, n)
        bytesSent += n
        if (!socket.write(piece)) return void socket.once("drain", pump)
      }
      if (answered === undefined && !socket.destroyed && options.framing === "chunked") socket.write("0\r\n\r\n")
    }
    socket.on("connect", pump)
    socket.on("data", (data: Buffer) => {
      received = Buffer.concat([received, data])
      const end = received.indexOf("\r\n\r\n")
      if (answered !== undefined || end < 0) return
      const [statusLine = "", ...lines] = received.subarray(0, end).toString("latin1").split("\r\n")
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const colon = line.indexOf(":")
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      const length = Number(headers["content-length"] ?? Number.NaN)
      if (!(received.length - end - 4 >= length)) return
      answered = {
        status: Number(statusLine.split(" ")[1]),
        headers,
        body: received.subarray(end + 4, end + 4 + length).toString("utf8")
      }
      socket.destroy()
    })
    socket.on("error", (error: NodeJS.ErrnoException) => void errors.push(error.code ?? error.message))
    socket.on("close", () => {
      if (answered === undefined) reject(new Error(`connection closed without a complete answer (${errors.join(", ") || "no error"})`))
      else resolve({ ...answered, errors, bytesSent })
    })
  })

export interface AgentReply {
  readonly status: number
  readonly connection: string | undefined
  readonly body: string
  /** Whether the request went out on a connection an earlier request had used. */
  readonly reusedSocket: boolean
  /** Errors the request reported, also after its answer (an upload cut by a reset). */
  readonly errors: ReadonlyArray<string>
}

/** A keep-alive agent with one connection: a second request reuses the first one's when it can. */
export const keepAliveClient = (port: number) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const post = (
    path: string,
    body: string | Uint8Array,
    headers: Record<string, string>,
    framing: "chunked" | "content-length" = "content-length"
  ): Promise<AgentReply> =>
    new Promise((resolve, reject) => {
      const length = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength
      const errors: Array<string> = []
      let reply: Omit<AgentReply, "errors"> | undefined
      const req = httpRequest({
        host: "127.0.0.1",
        port,
        path,
        method: "POST",
        agent,
        headers: framing === "content-length" ? { ...headers, "content-length": String(length) } : headers
      }, (res) => {
        const parts: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => parts.push(chunk))
        res.on("end", () => {
          reply = {
            status: res.statusCode ?? 0,
            connection: res.headers.connection,
            body: Buffer.concat(parts).toString("utf8"),
            reusedSocket: req.reusedSocket
          }
        })
        res.on("error", (error: NodeJS.ErrnoException) => void errors.push(error.code ?? error.message))
      })
      req.on("error", (error: NodeJS.ErrnoException) => void errors.push(error.code ?? error.message))
      // `close` comes after the answer and after any error of the upload, so none is missed
      req.on("close", () => {
        if (reply === undefined) reject(new Error(`no answer (${errors.join(", ") || "no error"})`))
        else resolve({ ...reply, errors })
      })
      if (framing === "chunked") {
        req.write(body)
        req.end()
      } else req.end(body)
    })
  return { post, close: () => agent.destroy() }
}

/** The most body bytes the server read from any one connection so far (a bound on its buffering). */
export const serverBytesRead = (server: Server): (() => number) => {
  const sockets: Array<Socket> = []
  server.on("connection", (socket: Socket) => void sockets.push(socket))
  return () => Math.max(0, ...sockets.map((socket) => socket.bytesRead))
}
