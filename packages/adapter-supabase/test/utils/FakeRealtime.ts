/**
 * A local HTTP server implementing Supabase Realtime's REST broadcast endpoint as documented and as
 * Realtime implements it (`POST /realtime/v1/api/broadcast`, `apikey` + `Authorization: Bearer`,
 * body `{ messages: [{ topic, event, payload, private }] }`, `202` on success, `422` on a bad body,
 * `429` over the rate), recording every request exactly, failing on demand, and fanning messages
 * out to subscribers of private topics — grouped by topic within a request, as Realtime does (so
 * order holds within a topic, not across topics).
 */
import { createServer, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly search: string
  readonly headers: IncomingHttpHeaders
  readonly rawBody: string
  readonly body: unknown
  readonly at: number
}

export interface Message {
  readonly topic: string
  readonly event: string
  readonly payload: Record<string, unknown>
  readonly private: boolean
}

export interface FakeSubscriber {
  /** Payloads received, in arrival order. */
  readonly received: Array<Record<string, unknown>>
  readonly byTopic: Map<string, Array<Record<string, unknown>>>
}

export interface FakeRealtime {
  readonly url: string
  readonly requests: Array<RecordedRequest>
  /** Answers the next requests with these (then 202 again). */
  readonly failNext: (...responses: ReadonlyArray<{ readonly status: number; readonly headers?: Record<string, string>; readonly body?: string; readonly hang?: boolean }>) => void
  readonly subscribe: (topics: ReadonlyArray<string>) => FakeSubscriber
  readonly close: () => Promise<void>
}

const isMessage = (m: unknown): m is Message =>
  typeof m === "object" && m !== null && typeof (m as Message).topic === "string" && typeof (m as Message).event === "string" &&
  typeof (m as Message).payload === "object" && (m as Message).payload !== null &&
  ((m as { private?: unknown }).private === undefined || typeof (m as Message).private === "boolean")

export const startFakeRealtime = async (serviceKey: string): Promise<FakeRealtime> => {
  const requests: Array<RecordedRequest> = []
  const failures: Array<{ status: number; headers?: Record<string, string>; body?: string; hang?: boolean }> = []
  const subscribers: Array<{ topics: Set<string>; sub: FakeSubscriber }> = []
  const server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const rawBody = Buffer.concat(chunks).toString("utf8")
      const url = new URL(req.url ?? "/", "http://x")
      let body: unknown = null
      try {
        body = JSON.parse(rawBody)
      } catch {
        // recorded as null
      }
      requests.push({ method: req.method ?? "", path: url.pathname, search: url.search, headers: req.headers, rawBody, body, at: Date.now() })
      const failure = failures.shift()
      if (failure?.hang) return // never answers: the client's timeout must fire
      if (failure) return void res.writeHead(failure.status, failure.headers).end(failure.body ?? "")
      if (req.method !== "POST" || url.pathname !== "/realtime/v1/api/broadcast") return void res.writeHead(404).end()
      if (req.headers["apikey"] !== serviceKey || req.headers["authorization"] !== `Bearer ${serviceKey}`) {
        return void res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ message: "Unauthorized" }))
      }
      const messages = (body as { messages?: unknown } | null)?.messages
      if (!Array.isArray(messages) || !messages.every(isMessage)) {
        return void res.writeHead(422, { "content-type": "application/json" }).end(JSON.stringify({ message: "invalid messages" }))
      }
      // Realtime groups a request's private messages by topic: order holds within a topic only.
      const byTopic = new Map<string, Array<Message>>()
      for (const m of messages.filter((m) => m.private === true)) {
        const list = byTopic.get(m.topic) ?? []
        list.push(m)
        byTopic.set(m.topic, list)
      }
      for (const topic of [...byTopic.keys()].sort()) {
        for (const m of byTopic.get(topic)!) {
          for (const s of subscribers) {
            if (!s.topics.has(m.topic)) continue
            s.sub.received.push(m.payload)
            const list = s.sub.byTopic.get(m.topic) ?? []
            list.push(m.payload)
            s.sub.byTopic.set(m.topic, list)
          }
        }
      }
      res.writeHead(202).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    failNext: (...responses) => void failures.push(...responses),
    subscribe: (topics) => {
      const sub: FakeSubscriber = { received: [], byTopic: new Map() }
      subscribers.push({ topics: new Set(topics), sub })
      return sub
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
