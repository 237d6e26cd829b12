import { Notification, Publisher } from "@clerk-sync/core"
import { NotificationFactory } from "@clerk-sync/core/testing"
import { assert, describe, it } from "@effect/vitest"
import { createClient } from "@supabase/supabase-js"
import { ConfigProvider, Effect, Exit } from "effect"
import * as SupabaseBroadcast from "../src/SupabaseBroadcast.ts"
import { type FakeRealtime, startFakeRealtime } from "./utils/FakeRealtime.ts"

const KEY = "service-role-key-for-tests"

const withFake = (f: (fake: FakeRealtime) => Promise<void>) => async () => {
  const fake = await startFakeRealtime(KEY)
  try {
    await f(fake)
  } finally {
    await fake.close()
  }
}

const failure = async (effect: Effect.Effect<void, Publisher.PublishError>) => {
  const exit = await Effect.runPromiseExit(effect)
  assert.isTrue(Exit.isFailure(exit), "the publish fails")
  if (!Exit.isFailure(exit)) throw new Error("unreachable")
  const reason = exit.cause.reasons[0]
  if (reason?._tag !== "Fail") throw new Error(`expected a typed failure, got ${reason?._tag}`)
  assert.strictEqual(reason.error._tag, "PublishError")
  return reason.error.cause as { status: number | null; detail: string; retryable: boolean }
}

describe("SupabaseBroadcast", () => {
  it("sends exactly the documented request: path, headers, body, private flag, one message per audience", withFake(async (fake) => {
    const publisher = SupabaseBroadcast.make({ url: fake.url, serviceKey: KEY })
    const f = new NotificationFactory()
    const batch = [f.membershipUpdated("user_a", "org_x", "org:admin"), f.userUpdated("user_a", "Ada")]
    await Effect.runPromise(publisher.publish(batch))
    assert.strictEqual(fake.requests.length, 1)
    const [req] = fake.requests
    assert.strictEqual(req!.method, "POST")
    assert.strictEqual(req!.path, "/realtime/v1/api/broadcast")
    assert.strictEqual(req!.search, "")
    assert.strictEqual(req!.headers["apikey"], KEY)
    assert.strictEqual(req!.headers["authorization"], `Bearer ${KEY}`)
    assert.strictEqual(req!.headers["content-type"], "application/json")
    assert.deepStrictEqual(req!.body, {
      messages: [
        { topic: "org:org_x", event: "membership.updated", payload: Notification.toDelivered(batch[0]!), private: true },
        { topic: "user:user_a", event: "membership.updated", payload: Notification.toDelivered(batch[0]!), private: true },
        { topic: "user:user_a", event: "user.updated", payload: Notification.toDelivered(batch[1]!), private: true }
      ]
    })
    assert.strictEqual(JSON.stringify(req!.body).includes('"admin"'), false, "the admin audience is not broadcast by default")
  }))

  it("broadcasts the admin audience and prefixes topics when asked", withFake(async (fake) => {
    const publisher = SupabaseBroadcast.make({ url: fake.url, serviceKey: KEY, includeAdmin: true, topicPrefix: "cs:" })
    await Effect.runPromise(publisher.publish([new NotificationFactory().organizationUpdated("org_x")]))
    const body = fake.requests[0]!.body as { messages: Array<{ topic: string }> }
    assert.deepStrictEqual(body.messages.map((m) => m.topic), ["cs:org:org_x", "cs:admin"])
  }))

  it("uses the same endpoint and headers as supabase-js's own REST broadcast", withFake(async (fake) => {
    const supabase = createClient(fake.url, KEY, { auth: { persistSession: false, autoRefreshToken: false } })
    await supabase.realtime.setAuth(KEY)
    const channel = supabase.channel("org:org_x", { config: { private: true } })
    const original = console.warn
    console.warn = () => {} // supabase-js warns that send() falls back to REST: that fallback is what we compare with
    try {
      assert.strictEqual(await channel.send({ type: "broadcast", event: "organization.updated", payload: { seq: 1 } }), "ok")
    } finally {
      console.warn = original
    }
    await supabase.removeAllChannels()
    const theirs = fake.requests[0]!
    await Effect.runPromise(SupabaseBroadcast.make({ url: fake.url, serviceKey: KEY }).publish([new NotificationFactory().organizationUpdated("org_x")]))
    const ours = fake.requests[1]!
    assert.strictEqual(ours.path, theirs.path)
    assert.strictEqual(ours.headers["apikey"], theirs.headers["apikey"])
    assert.strictEqual(ours.headers["authorization"], theirs.headers["authorization"])
    assert.strictEqual(ours.headers["content-type"], theirs.headers["content-type"])
    const shape = (r: typeof ours) => (r.body as { messages: Array<Record<string, unknown>> }).messages.map((m) => [m["topic"], Object.keys(m).sort(), m["private"]])
    assert.deepStrictEqual(shape(ours).map(([t, k, p]) => [t, k, p]), shape(theirs).map(([t, k, p]) => [t, k, p]))
  }))

  it("splits a large batch into requests of at most maxMessagesPerRequest, in order", withFake(async (fake) => {
    const f = new NotificationFactory()
    const batch = Array.from({ length: 125 }, () => f.organizationUpdated("org_x")) // org + admin: 2 messages each
    await Effect.runPromise(SupabaseBroadcast.make({ url: fake.url, serviceKey: KEY, includeAdmin: true, maxMessagesPerRequest: 100 }).publish(batch))
    const sizes = fake.requests.map((r) => (r.body as { messages: Array<unknown> }).messages.length)
    assert.deepStrictEqual(sizes, [100, 100, 50])
    const seqs = fake.requests.flatMap((r) => (r.body as { messages: Array<{ payload: { seq: number } }> }).messages.map((m) => m.payload.seq))
    assert.deepStrictEqual(seqs, batch.flatMap((n) => [n.seq, n.seq]))
  }))

  it("retries 5xx answers with backoff, sending the same request again", withFake(async (fake) => {
    fake.failNext({ status: 503 }, { status: 500, body: "oops" })
    const publisher = SupabaseBroadcast.make({ url: fake.url, serviceKey: KEY, retryDelay: "20 millis" })
    await Effect.runPromise(publisher.publish([new NotificationFactory().userUpdated("user_a")]))
    assert.strictEqual(fake.requests.length, 3)
    assert.strictEqual(fake.requests[1]!.rawBody, fake.requests[0]!.rawBody)
    assert.strictEqual(fake.requests[2]!.rawBody, fake.requests[0]!.rawBody)
    assert.isAtLeast(fake.requests[2]!.at - fake.requests[0]!.at, 50, "20 ms, then 40 ms")
  }))

  it("retries a 429 after its Retry-After", withFake(async (fake) => {
    fake.failNext({ status: 429, headers: { "retry-after": "1" }, body: '{"message":"Too many messages to broadcast, please reduce the batch size"}' })
    const publisher = SupabaseBroadcast.make({ url: fake.url, serviceKey: KEY, retryDelay: "10 millis" })
    await Effect.runPromise(publisher.publish([new NotificationFactory().userUpdated("user_a")]))
    assert.strictEqual(fake.requests.length, 2)
    assert.isAtLeast(fake.requests[1]!.at - fake.requests[0]!.at, 950)
  }))

  it("retries a request that does not answer in time", withFake(async (fake) => {
    fake.failNext({ status: 0, hang: true })
    const publisher = SupabaseBroadcast.make({ url: fake.url, serviceKey: KEY, retryDelay: "10 millis", timeout: "200 millis" })
    await Effect.runPromise(publisher.publish([new NotificationFactory().userUpdated("user_a")]))
    assert.strictEqual(fake.requests.length, 2)
  }))

  it("fails at once, with the status, on an answer a retry cannot fix", withFake(async (fake) => {
    for (const status of [400, 401, 403, 404, 422]) {
      fake.requests.length = 0
      fake.failNext({ status, body: `refused ${status}` })
      const cause = await failure(SupabaseBroadcast.make({ url: fake.url, serviceKey: KEY, retryDelay: "10 millis" }).publish([new NotificationFactory().userUpdated("user_a")]))
      assert.deepStrictEqual(cause, { status, detail: `refused ${status}`, retryable: false })
      assert.strictEqual(fake.requests.length, 1, `${status}: no retry`)
    }
    const wrongKey = SupabaseBroadcast.make({ url: fake.url, serviceKey: "not-the-key" })
    assert.strictEqual((await failure(wrongKey.publish([new NotificationFactory().userUpdated("user_a")]))).status, 401)
  }))

  it("gives up after its retries with a PublishError the relay retries later", withFake(async (fake) => {
    fake.failNext({ status: 502 }, { status: 502 }, { status: 502 })
    const publisher = SupabaseBroadcast.make({ url: fake.url, serviceKey: KEY, retries: 2, retryDelay: "5 millis" })
    const cause = await failure(publisher.publish([new NotificationFactory().userUpdated("user_a")]))
    assert.deepStrictEqual([cause.status, cause.retryable], [502, true])
    assert.strictEqual(fake.requests.length, 3)
  }))

  it("fails over an unreachable server, retryable", async () => {
    const publisher = SupabaseBroadcast.make({ url: "http://127.0.0.1:9", serviceKey: KEY, retries: 1, retryDelay: "5 millis" })
    const cause = await failure(publisher.publish([new NotificationFactory().userUpdated("user_a")]))
    assert.deepStrictEqual([cause.status, cause.retryable], [null, true])
  })

  it("reads SUPABASE_URL and SUPABASE_SERVICE_KEY from the environment", withFake(async (fake) => {
    const env = ConfigProvider.fromEnv({ env: { SUPABASE_URL: fake.url, SUPABASE_SERVICE_KEY: KEY } })
    await Effect.runPromise(
      Publisher.Publisher.use((p) => p.publish([new NotificationFactory().userUpdated("user_a")])).pipe(
        Effect.provide(SupabaseBroadcast.layerConfig()),
        Effect.provideService(ConfigProvider.ConfigProvider, env)
      )
    )
    assert.strictEqual(fake.requests[0]!.headers["apikey"], KEY)
  }))
})
