import type { Cipher } from "@clerk-sync/core"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { createSecretKey, randomBytes } from "node:crypto"
import * as Encryption from "../src/Encryption.ts"
import { Key as KeyImpl } from "../src/internal/key.ts"
import * as Key from "../src/Key.ts"
import * as KeyRing from "../src/KeyRing.ts"
import { ring, TestKeys } from "./utils/TestKeys.ts"

const CTX = "org_1:seller_accounts.credentials"

const reasonOf = <A>(effect: Effect.Effect<A, Cipher.CipherError>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason)

layer(TestKeys.layer)("KeyRing", (it) => {
  describe("rotation", () => {
    it.effect("old ciphertexts decrypt after rotation, reencrypt moves them, dropping the old key fails", () =>
      Effect.gen(function*() {
        const { a: old, b: current } = yield* TestKeys
        // 1. Before rotation: `old` is the primary.
        const before = Encryption.fromKeyRing(yield* ring(old))
        const written = yield* before.encrypt("rotate me", CTX)
        const writtenJson = yield* before.encryptJson({ token: "t" }, CTX)

        // 2. Rotation: `current` becomes primary, `old` stays as a previous key.
        const during = Encryption.fromKeyRing(yield* ring(current, old))
        assert.strictEqual(yield* during.decrypt(written, CTX), "rotate me")
        assert.deepStrictEqual(yield* during.decryptJson(writtenJson, CTX), { token: "t" })
        assert.isTrue(during.needsReencrypt(written))
        const moved = yield* during.reencrypt(written, CTX)
        const movedJson = yield* during.reencrypt(writtenJson, CTX)
        assert.notStrictEqual(moved, written)
        assert.strictEqual(moved.split(".")[1], current.id)
        assert.isFalse(during.needsReencrypt(moved))
        assert.strictEqual(yield* during.decrypt(moved, CTX), "rotate me")

        // 3. After rotation: the old key is gone. Moved values decrypt; unmoved ones do not.
        const after = Encryption.fromKeyRing(yield* ring(current))
        assert.strictEqual(yield* after.decrypt(moved, CTX), "rotate me")
        assert.deepStrictEqual(yield* after.decryptJson(movedJson, CTX), { token: "t" })
        assert.strictEqual(yield* reasonOf(after.decrypt(written, CTX)), "UnknownKey")
        assert.strictEqual(yield* reasonOf(after.reencrypt(written, CTX)), "UnknownKey")
      }))

    it.effect("reencrypt of a value already under the primary returns the same string", () =>
      Effect.gen(function*() {
        const { a, b } = yield* TestKeys
        const encryption = Encryption.fromKeyRing(yield* ring(a, b))
        const ciphertext = yield* encryption.encrypt("already current", CTX)
        assert.isFalse(encryption.needsReencrypt(ciphertext))
        assert.strictEqual(yield* encryption.reencrypt(ciphertext, CTX), ciphertext)
      }))

    it.effect("reencrypt authenticates before answering, even on the no-op path", () =>
      Effect.gen(function*() {
        const { a, b } = yield* TestKeys
        const encryption = Encryption.fromKeyRing(yield* ring(a, b))
        const current = yield* encryption.encrypt("x", CTX)
        const old = yield* Encryption.fromKeyRing(yield* ring(b)).encrypt("x", CTX)
        const tampered = current.slice(0, -3) + (current.endsWith("AAA") ? "BBB" : "AAA")
        assert.include(["Undecryptable", "Malformed"], yield* reasonOf(encryption.reencrypt(tampered, CTX)))
        assert.strictEqual(yield* reasonOf(encryption.reencrypt(current, "org_2:x")), "Undecryptable")
        assert.strictEqual(yield* reasonOf(encryption.reencrypt(old, "org_2:x")), "Undecryptable")
        assert.strictEqual(yield* reasonOf(encryption.reencrypt("garbage", CTX)), "Malformed")
        assert.isTrue(encryption.needsReencrypt("garbage"))
      }))

    it.effect("reencrypt keeps the context binding", () =>
      Effect.gen(function*() {
        const { a, b } = yield* TestKeys
        const old = yield* Encryption.fromKeyRing(yield* ring(b)).encrypt("bound", CTX)
        const encryption = Encryption.fromKeyRing(yield* ring(a, b))
        const moved = yield* encryption.reencrypt(old, CTX)
        assert.strictEqual(yield* reasonOf(encryption.decrypt(moved, "org_2:seller_accounts.credentials")), "Undecryptable")
      }))

    it.effect("any key of the ring decrypts, only the primary writes", () =>
      Effect.gen(function*() {
        const { a, b, c } = yield* TestKeys
        const keyRing = yield* ring(a, b, c)
        assert.deepStrictEqual(keyRing.ids, [a.id, b.id, c.id])
        assert.strictEqual(keyRing.get(c.id), c)
        assert.strictEqual(keyRing.get("nope0000"), undefined)
        const encryption = Encryption.fromKeyRing(keyRing)
        for (const key of [a, b, c]) {
          const written = yield* Encryption.fromKeyRing(yield* ring(key)).encrypt(`under ${key.id}`, CTX)
          assert.strictEqual(yield* encryption.decrypt(written, CTX), `under ${key.id}`)
        }
        assert.strictEqual((yield* encryption.encrypt("new", CTX)).split(".")[1], a.id)
      }))
  })

  describe("construction", () => {
    it.effect("the same key twice is kept once", () =>
      Effect.gen(function*() {
        const { a, b } = yield* TestKeys
        assert.deepStrictEqual((yield* ring(a, b, a, b)).ids, [a.id, b.id])
      }))

    it.effect("two different keys with the same id are refused", () =>
      Effect.gen(function*() {
        const { a } = yield* TestKeys
        const impostor = new KeyImpl(a.id, createSecretKey(randomBytes(32)))
        const error = yield* Effect.flip(KeyRing.make(a, [impostor]))
        assert.deepStrictEqual([error.reason, error.source], ["KeyIdCollision", "previousKeys[0]"])
      }))

    it.effect("derivation is deterministic: separately derived rings read each other's values", () =>
      Effect.gen(function*() {
        const { a, b, secrets } = yield* TestKeys
        // A second "process": derive again from the secrets (the same secret listed twice is derived once).
        const again = yield* KeyRing.derive({ key: secrets.a, previousKeys: [secrets.a, secrets.b] })
        assert.deepStrictEqual(again.ids, [a.id, b.id])
        const written = yield* Encryption.fromKeyRing(yield* ring(a)).encrypt("across processes", CTX)
        assert.strictEqual(yield* Encryption.fromKeyRing(again).decrypt(written, CTX), "across processes")
      }))

    it.effect("weak secrets are rejected before any derivation, naming the first bad one", () =>
      Effect.gen(function*() {
        const { secrets } = yield* TestKeys
        const cases: ReadonlyArray<readonly [KeyRing.Options, string, string]> = [
          [{ key: "" }, "Empty", "key"],
          [{ key: "short-but-not-empty" }, "TooShort", "key"],
          [{ key: "a".repeat(64) }, "LowEntropy", "key"],
          [{ key: "abcab".repeat(10) }, "LowEntropy", "key"],
          [{ key: secrets.a, previousKeys: [secrets.b, "x".repeat(31)] }, "TooShort", "previousKeys[1]"],
          [{ key: secrets.a, previousKeys: [""] }, "Empty", "previousKeys[0]"]
        ]
        for (const [options, reason, source] of cases) {
          const error = yield* Effect.flip(KeyRing.derive(options))
          assert.deepStrictEqual([error._tag, error.reason, error.source], ["EncryptionKeyError", reason, source])
          assert.include(error.message, source)
        }
      }))

    it.effect("Key.derive validates too", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Key.derive("tiny", "MY_SETTING"))
        assert.strictEqual(error.message, "MY_SETTING is too short: use a random secret of at least 32 characters (see generateKey())")
      }))
  })

  describe("generate", () => {
    it("returns 256-bit random base64url secrets that pass the checks", () => {
      const secrets = new Set(Array.from({ length: 50 }, () => Key.generate()))
      assert.strictEqual(secrets.size, 50)
      for (const secret of secrets) {
        assert.match(secret, /^[A-Za-z0-9_-]{43}$/)
        assert.strictEqual(Buffer.from(secret, "base64url").length, 32)
        assert.isUndefined(Key.check(secret))
      }
    })
  })
})
