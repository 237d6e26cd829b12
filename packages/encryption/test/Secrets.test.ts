/**
 * Nothing secret in anything that could reach a log, a response or an error tracker: errors,
 * keys, rings, services, exits, for every way of rendering them.
 */
import { Cipher } from "@clerk-sync/core"
import { assert, layer } from "@effect/vitest"
import { Cause, ConfigProvider, Context, Effect, Exit, Layer } from "effect"
import * as Encryption from "../src/Encryption.ts"
import * as FieldEncryption from "../src/FieldEncryption.ts"
import { createEncryption } from "../src/index.ts"
import * as KeyRing from "../src/KeyRing.ts"
import { encodings, referenceDerive, renderings, ring, TestKeys } from "./utils/TestKeys.ts"

const CTX = "org_1:seller_accounts.credentials"
const PLAINTEXT = "sk_live_PLAINTEXT_MUST_NOT_LEAK"

const assertClean = (label: string, value: unknown, forbidden: ReadonlyArray<string>) => {
  for (const text of renderings(value)) {
    for (const secret of forbidden) {
      assert.notInclude(text, secret, `${label} leaks a secret`)
    }
  }
}

layer(TestKeys.layer)("secrets", (it) => {
  it.effect("errors, keys, rings and services reveal no key, plaintext or ciphertext", () =>
    Effect.gen(function*() {
      const keys = yield* TestKeys
      const { aes } = referenceDerive(keys.secrets.a)
      const keyRing = yield* ring(keys.a, keys.b)
      const encryption = Encryption.fromKeyRing(keyRing)
      const ciphertext = yield* encryption.encrypt(PLAINTEXT, CTX)
      const jsonCiphertext = yield* encryption.encryptJson({ secret: PLAINTEXT }, CTX)
      const forbidden = [
        keys.secrets.a,
        keys.secrets.b,
        ...encodings(aes),
        PLAINTEXT,
        ciphertext,
        ciphertext.split(".")[3]!,
        jsonCiphertext.split(".")[3]!
      ]

      // Every error reason, produced by real operations on secret-bearing input.
      const failures = [
        encryption.decrypt(ciphertext, "org_2:x"), // Undecryptable
        encryption.decrypt(ciphertext.slice(0, -1), CTX), // Malformed or Undecryptable
        encryption.decrypt(`${PLAINTEXT}.${PLAINTEXT}`, CTX), // Malformed
        Encryption.fromKeyRing(yield* ring(keys.c)).decrypt(ciphertext, CTX), // UnknownKey
        encryption.decryptJson(yield* encryption.encrypt(`{${PLAINTEXT}`, CTX), CTX), // Malformed (JSON)
        encryption.encryptJson({ toJSON: () => { throw new Error(PLAINTEXT) } }, CTX), // Malformed
        encryption.encrypt(`${PLAINTEXT}\uD800`, CTX), // Malformed
        encryption.reencrypt(ciphertext, "org_2:x")
      ]
      const reasons = new Set<string>()
      for (const failure of failures) {
        const exit = yield* Effect.exit(failure)
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          assertClean("exit", exit, forbidden)
          assertClean("cause", Cause.pretty(exit.cause), forbidden)
          const error = yield* Effect.flip(failure)
          assert.instanceOf(error, Cipher.CipherError)
          assert.isUndefined((error as { cause?: unknown }).cause)
          reasons.add(error.reason)
          assertClean(`CipherError(${error.reason})`, error, forbidden)
        }
      }
      assert.deepStrictEqual([...reasons].sort(), ["Malformed", "Undecryptable", "UnknownKey"])

      assertClean("key", keys.a, forbidden)
      assertClean("ring", keyRing, forbidden)
      assertClean("service", encryption, forbidden)
      assertClean("cipher", Encryption.toCipher(encryption), forbidden)
      assertClean("field encryption", FieldEncryption.fromKeyRing(keyRing), forbidden)
      assert.strictEqual(JSON.stringify(keys.a), JSON.stringify({ _tag: "EncryptionKey", id: keys.a.id }))
      assert.strictEqual(
        JSON.stringify(keyRing),
        JSON.stringify({ _tag: "KeyRing", primary: keys.a.id, keys: [keys.a.id, keys.b.id] })
      )
    }))

  it.effect("the services provided by the layers reveal nothing", () =>
    Effect.gen(function*() {
      const keys = yield* TestKeys
      const built = yield* Layer.build(Encryption.layerKeyRing(yield* ring(keys.a)))
      // Only what the layer provides: the built context also carries the test's memo map, which
      // holds this file's own fixture secrets.
      const context = Context.pick(Encryption.Encryption, Cipher.Cipher)(built)
      assertClean("layer context", context, [keys.secrets.a, ...encodings(referenceDerive(keys.secrets.a).aes)])
    }))

  it.effect("configuration errors and configuration values reveal nothing", () =>
    Effect.gen(function*() {
      const keys = yield* TestKeys
      const weak = ["a-weak-secret-that-is-too-short", "z".repeat(40), "xyxyxyxy".repeat(5)]
      for (const secret of weak) {
        const env = { ENCRYPTION_KEY: keys.secrets.a, ENCRYPTION_KEYS_PREVIOUS: `${keys.secrets.b},${secret}` }
        const exit = yield* Effect.exit(Layer.build(Encryption.layerConfig).pipe(
          Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))
        ))
        assert.isTrue(Exit.isFailure(exit))
        assertClean("config exit", exit, [keys.secrets.a, keys.secrets.b, secret])
        const options = yield* Encryption.config.parse(ConfigProvider.fromEnv({ env }))
        assertClean("config value", options, [keys.secrets.a, keys.secrets.b])
      }
      const error = yield* Effect.flip(KeyRing.derive({ key: "a-weak-secret-that-is-too-short" }))
      assertClean("EncryptionKeyError", error, ["a-weak-secret-that-is-too-short"])
      const rejected = yield* Effect.promise(() =>
        createEncryption({ key: "a-weak-secret-that-is-too-short" }).then(() => undefined, (e: unknown) => e)
      )
      assertClean("rejected createEncryption", rejected, ["a-weak-secret-that-is-too-short"])
    }))
})
