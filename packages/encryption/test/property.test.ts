/**
 * Properties over arbitrary plaintexts and contexts, on a ring derived once for the file.
 */
import { assert, layer } from "@effect/vitest"
import { Effect, Result, Schema } from "effect"
import fc from "fast-check"
import * as Encryption from "../src/Encryption.ts"
import * as FieldEncryption from "../src/FieldEncryption.ts"
import { ring, TestKeys } from "./utils/TestKeys.ts"

const NUM_RUNS = 200
const text = fc.string({ unit: "binary", maxLength: 300 }) // any well-formed Unicode
const reasonOf = (f: () => unknown): string | undefined => {
  try {
    f()
    return undefined
  } catch (error) {
    return (error as { reason?: string }).reason
  }
}

layer(TestKeys.layer)("properties", (it) => {
  it.effect("decrypt(encrypt(x, ctx), ctx) === x, and any other context fails", () =>
    Effect.gen(function*() {
      const { a, b } = yield* TestKeys
      const encryption = FieldEncryption.fromKeyRing(yield* ring(a, b))
      fc.assert(
        fc.property(text, text, text, (plaintext, context, other) => {
          const ciphertext = encryption.encrypt(plaintext, context)
          assert.strictEqual(encryption.decrypt(ciphertext, context), plaintext)
          if (other !== context) assert.strictEqual(reasonOf(() => encryption.decrypt(ciphertext, other)), "Undecryptable")
        }),
        { numRuns: NUM_RUNS }
      )
    }))

  it.effect("JSON values round-trip as JSON.parse(JSON.stringify(v))", () =>
    Effect.gen(function*() {
      const { a } = yield* TestKeys
      const encryption = FieldEncryption.fromKeyRing(yield* ring(a))
      fc.assert(
        fc.property(fc.jsonValue(), text, (value, context) => {
          const ciphertext = encryption.encryptJson(value, context)
          assert.deepStrictEqual(encryption.decryptJson(ciphertext, context), JSON.parse(JSON.stringify(value)))
        }),
        { numRuns: NUM_RUNS }
      )
    }))

  it.effect("reencrypt from a previous key preserves the value and moves it to the primary", () =>
    Effect.gen(function*() {
      const { a, b } = yield* TestKeys
      const old = FieldEncryption.fromKeyRing(yield* ring(b))
      const current = FieldEncryption.fromKeyRing(yield* ring(a, b))
      fc.assert(
        fc.property(text, text, (plaintext, context) => {
          const moved = current.reencrypt(old.encrypt(plaintext, context), context)
          assert.strictEqual(moved.split(".")[1], a.id)
          assert.strictEqual(current.decrypt(moved, context), plaintext)
        }),
        { numRuns: NUM_RUNS }
      )
    }))

  it.effect("strings with lone surrogates are refused, well-formed ones accepted", () =>
    Effect.gen(function*() {
      const { a } = yield* TestKeys
      const encryption = FieldEncryption.fromKeyRing(yield* ring(a))
      const utf16 = fc.string({ unit: fc.nat(0xffff).map((n) => String.fromCharCode(n)), maxLength: 20 })
      fc.assert(
        fc.property(utf16, (plaintext) => {
          const wellFormed = !/\p{Surrogate}/u.test(plaintext)
          const reason = reasonOf(() => encryption.encrypt(plaintext, "ctx"))
          assert.strictEqual(reason, wellFormed ? undefined : "Malformed")
        }),
        { numRuns: NUM_RUNS }
      )
    }))

  it.effect.prop(
    "the Effect service round-trips (Schema-generated input)",
    [Schema.String, Schema.String],
    ([plaintext, context]) =>
      Effect.gen(function*() {
        const { a } = yield* TestKeys
        const encryption = Encryption.fromKeyRing(yield* ring(a))
        const result = yield* Effect.result(encryption.encrypt(plaintext, context))
        if (Result.isFailure(result)) {
          assert.strictEqual(result.failure.reason, "Malformed") // a generated lone surrogate
          return
        }
        assert.strictEqual(yield* encryption.decrypt(result.success, context), plaintext)
      }),
    { arbitrary: { runs: NUM_RUNS } }
  )
})
