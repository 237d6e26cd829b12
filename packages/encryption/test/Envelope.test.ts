import type { Cipher } from "@clerk-sync/core"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Option, Result } from "effect"
import { createDecipheriv } from "node:crypto"
import * as Encryption from "../src/Encryption.ts"
import * as Envelope from "../src/Envelope.ts"
import * as KeyRing from "../src/KeyRing.ts"
import { referenceDerive, ring, TestKeys } from "./utils/TestKeys.ts"

const CTX = "org_1:seller_accounts.credentials"
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

const reasonOf = <A>(effect: Effect.Effect<A, Cipher.CipherError>) =>
  Effect.map(Effect.result(effect), (result) => Result.isFailure(result) ? result.failure.reason : "decrypted")

/** Variants of `text` with the character at `i` replaced, deleted or duplicated. */
const tamperings = (text: string, i: number): ReadonlyArray<string> => {
  const char = text[i]!
  const next = ALPHABET[(ALPHABET.indexOf(char) + 1) % ALPHABET.length]!
  const far = ALPHABET[(ALPHABET.indexOf(char) + 32) % ALPHABET.length]!
  return [
    text.slice(0, i) + next + text.slice(i + 1),
    text.slice(0, i) + far + text.slice(i + 1),
    text.slice(0, i) + "." + text.slice(i + 1),
    text.slice(0, i) + "=" + text.slice(i + 1),
    text.slice(0, i) + text.slice(i + 1),
    text.slice(0, i) + char + char + text.slice(i + 1)
  ].filter((variant) => variant !== text)
}

layer(TestKeys.layer)("Envelope", (it) => {
  describe("tampering", () => {
    for (const [name, plaintext] of [["short", "hello, tamper me"], ["empty", ""], ["unicode", "ключ 🔑 value"]] as const) {
      it.effect(`every changed character of every part fails (${name} plaintext)`, () =>
        Effect.gen(function*() {
          const keys = yield* TestKeys
          const encryption = Encryption.fromKeyRing(yield* ring(keys.a, keys.b))
          const ciphertext = yield* encryption.encrypt(plaintext, CTX)
          const [version, keyId, iv] = ciphertext.split(".") as [string, string, string, string]
          const keyIdStart = version.length + 1
          const keyIdEnd = keyIdStart + keyId.length
          let checked = 0
          for (let i = 0; i < ciphertext.length; i++) {
            for (const tampered of tamperings(ciphertext, i)) {
              const reason = yield* reasonOf(encryption.decrypt(tampered, CTX))
              // A changed key id may name a key the ring does not hold; everything else is
              // either unparsable or fails authentication.
              const allowed = i >= keyIdStart && i < keyIdEnd
                ? ["Undecryptable", "Malformed", "UnknownKey"]
                : ["Undecryptable", "Malformed"]
              assert.include(allowed, reason, `position ${i} (${tampered})`)
              checked++
            }
          }
          assert.isAbove(checked, 4 * ciphertext.length)
          assert.strictEqual(iv.length, 16)
        }))
    }

    it.effect("flipping any bit of the IV or the ciphertext+tag fails authentication", () =>
      Effect.gen(function*() {
        const keys = yield* TestKeys
        const encryption = Encryption.fromKeyRing(yield* ring(keys.a))
        const ciphertext = yield* encryption.encrypt("bit flips", CTX)
        const envelope = Option.getOrThrow(Envelope.parse(ciphertext))
        for (const part of ["iv", "body"] as const) {
          for (let bit = 0; bit < envelope[part].length * 8; bit++) {
            const bytes = Buffer.from(envelope[part])
            bytes[bit >> 3]! ^= 1 << (bit & 7)
            const forged = part === "iv"
              ? Envelope.format(envelope.keyId, bytes, envelope.body)
              : Envelope.format(envelope.keyId, envelope.iv, bytes)
            assert.strictEqual(yield* reasonOf(encryption.decrypt(forged, CTX)), "Undecryptable", `${part} bit ${bit}`)
          }
        }
      }))

    it.effect("truncation, extension and splicing fail", () =>
      Effect.gen(function*() {
        const keys = yield* TestKeys
        const encryption = Encryption.fromKeyRing(yield* ring(keys.a))
        const x = yield* encryption.encrypt("first value", CTX)
        const y = yield* encryption.encrypt("second value", CTX)
        for (let n = 0; n < x.length; n++) {
          assert.include(["Malformed", "Undecryptable"], yield* reasonOf(encryption.decrypt(x.slice(0, n), CTX)))
        }
        const [, , ivX, bodyX] = x.split(".")
        const [v, id, ivY, bodyY] = y.split(".")
        for (const forged of [`${v}.${id}.${ivX}.${bodyY}`, `${v}.${id}.${ivY}.${bodyX}`, `${x}.`, `${x}A`, `${x}.${bodyY}`]) {
          assert.include(["Malformed", "Undecryptable"], yield* reasonOf(encryption.decrypt(forged, CTX)))
        }
      }))

    it.effect("a non-canonical base64url body (same bytes, other string) is Malformed", () =>
      Effect.gen(function*() {
        const keys = yield* TestKeys
        const encryption = Encryption.fromKeyRing(yield* ring(keys.a))
        // 17 bytes -> 23 characters: the last character carries 4 unused bits.
        const ciphertext = yield* encryption.encrypt("x", CTX)
        const body = ciphertext.split(".")[3]!
        assert.strictEqual(body.length, 23)
        const last = ALPHABET.indexOf(body.at(-1)!)
        const sibling = ciphertext.slice(0, -1) + ALPHABET[last ^ 1]!
        assert.deepStrictEqual(Buffer.from(sibling.split(".")[3]!, "base64url"), Buffer.from(body, "base64url"))
        assert.strictEqual(yield* reasonOf(encryption.decrypt(sibling, CTX)), "Malformed")
      }))

    it.effect("a future version is Malformed, not guessed at", () =>
      Effect.gen(function*() {
        const keys = yield* TestKeys
        const encryption = Encryption.fromKeyRing(yield* ring(keys.a))
        const ciphertext = yield* encryption.encrypt("x", CTX)
        for (const version of ["v2", "V1", "v0", "", "v1 "]) {
          const forged = version + ciphertext.slice(2)
          assert.strictEqual(yield* reasonOf(encryption.decrypt(forged, CTX)), "Malformed", version)
        }
      }))
  })

  describe("parsing", () => {
    it("parse and format are inverse", () => {
      const iv = Buffer.alloc(12, 7)
      const body = Buffer.from("0123456789abcdef-tag")
      const text = Envelope.format("AbCd-_12", iv, body)
      assert.strictEqual(text, `v1.AbCd-_12.${iv.toString("base64url")}.${body.toString("base64url")}`)
      const parsed = Option.getOrThrow(Envelope.parse(text))
      assert.deepStrictEqual([parsed.version, parsed.keyId, parsed.iv, parsed.body], ["v1", "AbCd-_12", iv, body])
    })

    it("parse rejects malformed strings", () => {
      const good = Envelope.format("AbCd-_12", Buffer.alloc(12), Buffer.alloc(16))
      const [v, id, iv, body] = good.split(".") as [string, string, string, string]
      const bad = [
        "", ".", "...", "....", good + ".", `${v}.${id}.${iv}`, `${v}.${id}.${iv}.`,
        `${v}.${id}x.${iv}.${body}`, `${v}.${id.slice(1)}.${iv}.${body}`, `${v}.${id}.${iv}A.${body}`,
        `${v}.${id}.${iv.slice(1)}.${body}`, `${v}.${id}.${iv}.${body.slice(2)}`, `${v}.${id}.${iv}.${body}==`,
        `${v}.${id}.${iv}.${body.replace("A", "+")}`, `${v}.${id.replace("A", "/")}.${iv}.${body}`
      ]
      for (const text of bad) assert.isTrue(Option.isNone(Envelope.parse(text)), text)
    })

    it("keyIdOf reads the header only", () => {
      assert.deepStrictEqual(Envelope.keyIdOf("v1.AbCd-_12.anything"), Option.some("AbCd-_12"))
      assert.deepStrictEqual(Envelope.keyIdOf("v1.AbCd-_1.x"), Option.none())
      assert.deepStrictEqual(Envelope.keyIdOf("v2.AbCd-_12.x"), Option.none())
      assert.deepStrictEqual(Envelope.keyIdOf("v1.AbCd+_12.x"), Option.none())
    })

    it("the additional data binds version, key id and context", () => {
      assert.strictEqual(Envelope.additionalData("AbCd-_12", "org:x.y").toString("utf8"), "v1.AbCd-_12.org:x.y")
    })
  })
})

describe("the v1 format is stable", () => {
  // A fixed, test-only secret and a ciphertext written by the first release. If either assertion
  // fails, the derivation or the format changed and every stored value would become unreadable.
  const SECRET = "clerk-sync golden test secret, never use in prod!"
  const GOLDEN = "v1.HQJbZXEI.YGi7EGfo6tW-khSN.wjvdoYHc3RDtJiTqk2Q_drCyojyadYNm2FdjdFUGZR_GU47u"
  const GOLDEN_CONTEXT = "org_golden:seller_accounts.credentials"
  const GOLDEN_PLAINTEXT = "golden plaintext ✓"

  it.effect("a ciphertext from the first release still decrypts", () =>
    Effect.gen(function*() {
      const keyRing = yield* KeyRing.derive({ key: SECRET })
      assert.strictEqual(keyRing.primary.id, "HQJbZXEI")
      const encryption = Encryption.fromKeyRing(keyRing)
      assert.strictEqual(yield* encryption.decrypt(GOLDEN, GOLDEN_CONTEXT), GOLDEN_PLAINTEXT)
    }))

  it("the format matches its specification (independent implementation)", () => {
    const { aes, id } = referenceDerive(SECRET)
    const [version, keyId, iv, body] = GOLDEN.split(".") as [string, string, string, string]
    assert.deepStrictEqual([version, keyId], ["v1", id])
    const bytes = Buffer.from(body, "base64url")
    const decipher = createDecipheriv("aes-256-gcm", aes, Buffer.from(iv, "base64url"), { authTagLength: 16 })
    decipher.setAAD(Buffer.from(`v1.${id}.${GOLDEN_CONTEXT}`, "utf8"))
    decipher.setAuthTag(bytes.subarray(bytes.length - 16))
    const plaintext = Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()])
    assert.strictEqual(plaintext.toString("utf8"), GOLDEN_PLAINTEXT)
  })
})
