import { ClerkSync, SyncStore } from "@clerk-sync/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import fc from "fast-check"
import { afterEach, vi } from "vitest"
import { createWebhookHandler, signWebhook, type WebhookHandler } from "../src/index.ts"
import { captureLog, inboxSize, makeFaultyStore, SECRET, SECRET_NEXT, SECRET_OTHER, URL_, userCreated } from "./utils/index.ts"

const nowSeconds = () => Math.floor(Date.now() / 1000)

const post = (body: string, svixId: string, secret: string = SECRET): Request =>
  new Request(URL_, {
    method: "POST",
    headers: { "content-type": "application/json", ...signWebhook({ secret, svixId, body }) },
    body
  })

const storeLayer = async () => {
  const faulty = await Effect.runPromise(makeFaultyStore)
  return { ...faulty, layer: Layer.succeed(SyncStore.SyncStore, faulty.store), size: () => Effect.runPromise(inboxSize(faulty.memory)) }
}

afterEach(() => {
  vi.restoreAllMocks()
  vi.unstubAllEnvs()
})

describe("createWebhookHandler", () => {
  it("{ store }: builds the layer, processes, and dispose releases it", async () => {
    const s = await storeLayer()
    const handler = createWebhookHandler({ store: s.layer, secret: SECRET, log: false })
    const response = await handler(post(userCreated, "msg_store"))
    assert.strictEqual(response.status, 200)
    assert.deepStrictEqual(await response.json(), { status: "processed", eventId: "msg_store" })
    assert.strictEqual((await Effect.runPromise(s.memory.counts)).users, 1)
    await handler.dispose()
  })

  it("{ clerkSync }: uses the instance's ingest (and so its planner settings)", async () => {
    const s = await storeLayer()
    const clerkSync = ClerkSync.make(s.layer)
    const handler = createWebhookHandler({ clerkSync, secret: [SECRET, SECRET_NEXT], log: false })
    assert.strictEqual((await handler(post(userCreated, "msg_cs", SECRET_NEXT))).status, 200)
    assert.strictEqual((await clerkSync.getCurrentUser({ userId: "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S" })).firstName, "John")
    await clerkSync.dispose()
  })

  it("503 + Retry-After when the store rejects, through both sources", async () => {
    const s = await storeLayer()
    s.fault.mode = "fail"
    const clerkSync = ClerkSync.make(s.layer)
    for (const handler of [createWebhookHandler({ clerkSync, secret: SECRET, log: false }), createWebhookHandler({ store: s.layer, secret: SECRET, log: false })]) {
      const response = await handler(post(userCreated, "msg_down"))
      assert.strictEqual(response.status, 503)
      assert.strictEqual(response.headers.get("retry-after"), "5")
      assert.deepStrictEqual(await response.json(), { status: "unavailable", eventId: "msg_down", error: "storage_unavailable" })
    }
    assert.strictEqual(await s.size(), 0)
    s.fault.mode = "none"
    const handler = createWebhookHandler({ clerkSync, secret: SECRET, log: false })
    assert.strictEqual((await (await handler(post(userCreated, "msg_down"))).json()).status, "processed")
    assert.strictEqual((await (await handler(post(userCreated, "msg_down"))).json()).status, "duplicate")
    await clerkSync.dispose()
  })

  it("a store layer that cannot be built answers 503, not a crash", async () => {
    const broken = Layer.effect(SyncStore.SyncStore, Effect.fail(new Error("ECONNREFUSED")))
    const handler = createWebhookHandler({ store: broken, secret: SECRET, log: false })
    const response = await handler(post(userCreated, "msg_nodb"))
    assert.strictEqual(response.status, 503)
    await handler.dispose()
  })

  it("throws at creation without a valid secret (there is no bypass)", async () => {
    const s = await storeLayer()
    assert.throws(() => createWebhookHandler({ store: s.layer, secret: "" }), /no secret configured/)
    assert.throws(() => createWebhookHandler({ store: s.layer, secret: process.env["SURELY_UNSET_VARIABLE"] ?? "" }))
  })

  it("without a secret option, reads CLERK_WEBHOOK_SIGNING_SECRET and CLERK_WEBHOOK_SECRET", async () => {
    const s = await storeLayer()
    vi.stubEnv("CLERK_WEBHOOK_SIGNING_SECRET", SECRET)
    vi.stubEnv("CLERK_WEBHOOK_SECRET", `${SECRET_NEXT}`)
    const handler = createWebhookHandler({ store: s.layer, log: false })
    assert.strictEqual((await handler(post(userCreated, "msg_env_1", SECRET))).status, 200)
    assert.strictEqual((await handler(post(userCreated, "msg_env_2", SECRET_NEXT))).status, 200)
    assert.strictEqual((await handler(post(userCreated, "msg_env_3", SECRET_OTHER))).status, 401)
    vi.stubEnv("CLERK_WEBHOOK_SIGNING_SECRET", undefined)
    vi.stubEnv("CLERK_WEBHOOK_SECRET", undefined)
    assert.throws(() => createWebhookHandler({ store: s.layer }), /no secret configured/)
    assert.throws(() => createWebhookHandler({ store: s.layer, secret: process.env["CLERK_WEBHOOK_SIGNING_SECRET"] }), /no secret configured/)
    await handler.dispose()
  })

  it("logs one JSON line on the console by default, without secret or payload", async () => {
    const s = await storeLayer()
    const info = vi.spyOn(console, "info").mockImplementation(() => undefined)
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined)
    const handler = createWebhookHandler({ store: s.layer, secret: SECRET })
    await handler(post(userCreated, "msg_console"))
    await handler(post(userCreated, "msg_console_bad", SECRET_OTHER))
    assert.strictEqual(info.mock.calls.length, 1)
    assert.strictEqual(warn.mock.calls.length, 1)
    const lines = [...info.mock.calls, ...warn.mock.calls].map((call) => JSON.parse(String(call[0])) as WebhookHandler.LogLine)
    assert.deepStrictEqual(lines.map((l) => [l.status, l.outcome, l.svixId]), [[200, "processed", "msg_console"], [401, "invalid_signature", "msg_console_bad"]])
    const text = JSON.stringify(lines)
    assert.notInclude(text, SECRET.slice(6))
    assert.notInclude(text, "John")
    await handler.dispose()
  })
})

describe("createWebhookHandler: fuzz", () => {
  type SignatureMode = "valid" | "rotated" | "several" | "other-secret" | "other-body" | "garbage" | "empty"
  const encoder = new TextEncoder()
  const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
  const lossy = new TextDecoder("utf-8", { ignoreBOM: true })
  const decodable = (bytes: Uint8Array) => {
    try {
      strict.decode(bytes)
      return true
    } catch {
      return false
    }
  }

  /** `usual` most of the time, something from `unusual` one time in eight. */
  const rarely = <A, B>(unusual: fc.Arbitrary<A>, usual: B): fc.Arbitrary<A | B> =>
    fc.oneof({ arbitrary: fc.constant(usual), weight: 7 }, { arbitrary: unusual, weight: 1 })

  const arbitrary = fc.record({
    method: rarely(fc.constantFrom("GET", "PUT", "DELETE"), "POST"),
    body: fc.oneof(
      fc.constant(userCreated),
      fc.string({ unit: "binary", maxLength: 2000 }),
      fc.uint8Array({ maxLength: 3000 }),
      fc.integer({ min: 60_000, max: 70_000 }).map((n) => JSON.stringify({ type: "user.created", pad: "x".repeat(n) }))
    ),
    encoding: fc.constantFrom("string", "bytes", "chunks"),
    svixId: fc.oneof(fc.constant("msg_replayed"), fc.stringMatching(/^msg_[A-Za-z0-9]{1,12}$/), fc.stringMatching(/^[ -~]{0,300}$/)),
    offset: fc.oneof(fc.integer({ min: -250, max: 250 }), fc.integer({ min: -10_000_000, max: 10_000_000 })),
    timestampGarbage: rarely(fc.stringMatching(/^[ -~]{0,16}$/), null),
    signature: fc.constantFrom<SignatureMode>("valid", "rotated", "several", "other-secret", "other-body", "garbage", "empty"),
    drop: rarely(fc.constantFrom("svix-id", "svix-timestamp", "svix-signature"), null),
    declaredLength: rarely(fc.oneof(fc.nat(2000), fc.nat(200_000)), null),
    fault: fc.integer({ min: 0, max: 7 }).map((n) => n === 0)
  })

  it("never a 5xx without a storage fault, never a row for an unverified request", async () => {
    const s = await storeLayer()
    const capture = captureLog()
    const handler = createWebhookHandler({ store: s.layer, secret: [SECRET, SECRET_NEXT], log: capture.log })
    await fc.assert(
      fc.asyncProperty(arbitrary, async (c) => {
        const bytes = typeof c.body === "string" ? encoder.encode(c.body) : c.body
        const text = typeof c.body === "string" ? c.body : lossy.decode(c.body)
        const timestamp = nowSeconds() + c.offset
        const secret = c.signature === "rotated" ? SECRET_NEXT : c.signature === "other-secret" ? SECRET_OTHER : SECRET
        const svix: Record<string, string> = { ...signWebhook({ secret, svixId: c.svixId, timestamp, body: c.signature === "other-body" ? text + " " : text }) }
        if (c.signature === "several") svix["svix-signature"] = `v1,${"A".repeat(43)}= ${signWebhook({ secret: [SECRET_OTHER, SECRET_NEXT], svixId: c.svixId, timestamp, body: text })["svix-signature"]}`
        if (c.signature === "garbage") svix["svix-signature"] = "v1,bm90IGEgc2lnbmF0dXJl"
        if (c.signature === "empty") svix["svix-signature"] = "v1,"
        if (c.timestampGarbage !== null) svix["svix-timestamp"] = c.timestampGarbage
        if (c.drop !== null) delete svix[c.drop]
        const headers = new Headers(svix)
        if (c.declaredLength !== null) headers.set("content-length", String(c.declaredLength))
        const body = c.encoding === "string" && typeof c.body === "string"
          ? c.body
          : c.encoding === "chunks"
          ? new ReadableStream<Uint8Array>({
            start(controller) {
              for (let i = 0; i < bytes.length; i += 997) controller.enqueue(bytes.slice(i, i + 997))
              controller.close()
            }
          })
          : new Uint8Array(bytes)
        const request = new Request(URL_, {
          method: c.method,
          headers,
          ...(c.method === "GET" ? {} : { body, duplex: "half" })
        } as RequestInit)

        const before = await s.size()
        s.fault.mode = c.fault ? "fail" : "none"
        const response = await handler(request)
        s.fault.mode = "none"
        const after = await s.size()

        const authentic = c.method === "POST" &&
          ["valid", "rotated", "several"].includes(c.signature) &&
          c.drop === null &&
          c.timestampGarbage === null &&
          Math.abs(c.offset) <= 250 &&
          decodable(bytes) &&
          bytes.length <= 64 * 1024
        if (!c.fault) assert.isBelow(response.status, 500)
        if (response.status >= 500) assert.isTrue(c.fault && response.status === 503 && authentic)
        if (response.status === 200) assert.isTrue(authentic, "200 for an unverified request")
        if (response.status !== 200) assert.strictEqual(after, before, `stored on ${response.status}`)
        if (!authentic) assert.notStrictEqual(response.status, 200)
        const answer = await response.json() as WebhookHandler.ResponseBody
        assert.includeMembers(["processed", "duplicate", "ignored", "failed", "rejected", "unavailable"], [answer.status])
      }),
      { numRuns: 300 }
    )
    const logged = JSON.stringify(capture.lines)
    for (const secret of [SECRET, SECRET_NEXT, SECRET_OTHER]) assert.notInclude(logged, secret.slice(6))
    assert.notInclude(logged, "John")
    await handler.dispose()
  })
})
