/**
 * Encryption keys: from a configured secret string to a derived AES-256-GCM key with a public id.
 *
 * A secret (`ENCRYPTION_KEY`) is stretched once, at start-up, with PBKDF2-HMAC-SHA256 at OWASP's
 * current 600,000 iterations. HKDF-SHA256 then splits that master secret into two independent
 * outputs with distinct labels: the 256-bit AES key, and a 48-bit key id that ciphertexts carry
 * so a {@link KeyRing} can pick the right key. The id is a one-way function of the secret and
 * tells nothing about it; it is safe to log.
 *
 * **Salt.** The PBKDF2 salt is fixed, versioned and application-specific
 * (`"clerk-sync/encryption/v1/pbkdf2"`), not random:
 * - derivation must be deterministic, so that every process and every host derives the same key
 *   from the same `ENCRYPTION_KEY` with nothing else to store or distribute;
 * - the input is meant to be a high-entropy random secret (see {@link generate}), not a human
 *   password, so the salt's usual job (making precomputed tables across many users' passwords
 *   useless) does not apply; the application-specific salt still keeps a table built for any other
 *   PBKDF2 application from applying here, and the 600,000 iterations still slow a brute force of
 *   a weak secret;
 * - the salt is tied to the ciphertext version `v1`: a future format can change it.
 *
 * Derived key material never leaves this package: a {@link Key} shows only its id in
 * `JSON.stringify`, `String` and `util.inspect`, and errors name the setting (`ENCRYPTION_KEY`),
 * never its value.
 *
 * @since 0.1.0
 */
import { Data, Effect, Redacted } from "effect"
import { createSecretKey, hkdfSync, pbkdf2, randomBytes } from "node:crypto"
import { Key as KeyImpl } from "./internal/key.ts"

/** A derived key: an opaque object with a public, non-secret `id`. @category models */
export type Key = KeyImpl

/** PBKDF2-HMAC-SHA256 iterations (OWASP Password Storage Cheat Sheet, 2023+). @category constants */
export const ITERATIONS = 600_000

/** The fixed, versioned PBKDF2 salt (see the module documentation for why it is fixed). @category constants */
export const SALT = "clerk-sync/encryption/v1/pbkdf2"

/** The minimum length of a secret, in characters. @category constants */
export const MIN_LENGTH = 32

/** The length of a key id in base64url characters (48 bits). @category constants */
export const ID_LENGTH = 8

const AES_INFO = "clerk-sync/encryption/v1/aes-256-gcm"
const ID_INFO = "clerk-sync/encryption/v1/key-id"
const MIN_DISTINCT = 6

/**
 * A secret was rejected. `source` names the setting (e.g. `"ENCRYPTION_KEY"` or
 * `"previousKeys[1]"`), never the value.
 *
 * - `Empty`: the secret is empty (or, from configuration, not set);
 * - `TooShort`: fewer than {@link MIN_LENGTH} characters;
 * - `LowEntropy`: fewer than 6 distinct characters (e.g. `"aaaa…"`);
 * - `KeyIdCollision`: two different secrets in one ring have the same key id (astronomically
 *   unlikely; generate a new key).
 *
 * @category errors
 */
export class EncryptionKeyError extends Data.TaggedError("EncryptionKeyError")<{
  readonly reason: "Empty" | "TooShort" | "LowEntropy" | "KeyIdCollision"
  readonly source: string
}> {
  override get message(): string {
    switch (this.reason) {
      case "Empty":
        return `${this.source} is empty or not set: set it to a random secret of at least ${MIN_LENGTH} characters (see generateKey())`
      case "TooShort":
        return `${this.source} is too short: use a random secret of at least ${MIN_LENGTH} characters (see generateKey())`
      case "LowEntropy":
        return `${this.source} is too repetitive to be a random secret (see generateKey())`
      case "KeyIdCollision":
        return `${this.source} has the same key id as another key in the ring: generate a new key`
    }
  }
}

/**
 * Generates a strong random secret: 32 random bytes (256 bits) as 43 base64url characters,
 * suitable for `ENCRYPTION_KEY`.
 *
 * @example
 * import { Key } from "@clerk-sync/encryption"
 * Key.generate() // e.g. "q3Jb2m0b6J2m2q9y1kHcVw4sM7o5XwqC3k8rT0aYzNc"
 *
 * @category constructors
 */
export const generate = (): string => randomBytes(32).toString("base64url")

/**
 * Checks a secret without deriving it. Returns the reason it is rejected, if any.
 *
 * @category validation
 */
export const check = (secret: string): "Empty" | "TooShort" | "LowEntropy" | undefined => {
  if (secret.length === 0) return "Empty"
  if (secret.length < MIN_LENGTH) return "TooShort"
  if (new Set(secret).size < MIN_DISTINCT) return "LowEntropy"
  return undefined
}

const stretch = (secret: string): Effect.Effect<Buffer> =>
  Effect.callback<Buffer>((resume) => {
    pbkdf2(secret, SALT, ITERATIONS, 32, "sha256", (error, master) => {
      // Cannot fail with these fixed parameters; the error (which names no secret) becomes a defect.
      resume(error === null ? Effect.succeed(master) : Effect.die(new Error("PBKDF2 derivation failed")))
    })
  })

/**
 * Derives a key from a secret: validates it, then runs PBKDF2 (≈0.1–0.5 s, off the main thread)
 * and HKDF. Do this once per secret at start-up, never per record.
 *
 * @example
 * import { Key } from "@clerk-sync/encryption"
 * import { Effect } from "effect"
 * const key = await Effect.runPromise(Key.derive(process.env.ENCRYPTION_KEY ?? "", "ENCRYPTION_KEY"))
 * key.id // e.g. "h2P0zQ_a", safe to log
 *
 * @category constructors
 */
export const derive = (
  secret: string | Redacted.Redacted<string>,
  source = "key"
): Effect.Effect<Key, EncryptionKeyError> =>
  Effect.suspend(() => {
    const value = Redacted.isRedacted(secret) ? Redacted.value(secret) : secret
    const rejected = check(value)
    if (rejected !== undefined) return Effect.fail(new EncryptionKeyError({ reason: rejected, source }))
    return Effect.map(stretch(value), (master) => {
      const aes = Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), AES_INFO, 32))
      const id = Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), ID_INFO, 6)).toString("base64url")
      const material = createSecretKey(aes)
      master.fill(0)
      aes.fill(0)
      return new KeyImpl(id, material)
    })
  })
