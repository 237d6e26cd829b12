import { SyncStore } from "@clerk-sync/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Logger, Redacted, References } from "effect"
import { TestClock } from "effect/testing"
import { ClientAddress, Signature, WebhookHandler } from "../src/index.ts"
import {
  captureLog,
  inboxSize,
  makeFaultyStore,
  nextId,
  NOW,
  NOW_SECONDS,
  SECRET,
  SECRET_NEXT,
  SECRET_OTHER,
  signed,
  undecodable,
  unknownType,
  URL_,
  userCreated
} from "./utils/index.ts"

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: WebhookHandler.ResponseBody
}

const setup = (options: Partial<WebhookHandler.Options> = {}) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(NOW)
    const faulty = yield* makeFaultyStore
    const capture = captureLog()
    const endpoint = WebhookHandler.make({ secret: SECRET, log: capture.log, ...options })
    const send = (request: Request) =>
      Effect.gen(function*() {
        const response = yield* WebhookHandler.handleWebhook(request, endpoint).pipe(
          Effect.provideService(SyncStore.SyncStore, faulty.store)
        )
        const text = yield* Effect.promise(() => response.text())
        const answer: Answer = { status: response.status, headers: response.headers, body: JSON.parse(text) }
        return answer
      })
    const stored = inboxSize(faulty.memory)
    return { ...faulty, endpoint, send, stored, lines: capture.lines }
  })

const streamOf = (chunks: Iterable<Uint8Array>, onPull?: () => void): ReadableStream<Uint8Array> => {
  const iterator = chunks[Symbol.iterator]()
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      onPull?.()
      const next = iterator.next()
      if (next.done) controller.close()
      else controller.enqueue(next.value)
    }
  })
}

describe("WebhookHandler: 200 for every authentic delivery", () => {
  it.effect("processed: the user is synced and the inbox records it", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      const answer = yield* t.send(signed({ svixId: "msg_processed" }))
      assert.strictEqual(answer.status, 200)
      assert.deepStrictEqual(answer.body, { status: "processed", eventId: "msg_processed" })
      assert.strictEqual(answer.headers.get("content-type"), "application/json; charset=utf-8")
      const counts = yield* t.memory.counts
      assert.strictEqual(counts.users, 1)
      assert.strictEqual(counts.inbox.processed, 1)
    }))

  it.effect("duplicate: a replay of the same svix-id (re-signed later, as Svix retries) does nothing", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      assert.strictEqual((yield* t.send(signed({ svixId: "msg_replayed" }))).body.status, "processed")
      yield* TestClock.adjust("1 minute")
      const replay = yield* t.send(signed({ svixId: "msg_replayed", timestamp: NOW_SECONDS + 60 }))
      assert.strictEqual(replay.status, 200)
      assert.deepStrictEqual(replay.body, { status: "duplicate", eventId: "msg_replayed" })
      assert.strictEqual(yield* t.stored, 1)
    }))

  it.effect("ignored: an event type clerk-sync does not sync", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      const answer = yield* t.send(signed({ body: unknownType }))
      assert.strictEqual(answer.status, 200)
      assert.strictEqual(answer.body.status, "ignored")
      assert.strictEqual((yield* t.memory.counts).inbox.ignored, 1)
    }))

  it.effect("failed: authentic but undecodable (or not JSON) is recorded as failed, answered 200", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      for (const body of [undecodable, "not json at all", ""]) {
        const answer = yield* t.send(signed({ body }))
        assert.strictEqual(answer.status, 200)
        assert.strictEqual(answer.body.status, "failed")
        assert.strictEqual(answer.body.error, "undecodable_payload")
      }
      const counts = yield* t.memory.counts
      assert.strictEqual(counts.inbox.failed, 3)
      assert.strictEqual(counts.users, 0)
    }))

  it.effect("the Svix documentation's test vector verifies", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      yield* TestClock.setTime(1731705121 * 1000 + 30_000)
      const request = new Request(URL_, {
        method: "POST",
        headers: {
          "svix-id": "msg_loFOjxBNrRLzqYUf",
          "svix-timestamp": "1731705121",
          "svix-signature": "v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0="
        },
        body: "{\"event_type\":\"ping\",\"data\":{\"success\":true}}"
      })
      const answer = yield* t.send(request)
      assert.strictEqual(answer.status, 200)
      assert.strictEqual(answer.body.eventId, "msg_loFOjxBNrRLzqYUf")
    }))
})

describe("WebhookHandler: rejections store nothing", () => {
  it.effect("405 for any method but POST, with Allow: POST", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      for (const method of ["GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
        const answer = yield* t.send(signed({ method }))
        assert.strictEqual(answer.status, 405, method)
        assert.strictEqual(answer.headers.get("allow"), "POST")
      }
      assert.strictEqual(yield* t.stored, 0)
    }))

  it.effect("400 when a svix header is missing", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      for (const header of ["svix-id", "svix-timestamp", "svix-signature"]) {
        const answer = yield* t.send(signed({ headers: { [header]: null } }))
        assert.strictEqual(answer.status, 400, header)
        assert.strictEqual(answer.body.error, "missing_headers")
      }
      assert.strictEqual(yield* t.stored, 0)
    }))

  it.effect("400 when a svix header is malformed", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      for (
        const headers of [
          { "svix-timestamp": "1767225600.5" },
          { "svix-timestamp": "-1" },
          { "svix-timestamp": "1e9" },
          { "svix-id": "msg with spaces" },
          { "svix-id": "m".repeat(257) },
          { "svix-signature": "v1," + "a".repeat(5000) }
        ]
      ) {
        const answer = yield* t.send(signed({ headers }))
        assert.strictEqual(answer.status, 400, JSON.stringify(headers).slice(0, 80))
        assert.strictEqual(answer.body.error, "invalid_headers")
      }
      assert.strictEqual(yield* t.stored, 0)
    }))

  it.effect("400 when the body is not UTF-8 or its stream fails", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      const invalid = yield* t.send(signed({ body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }))
      assert.strictEqual(invalid.status, 400)
      assert.strictEqual(invalid.body.error, "unreadable_body")
      const failing = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.error(new Error("connection reset"))
        }
      })
      const base = signed()
      const broken = yield* t.send(new Request(URL_, { method: "POST", headers: base.headers, body: failing, duplex: "half" } as RequestInit))
      assert.strictEqual(broken.status, 400)
      assert.strictEqual(yield* t.stored, 0)
    }))

  it.effect("401 for a bad signature: wrong secret, tampered body, other svix-id, unknown version", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      const good = signed({ svixId: "msg_original" })
      const signature = good.headers.get("svix-signature")!
      const cases: ReadonlyArray<Request> = [
        signed({ secret: SECRET_OTHER }),
        signed({ headers: { "svix-signature": signature }, body: userCreated.replace("John", "Jane") }),
        signed({ headers: { "svix-signature": signature, "svix-id": "msg_other" } }),
        signed({ headers: { "svix-signature": signature.replace("v1,", "v2,") } }),
        signed({ headers: { "svix-signature": "v1,garbage" } }),
        signed({ headers: { "svix-signature": signature, "svix-timestamp": String(NOW_SECONDS + 1) } })
      ]
      for (const request of cases) {
        const answer = yield* t.send(request)
        assert.strictEqual(answer.status, 401)
        assert.strictEqual(answer.body.error, "invalid_signature")
      }
      assert.strictEqual(yield* t.stored, 0)
    }))

  it.effect("401 for a timestamp more than 5 minutes old or ahead; exactly 5 minutes is accepted", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      for (const offset of [-301, 301, -86_400, 86_400 * 365, -NOW_SECONDS]) {
        const answer = yield* t.send(signed({ timestamp: NOW_SECONDS + offset }))
        assert.strictEqual(answer.status, 401, String(offset))
        assert.strictEqual(answer.body.error, "timestamp_out_of_tolerance")
      }
      assert.strictEqual(yield* t.stored, 0)
      for (const offset of [-300, 300]) {
        assert.strictEqual((yield* t.send(signed({ timestamp: NOW_SECONDS + offset }))).status, 200, String(offset))
      }
      assert.strictEqual(yield* t.stored, 2)
    }))

  it.effect("413 when Content-Length declares too much: the body is never read", () =>
    Effect.gen(function*() {
      const t = yield* setup({ maxBodyBytes: 1024 })
      const answer = yield* t.send(signed({ body: "x".repeat(2000) }))
      assert.strictEqual(answer.status, 413)
      assert.strictEqual(answer.body.error, "payload_too_large")
      assert.strictEqual(yield* t.stored, 0)
    }))

  it.effect("413 while streaming a body without Content-Length: an endless upload is cut off", () =>
    Effect.gen(function*() {
      const t = yield* setup({ maxBodyBytes: 4096 })
      let pulls = 0
      const endless = streamOf((function*() {
        while (true) yield new Uint8Array(1000).fill(0x61)
      })(), () => pulls++)
      const base = signed()
      const answer = yield* t.send(new Request(URL_, { method: "POST", headers: base.headers, body: endless, duplex: "half" } as RequestInit))
      assert.strictEqual(answer.status, 413)
      assert.isAtMost(pulls, 8)
      assert.strictEqual(yield* t.stored, 0)
    }))

  it.effect("a chunked body within the limit is verified over its exact bytes", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      const bytes = new TextEncoder().encode(userCreated)
      const chunks = [bytes.slice(0, 1), bytes.slice(1, 700), bytes.slice(700)] // splits a multi-byte boundary-free text
      const base = signed({ svixId: "msg_chunked" })
      const answer = yield* t.send(new Request(URL_, { method: "POST", headers: base.headers, body: streamOf(chunks), duplex: "half" } as RequestInit))
      assert.strictEqual(answer.status, 200)
      assert.strictEqual(answer.body.status, "processed")
    }))

  it.effect("403 outside the allow-list (IPv4, IPv6, mapped IPv4); an unknown address is refused too", () =>
    Effect.gen(function*() {
      const t = yield* setup({ allow: ["10.0.0.0/8", "2001:db8::/32"] })
      const from = (address: string | undefined) => ClientAddress.attach(signed(), address)
      for (const address of ["192.168.1.1", "11.0.0.1", "2001:db9::1", "::ffff:192.168.1.1", undefined]) {
        const answer = yield* t.send(from(address))
        assert.strictEqual(answer.status, 403, String(address))
        assert.strictEqual(answer.body.error, "forbidden")
      }
      assert.strictEqual(yield* t.stored, 0)
      for (const address of ["10.1.2.3", "::ffff:10.1.2.3", "2001:db8:1::7"]) {
        assert.strictEqual((yield* t.send(from(address))).status, 200, address)
      }
    }))

  it.effect("403 is decided before the signature: an allowed address still needs a valid one", () =>
    Effect.gen(function*() {
      const t = yield* setup({ allow: ["10.0.0.0/8"] })
      const outside = ClientAddress.attach(signed({ secret: SECRET_OTHER }), "8.8.8.8")
      assert.strictEqual((yield* t.send(outside)).status, 403)
      const inside = ClientAddress.attach(signed({ secret: SECRET_OTHER }), "10.0.0.1")
      assert.strictEqual((yield* t.send(inside)).status, 401)
    }))

  it.effect("429 with Retry-After past the burst of one source; refills with time; other sources unaffected", () =>
    Effect.gen(function*() {
      const t = yield* setup({ rateLimit: { perSecond: 1, burst: 2 } })
      const from = (address: string) => ClientAddress.attach(signed(), address)
      assert.strictEqual((yield* t.send(from("203.0.113.1"))).status, 200)
      assert.strictEqual((yield* t.send(from("203.0.113.1"))).status, 200)
      const limited = yield* t.send(from("203.0.113.1"))
      assert.strictEqual(limited.status, 429)
      assert.strictEqual(limited.headers.get("retry-after"), "1")
      assert.strictEqual(limited.body.error, "rate_limited")
      assert.strictEqual(yield* t.stored, 2)
      assert.strictEqual((yield* t.send(from("203.0.113.2"))).status, 200)
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* t.send(from("203.0.113.1"))).status, 200)
    }))
})

describe("WebhookHandler: 503 when storage or capacity is short", () => {
  it.effect("503 + Retry-After when the store is unavailable; the retry after recovery processes it once", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      t.fault.mode = "fail"
      const down = yield* t.send(signed({ svixId: "msg_retry" }))
      assert.strictEqual(down.status, 503)
      assert.strictEqual(down.headers.get("retry-after"), "5")
      assert.deepStrictEqual(down.body, { status: "unavailable", eventId: "msg_retry", error: "storage_unavailable" })
      assert.strictEqual(yield* t.stored, 0)
      t.fault.mode = "none"
      yield* TestClock.adjust("5 seconds")
      const retried = yield* t.send(signed({ svixId: "msg_retry", timestamp: NOW_SECONDS + 5 }))
      assert.strictEqual(retried.body.status, "processed")
      const again = yield* t.send(signed({ svixId: "msg_retry", timestamp: NOW_SECONDS + 5 }))
      assert.strictEqual(again.body.status, "duplicate")
      const counts = yield* t.memory.counts
      assert.strictEqual(counts.inbox.processed, 1)
      assert.strictEqual(counts.users, 1)
    }))

  it.effect("503 overloaded at once beyond maxInFlight ingests, and capacity comes back", () =>
    Effect.gen(function*() {
      const t = yield* setup({ maxInFlight: 1, retryAfterSeconds: 2 })
      let release!: () => void
      t.fault.mode = "hang"
      t.fault.gate = new Promise<void>((resolve) => (release = resolve))
      const first = yield* Effect.forkChild(t.send(signed({ svixId: "msg_slow" })))
      yield* Effect.yieldNow
      while (t.endpoint.state.inFlight === 0) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 1)))
      const second = yield* t.send(signed({ svixId: "msg_turned_away" }))
      assert.strictEqual(second.status, 503)
      assert.strictEqual(second.headers.get("retry-after"), "2")
      assert.strictEqual(second.body.error, "overloaded")
      // Shed before the body is read or the signature checked: refusing must cost next to nothing.
      const forged = yield* t.send(signed({ svixId: "msg_forged", secret: SECRET_OTHER }))
      assert.strictEqual(forged.status, 503)
      assert.strictEqual(forged.body.error, "overloaded")
      release()
      assert.strictEqual((yield* Fiber.join(first)).status, 200)
      assert.strictEqual(t.endpoint.state.inFlight, 0)
      assert.strictEqual((yield* t.send(signed({ svixId: "msg_turned_away" }))).body.status, "processed")
    }))

  it.effect("503 storage_timeout when an ingest outlasts ingestTimeout", () =>
    Effect.gen(function*() {
      const t = yield* setup({ ingestTimeout: "3 seconds" })
      t.fault.mode = "hang"
      const fiber = yield* Effect.forkChild(t.send(signed()))
      while (t.endpoint.state.inFlight === 0) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 1)))
      yield* TestClock.adjust("3 seconds")
      const answer = yield* Fiber.join(fiber)
      assert.strictEqual(answer.status, 503)
      assert.strictEqual(answer.body.error, "storage_timeout")
      assert.strictEqual(answer.headers.get("retry-after"), "5")
      assert.strictEqual(t.endpoint.state.inFlight, 0)
    }))

  it.effect("a defect (here a throwing clientAddress function) is a 500 without details", () =>
    Effect.gen(function*() {
      const t = yield* setup({
        clientAddress: () => {
          throw new Error("boom")
        }
      })
      const answer = yield* t.send(signed())
      assert.strictEqual(answer.status, 500)
      assert.deepStrictEqual(Object.keys(answer.body).sort(), ["error", "eventId", "status"])
      assert.strictEqual(answer.body.error, "internal_error")
      assert.strictEqual(yield* t.stored, 0)
      assert.strictEqual(t.lines[0]?.detail, "Error: boom")
    }))
})

describe("WebhookHandler: secret rotation", () => {
  it.effect("two configured secrets: a delivery signed with either is accepted", () =>
    Effect.gen(function*() {
      const t = yield* setup({ secret: [SECRET, SECRET_NEXT] })
      assert.strictEqual((yield* t.send(signed({ secret: SECRET }))).status, 200)
      assert.strictEqual((yield* t.send(signed({ secret: SECRET_NEXT }))).status, 200)
      assert.strictEqual((yield* t.send(signed({ secret: SECRET_OTHER }))).status, 401)
    }))

  it.effect("a header with several signatures (Svix during a rotation) matches on any of them", () =>
    Effect.gen(function*() {
      const t = yield* setup({ secret: SECRET_NEXT })
      const answer = yield* t.send(signed({ secret: [SECRET_OTHER, SECRET, SECRET_NEXT] }))
      assert.strictEqual(answer.status, 200)
      const garbageFirst = signed({ secret: SECRET_NEXT })
      garbageFirst.headers.set("svix-signature", `v1a,xyz v1,${"A".repeat(43)}= ${garbageFirst.headers.get("svix-signature")}`)
      assert.strictEqual((yield* t.send(garbageFirst)).status, 200)
    }))

  it.effect("secrets given as one comma- or space-separated string, or Redacted, all work", () =>
    Effect.gen(function*() {
      for (const secret of [`${SECRET},${SECRET_NEXT}`, `${SECRET}  ${SECRET_NEXT}`, [Redacted.make(`${SECRET} ${SECRET_NEXT}`)]]) {
        const t = yield* setup({ secret })
        assert.strictEqual((yield* t.send(signed({ secret: SECRET_NEXT }))).status, 200)
        assert.strictEqual((yield* t.send(signed({ secret: SECRET }))).status, 200)
      }
    }))
})

describe("WebhookHandler: logs", () => {
  it.effect("one line per request, with no secret, no payload, no address unless asked", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      yield* t.send(ClientAddress.attach(signed({ svixId: "msg_logged" }), "203.0.113.9"))
      yield* t.send(signed({ secret: SECRET_OTHER }))
      yield* t.send(signed({ method: "GET" }))
      assert.strictEqual(t.lines.length, 3)
      assert.deepStrictEqual(t.lines[0], {
        message: "clerk-sync webhook",
        method: "POST",
        status: 200,
        outcome: "processed",
        svixId: "msg_logged",
        eventType: "user.created",
        durationMs: 0
      })
      assert.strictEqual(t.lines[1]?.outcome, "invalid_signature")
      assert.strictEqual(t.lines[2]?.outcome, "method_not_allowed")
      const text = JSON.stringify(t.lines)
      for (const needle of [SECRET, SECRET.slice(6), SECRET_OTHER.slice(6), "John", "Doe", "img.clerk.com", "203.0.113.9"]) {
        assert.notInclude(text, needle)
      }
    }))

  it.effect("without a log option, the line goes to the Effect logger: level by status, fields as annotations", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      const seen: Array<{ level: string; message: unknown; annotations: Record<string, unknown> }> = []
      const collector = Logger.make((o) =>
        void seen.push({ level: o.logLevel, message: o.message, annotations: o.fiber.getRef(References.CurrentLogAnnotations) })
      )
      const endpoint = WebhookHandler.make({ secret: SECRET })
      for (const request of [signed({ svixId: "msg_effect_log" }), signed({ secret: SECRET_OTHER }), signed({ method: "GET" })]) {
        yield* WebhookHandler.handleWebhook(request, endpoint).pipe(
          Effect.provideService(SyncStore.SyncStore, t.store),
          Effect.provide(Logger.layer([collector]))
        )
      }
      t.fault.mode = "fail"
      yield* WebhookHandler.handleWebhook(signed(), endpoint).pipe(
        Effect.provideService(SyncStore.SyncStore, t.store),
        Effect.provide(Logger.layer([collector]))
      )
      assert.deepStrictEqual(seen.map((s) => s.level), ["Info", "Warn", "Warn", "Error"])
      assert.deepStrictEqual(seen[0]?.annotations, {
        method: "POST",
        status: 200,
        outcome: "processed",
        svixId: "msg_effect_log",
        eventType: "user.created",
        durationMs: 0
      })
      assert.deepStrictEqual(seen[0]?.message, ["clerk-sync webhook"])
      assert.strictEqual(seen[3]?.annotations["outcome"], "storage_unavailable")
    }))

  it.effect("logClientAddress adds the address", () =>
    Effect.gen(function*() {
      const t = yield* setup({ logClientAddress: true })
      yield* t.send(ClientAddress.attach(signed(), "203.0.113.9"))
      assert.strictEqual(t.lines[0]?.clientAddress, "203.0.113.9")
    }))

  it.effect("a failed decode is logged with its paths, never the values", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      yield* t.send(signed({ body: undecodable }))
      assert.strictEqual(t.lines[0]?.outcome, "failed")
      assert.isString(t.lines[0]?.detail)
    }))
})

describe("WebhookHandler: configuration fails fast", () => {
  it("no secret, a malformed secret, a bad range or a non-positive limit throw tagged errors", () => {
    const tagOf = (f: () => unknown): string => {
      try {
        f()
        return "none"
      } catch (error) {
        return (error as { _tag?: string })._tag ?? "untagged"
      }
    }
    assert.strictEqual(tagOf(() => WebhookHandler.make({ secret: "" })), "InvalidSecret")
    assert.strictEqual(tagOf(() => WebhookHandler.make({ secret: [] })), "InvalidSecret")
    assert.strictEqual(tagOf(() => WebhookHandler.make({ secret: "whsec_not base64!" })), "InvalidSecret")
    assert.strictEqual(tagOf(() => WebhookHandler.make({ secret: SECRET, allow: ["10.0.0.0/33"] })), "InvalidRange")
    assert.strictEqual(tagOf(() => WebhookHandler.make({ secret: SECRET, maxBodyBytes: 0 })), "InvalidOption")
    assert.strictEqual(tagOf(() => WebhookHandler.make({ secret: SECRET, rateLimit: { perSecond: 0, burst: 1 } })), "InvalidOption")
    assert.strictEqual(tagOf(() => WebhookHandler.make({ secret: SECRET })), "none")
  })

  it("an invalid secret's message never contains the secret", () => {
    const secret = "whsec_THIS-IS-SECRET!"
    try {
      Signature.makeVerifier(["whsec_" + Buffer.from("fine secret").toString("base64"), secret])
      assert.fail("expected a throw")
    } catch (error) {
      assert.notInclude(String((error as Error).message), "THIS-IS-SECRET")
      assert.include(String((error as Error).message), "#2")
    }
  })

  it.effect("the same options object shares one endpoint (rate limit state) across calls", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const faulty = yield* makeFaultyStore
      const options: WebhookHandler.Options = { secret: SECRET, log: false, rateLimit: { perSecond: 1, burst: 1 } }
      const run = (request: Request) =>
        WebhookHandler.handleWebhook(request, options).pipe(Effect.provideService(SyncStore.SyncStore, faulty.store))
      assert.strictEqual((yield* run(ClientAddress.attach(signed({ svixId: nextId() }), "192.0.2.1"))).status, 200)
      assert.strictEqual((yield* run(ClientAddress.attach(signed({ svixId: nextId() }), "192.0.2.1"))).status, 429)
    }))
})
