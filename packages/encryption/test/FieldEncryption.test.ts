import { Cipher } from "@clerk-sync/core"
import { assert, describe, it } from "@effect/vitest"
import { createEncryption, FieldEncryption, generateKey, Key } from "../src/index.ts"

const CTX = "org_1:seller_accounts.credentials"

const thrown = (f: () => unknown): unknown => {
  try {
    f()
  } catch (error) {
    return error
  }
  return assert.fail("expected a throw")
}

describe("createEncryption", () => {
  // One derivation pair for the whole block.
  const oldSecret = generateKey()
  const newSecret = generateKey()
  const setup = Promise.all([
    createEncryption({ key: oldSecret }),
    createEncryption({ key: newSecret, previousKeys: [oldSecret] })
  ])

  it("round-trips strings and JSON synchronously", async () => {
    const [, encryption] = await setup
    const ciphertext = encryption.encrypt("sk_live_1", CTX)
    assert.strictEqual(encryption.decrypt(ciphertext, CTX), "sk_live_1")
    assert.deepStrictEqual(encryption.decryptJson(encryption.encryptJson({ a: [1, "b"] }, CTX), CTX), { a: [1, "b"] })
  })

  it("throws CipherError with a reason and nothing else", async () => {
    const [, encryption] = await setup
    const ciphertext = encryption.encrypt("secret", CTX)
    const error = thrown(() => encryption.decrypt(ciphertext, "org_2:x"))
    assert.instanceOf(error, Cipher.CipherError)
    assert.instanceOf(error, Error)
    assert.strictEqual((error as Cipher.CipherError).reason, "Undecryptable")
    assert.strictEqual((error as Cipher.CipherError).message, "cipher failed: Undecryptable")
    assert.strictEqual((thrown(() => encryption.decrypt("nope", CTX)) as Cipher.CipherError).reason, "Malformed")
    assert.strictEqual((thrown(() => encryption.encryptJson(undefined, CTX)) as Cipher.CipherError).reason, "Malformed")
  })

  it("rotates: previous keys decrypt, reencrypt moves to the primary", async () => {
    const [before, after] = await setup
    const old = before.encrypt("rotate", CTX)
    assert.strictEqual(after.decrypt(old, CTX), "rotate")
    assert.isTrue(after.needsReencrypt(old))
    const moved = after.reencrypt(old, CTX)
    assert.strictEqual(moved.split(".")[1], after.keyRing.primary.id)
    assert.strictEqual(after.reencrypt(moved, CTX), moved)
    assert.strictEqual((thrown(() => before.decrypt(moved, CTX)) as Cipher.CipherError).reason, "UnknownKey")
  })

  it("fromKeyRing shares a ring with the Effect service", async () => {
    const [, encryption] = await setup
    const again = FieldEncryption.fromKeyRing(encryption.keyRing)
    assert.strictEqual(again.decrypt(encryption.encrypt("x", CTX), CTX), "x")
  })

  it("rejects weak keys with an EncryptionKeyError", async () => {
    for (const [key, reason] of [["", "Empty"], ["0123456789", "TooShort"], ["-".repeat(32), "LowEntropy"]] as const) {
      const error = await createEncryption({ key }).then(() => undefined, (e: unknown) => e)
      assert.instanceOf(error, Key.EncryptionKeyError)
      assert.strictEqual((error as Key.EncryptionKeyError).reason, reason)
    }
  })
})
