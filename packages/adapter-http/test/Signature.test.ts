import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { Webhook } from "svix"
import { signWebhook, Signature } from "../src/index.ts"
import { SECRET, SECRET_NEXT, SECRET_OTHER } from "./utils/index.ts"

const vector = {
  id: "msg_loFOjxBNrRLzqYUf",
  timestamp: "1731705121",
  body: "{\"event_type\":\"ping\",\"data\":{\"success\":true}}",
  signature: "v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0="
}

describe("Signature", () => {
  it("signWebhook reproduces the Svix documentation's test vector", () => {
    const headers = signWebhook({ secret: SECRET, svixId: vector.id, timestamp: 1731705121, body: vector.body })
    assert.deepStrictEqual(headers, { "svix-id": vector.id, "svix-timestamp": vector.timestamp, "svix-signature": vector.signature })
    const fromDate = signWebhook({ secret: SECRET, svixId: vector.id, timestamp: new Date(1731705121_999), body: new TextEncoder().encode(vector.body) })
    assert.deepStrictEqual(fromDate, headers)
  })

  it("verify accepts the test vector at its time, within 5 minutes either way, and not beyond", () => {
    const verifier = Signature.makeVerifier(SECRET)
    const at = (seconds: number) => Signature.verify(verifier, { id: vector.id, timestamp: vector.timestamp, signature: vector.signature }, vector.body, seconds * 1000)
    assert.strictEqual(at(1731705121), "verified")
    assert.strictEqual(at(1731705121 + 300), "verified")
    assert.strictEqual(at(1731705121 - 300), "verified")
    assert.strictEqual(at(1731705121 + 301), "timestamp_out_of_tolerance")
    assert.strictEqual(at(1731705121 - 301), "timestamp_out_of_tolerance")
  })

  it("several signatures (one per secret) in one header, several secrets configured", () => {
    const headers = signWebhook({ secret: [SECRET_OTHER, SECRET_NEXT], svixId: "msg_1", timestamp: 1_000_000, body: "{}" })
    assert.strictEqual(headers["svix-signature"].split(" ").length, 2)
    const check = (secret: Signature.SecretInput) =>
      Signature.verify(Signature.makeVerifier(secret), { id: "msg_1", timestamp: headers["svix-timestamp"], signature: headers["svix-signature"] }, "{}", 1_000_000_000)
    assert.strictEqual(check(SECRET_NEXT), "verified")
    assert.strictEqual(check([SECRET, SECRET_OTHER]), "verified")
    assert.strictEqual(check(SECRET), "invalid_signature")
  })

  it("splitSecrets splits on commas and whitespace and ignores empties", () => {
    assert.deepStrictEqual(Signature.splitSecrets(` ${SECRET},${SECRET_NEXT}\n`), [SECRET, SECRET_NEXT])
    assert.deepStrictEqual(Signature.splitSecrets([SECRET, "", " "]), [SECRET])
  })

  it("agrees with svix's own Webhook.verify on random deliveries", () => {
    const secrets = [SECRET, SECRET_NEXT, SECRET_OTHER]
    const wh = new Webhook(SECRET)
    fc.assert(
      fc.property(
        fc.record({
          id: fc.stringMatching(/^[\x21-\x7e]{1,40}$/),
          body: fc.string({ unit: "binary", maxLength: 300 }),
          offset: fc.oneof(fc.integer({ min: -290, max: 290 }), fc.integer({ min: 310, max: 100_000 }), fc.integer({ min: -100_000, max: -310 })),
          signer: fc.constantFrom(...secrets),
          tamper: fc.constantFrom("none", "body", "id", "signature", "prefix", "extra"),
          extra: fc.string({ maxLength: 30 })
        }),
        ({ id, body, offset, signer, tamper, extra }) => {
          const now = Date.now()
          const timestamp = Math.floor(now / 1000) + offset
          const headers = signWebhook({ secret: signer, svixId: id, timestamp, body })
          let signature = headers["svix-signature"]
          let sentBody = body
          let sentId = id
          if (tamper === "body") sentBody = body + "x"
          if (tamper === "id") sentId = id + "x"
          if (tamper === "signature") signature = signature.slice(0, -2) + (signature.endsWith("A=") ? "B=" : "A=")
          if (tamper === "prefix") signature = signature.replace("v1,", "v1a,")
          if (tamper === "extra") signature = `${extra} ${signature}`
          const ours = Signature.verify(Signature.makeVerifier(SECRET), { id: sentId, timestamp: String(timestamp), signature }, sentBody, now)
          let theirs: string
          try {
            wh.verify(sentBody, { "svix-id": sentId, "svix-timestamp": String(timestamp), "svix-signature": signature })
            theirs = "verified"
          } catch (error) {
            theirs = /timestamp/i.test((error as Error).message) ? "timestamp_out_of_tolerance" : "invalid_signature"
          }
          assert.strictEqual(ours, theirs)
        }
      ),
      { numRuns: 300 }
    )
  })
})
