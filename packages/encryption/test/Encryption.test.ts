import { Cipher } from "@clerk-sync/core"
import { assert, describe, it, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import * as Encryption from "../src/Encryption.ts"
import * as Envelope from "../src/Envelope.ts"
import { ring, TestKeys } from "./utils/TestKeys.ts"

const CTX = "org_1:seller_accounts.credentials"
const SHAPE = /^v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22,}$/

/** The service over ring(a, [b]), built from the file's shared keys. */
const service = Effect.gen(function*() {
  const keys = yield* TestKeys
  return Encryption.fromKeyRing(yield* ring(keys.a, keys.b))
})

const reasonOf = <A>(effect: Effect.Effect<A, Cipher.CipherError>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason)

layer(TestKeys.layer)("Encryption", (it) => {
  describe("round trips", () => {
    const strings: ReadonlyArray<readonly [string, string]> = [
      ["ascii", "sk_live_51H8xYz"],
      ["empty", ""],
      ["unicode", "héllo wörld ✓ 日本語 🌍👩🏽‍💻 مرحبا e\u0301"],
      ["control characters", "a\u0000b\nc\td\u007f"],
      ["dots and separators", "v1.abc.def.ghi:::,,,"],
      ["large (1 MiB)", "x".repeat(1024 * 1024)],
      ["large unicode", "🌍".repeat(100_000)]
    ]
    for (const [name, plaintext] of strings) {
      it.effect(`string: ${name}`, () =>
        Effect.gen(function*() {
          const encryption = yield* service
          const ciphertext = yield* encryption.encrypt(plaintext, CTX)
          assert.match(ciphertext, SHAPE)
          assert.strictEqual(yield* encryption.decrypt(ciphertext, CTX), plaintext)
        }))
    }

    const values: ReadonlyArray<readonly [string, unknown]> = [
      ["object", { apiKey: "sk_live_1", scopes: ["read", "write"], nested: { n: 1.5, ok: true, none: null } }],
      ["array", [1, "two", { three: 3 }, [], {}]],
      ["string", "just a string"],
      ["number", 42],
      ["boolean", false],
      ["null", null],
      ["unicode keys", { "клю́ч": "значение", "🔑": "🌍" }],
      ["large", { items: Array.from({ length: 5000 }, (_, i) => ({ i, s: `item-${i}` })) }]
    ]
    for (const [name, value] of values) {
      it.effect(`json: ${name}`, () =>
        Effect.gen(function*() {
          const encryption = yield* service
          const ciphertext = yield* encryption.encryptJson(value, CTX)
          assert.deepStrictEqual(yield* encryption.decryptJson(ciphertext, CTX), value)
        }))
    }

    it.effect("an empty plaintext still carries a full tag", () =>
      Effect.gen(function*() {
        const encryption = yield* service
        const ciphertext = yield* encryption.encrypt("", CTX)
        assert.strictEqual(ciphertext.split(".")[3]!.length, 22) // 16-byte tag
      }))
  })

  describe("IVs", () => {
    it.effect("the same plaintext encrypts to different ciphertexts", () =>
      Effect.gen(function*() {
        const encryption = yield* service
        const seen = new Set<string>()
        const ivs = new Set<string>()
        for (let i = 0; i < 100; i++) {
          const ciphertext = yield* encryption.encrypt("same", CTX)
          seen.add(ciphertext)
          ivs.add(ciphertext.split(".")[2]!)
        }
        assert.strictEqual(seen.size, 100)
        assert.strictEqual(ivs.size, 100)
      }))

    it.effect("running the same encrypt effect twice draws a new IV", () =>
      Effect.gen(function*() {
        const encryption = yield* service
        const once = encryption.encrypt("same", CTX)
        const [x, y] = [yield* once, yield* once]
        assert.notStrictEqual(x, y)
        assert.strictEqual(yield* encryption.decrypt(x, CTX), yield* encryption.decrypt(y, CTX))
      }))

    it.effect("writes carry the primary key id", () =>
      Effect.gen(function*() {
        const encryption = yield* service
        const keys = yield* TestKeys
        const ciphertext = yield* encryption.encrypt("x", CTX)
        assert.strictEqual(ciphertext.split(".")[1], keys.a.id)
        assert.strictEqual(encryption.keyRing.primary.id, keys.a.id)
      }))
  })

  describe("context binding", () => {
    const others = [
      "org_2:seller_accounts.credentials",
      "org_1:seller_accounts.credential",
      "org_1:seller_accounts.credentials ",
      " org_1:seller_accounts.credentials",
      "ORG_1:seller_accounts.credentials",
      "org_1:users.credentials",
      ""
    ]
    it.effect("a ciphertext only decrypts under its own context", () =>
      Effect.gen(function*() {
        const encryption = yield* service
        const ciphertext = yield* encryption.encrypt("tenant secret", CTX)
        for (const other of others) {
          assert.strictEqual(yield* reasonOf(encryption.decrypt(ciphertext, other)), "Undecryptable", other)
        }
      }))

    it.effect("a value copied into another tenant's row fails, for JSON too", () =>
      Effect.gen(function*() {
        const encryption = yield* service
        const ciphertext = yield* encryption.encryptJson({ token: "t" }, "org_a:seller_accounts.credentials")
        assert.strictEqual(
          yield* reasonOf(encryption.decryptJson(ciphertext, "org_b:seller_accounts.credentials")),
          "Undecryptable"
        )
      }))

    it.effect("the empty context is a context like any other", () =>
      Effect.gen(function*() {
        const encryption = yield* service
        const ciphertext = yield* encryption.encrypt("x", "")
        assert.strictEqual(yield* encryption.decrypt(ciphertext, ""), "x")
        assert.strictEqual(yield* reasonOf(encryption.decrypt(ciphertext, "org_1")), "Undecryptable")
      }))
  })

  describe("wrong key", () => {
    it.effect("a ring without the key fails with UnknownKey", () =>
      Effect.gen(function*() {
        const keys = yield* TestKeys
        const ciphertext = yield* (yield* service).encrypt("x", CTX)
        const other = Encryption.fromKeyRing(yield* ring(keys.c))
        assert.strictEqual(yield* reasonOf(other.decrypt(ciphertext, CTX)), "UnknownKey")
      }))

    it.effect("a ciphertext relabelled with another key's id is Undecryptable", () =>
      Effect.gen(function*() {
        const keys = yield* TestKeys
        const encryption = yield* service // holds a and b
        const ciphertext = yield* encryption.encrypt("x", CTX)
        const relabelled = ciphertext.replace(`.${keys.a.id}.`, `.${keys.b.id}.`)
        assert.strictEqual(yield* reasonOf(encryption.decrypt(relabelled, CTX)), "Undecryptable")
      }))
  })

  describe("bad input", () => {
    it.effect("values JSON cannot represent fail with Malformed", () =>
      Effect.gen(function*() {
        const encryption = yield* service
        const cycle: Record<string, unknown> = {}
        cycle["self"] = cycle
        const throwing = { toJSON: () => { throw new Error("secret-in-message") } }
        for (const value of [undefined, () => 1, Symbol("s"), 10n, cycle, throwing]) {
          assert.strictEqual(yield* reasonOf(encryption.encryptJson(value, CTX)), "Malformed")
        }
      }))

    it.effect("decryptJson of a non-JSON plaintext fails with Malformed", () =>
      Effect.gen(function*() {
        const encryption = yield* service
        const ciphertext = yield* encryption.encrypt("{not json", CTX)
        assert.strictEqual(yield* reasonOf(encryption.decryptJson(ciphertext, CTX)), "Malformed")
      }))

    it.effect("lone surrogates (which UTF-8 cannot carry) fail with Malformed instead of corrupting", () =>
      Effect.gen(function*() {
        const encryption = yield* service
        assert.strictEqual(yield* reasonOf(encryption.encrypt("a\uD800b", CTX)), "Malformed")
        assert.strictEqual(yield* reasonOf(encryption.encrypt("x", "org\uDC00")), "Malformed")
        const ciphertext = yield* encryption.encrypt("x", CTX)
        assert.strictEqual(yield* reasonOf(encryption.decrypt(ciphertext, "org\uDC00")), "Malformed")
        // a well-formed surrogate pair is fine
        assert.strictEqual(yield* encryption.decrypt(yield* encryption.encrypt("\uD83C\uDF0D", CTX), CTX), "🌍")
      }))

    it.effect("strings that are not ciphertexts fail with Malformed", () =>
      Effect.gen(function*() {
        const encryption = yield* service
        for (const text of ["", "plaintext", "v1", "v1...", "v1.a.b.c", "v2.AAAAAAAA.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"]) {
          assert.strictEqual(yield* reasonOf(encryption.decrypt(text, CTX)), "Malformed", text)
        }
      }))
  })

  describe("the Cipher port", () => {
    it.effect("layerKeyRing provides Cipher, interoperable with the Encryption service", () =>
      Effect.gen(function*() {
        const keys = yield* TestKeys
        const live = Encryption.layerKeyRing(yield* ring(keys.a, keys.b))
        return yield* Effect.gen(function*() {
          const cipher = yield* Cipher.Cipher
          const encryption = yield* Encryption.Encryption
          const ciphertext = yield* cipher.encrypt("via port", CTX)
          assert.strictEqual(yield* encryption.decrypt(ciphertext, CTX), "via port")
          const error = yield* Effect.flip(cipher.decrypt(ciphertext, "org_2:x"))
          assert.instanceOf(error, Cipher.CipherError)
          assert.strictEqual(error.reason, "Undecryptable")
        }).pipe(Effect.provide(live))
      }))
  })

  describe("layers", () => {
    it.effect("layer derives the keys and provides both services", () =>
      Effect.gen(function*() {
        const keys = yield* TestKeys
        const written = yield* (yield* service).encrypt("from ring(a, b)", CTX)
        const decrypted = yield* Cipher.Cipher.use((cipher) => cipher.decrypt(written, CTX)).pipe(
          Effect.provide(Encryption.layer({ key: keys.secrets.c, previousKeys: [keys.secrets.a] }))
        )
        assert.strictEqual(decrypted, "from ring(a, b)")
      }))

    it.effect("layer rejects a weak key before deriving anything", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Layer.build(Encryption.layer({ key: "too-short" })))
        assert.strictEqual(error._tag, "EncryptionKeyError")
        assert.strictEqual(error.reason, "TooShort")
        assert.strictEqual(error.source, "key")
      }))

    const withEnv = (env: Record<string, string>) =>
      Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

    it.effect("layerConfig reads ENCRYPTION_KEY and ENCRYPTION_KEYS_PREVIOUS", () =>
      Effect.gen(function*() {
        const keys = yield* TestKeys
        const underB = yield* Encryption.fromKeyRing(yield* ring(keys.b)).encrypt("old", CTX)
        const underC = yield* Encryption.fromKeyRing(yield* ring(keys.c)).encrypt("older", CTX)
        const encryption = yield* Effect.service(Encryption.Encryption).pipe(
          Effect.provide(Encryption.layerConfig),
          withEnv({
            ENCRYPTION_KEY: keys.secrets.a,
            ENCRYPTION_KEYS_PREVIOUS: ` ${keys.secrets.b} ,${keys.secrets.c},`
          })
        )
        assert.deepStrictEqual(encryption.keyRing.ids, [keys.a.id, keys.b.id, keys.c.id])
        assert.strictEqual(yield* encryption.decrypt(underB, CTX), "old")
        assert.strictEqual(yield* encryption.decrypt(underC, CTX), "older")
        assert.strictEqual(Envelope.keyIdOf(yield* encryption.encrypt("new", CTX))._tag, "Some")
        assert.isFalse(encryption.needsReencrypt(yield* encryption.encrypt("new", CTX)))
      }))

    it.effect("layerConfig: ENCRYPTION_KEY is required", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Layer.build(Encryption.layerConfig).pipe(withEnv({})))
        assert.strictEqual(error._tag, "EncryptionKeyError")
        assert.strictEqual(
          error.message,
          "ENCRYPTION_KEY is empty or not set: set it to a random secret of at least 32 characters (see generateKey())"
        )
      }))

    it.effect("layerConfig: weak keys are named by variable, never by value", () =>
      Effect.gen(function*() {
        const keys = yield* TestKeys
        const empty = yield* Effect.flip(Layer.build(Encryption.layerConfig).pipe(withEnv({ ENCRYPTION_KEY: "" })))
        assert.strictEqual(empty._tag, "EncryptionKeyError")
        if (empty._tag === "EncryptionKeyError") assert.deepStrictEqual([empty.reason, empty.source], ["Empty", "ENCRYPTION_KEY"])

        const weakPrevious = "previous-but-short"
        const short = yield* Effect.flip(
          Layer.build(Encryption.layerConfig).pipe(
            withEnv({ ENCRYPTION_KEY: keys.secrets.a, ENCRYPTION_KEYS_PREVIOUS: `${keys.secrets.b},${weakPrevious}` })
          )
        )
        assert.strictEqual(short._tag, "EncryptionKeyError")
        if (short._tag === "EncryptionKeyError") {
          assert.deepStrictEqual([short.reason, short.source], ["TooShort", "ENCRYPTION_KEYS_PREVIOUS[1]"])
          assert.include(short.message, "ENCRYPTION_KEYS_PREVIOUS[1]")
          assert.notInclude(short.message, weakPrevious)
        }
      }))
  })
})

describe("Encryption.make", () => {
  it.effect("rejects an empty key", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Encryption.make({ key: "" }))
      assert.deepStrictEqual([error.reason, error.source], ["Empty", "key"])
    }))
})
