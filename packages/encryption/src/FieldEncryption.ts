/**
 * The plain surface for code that does not use Effect: `await createEncryption({ key })`, then
 * synchronous `encrypt`/`decrypt` that throw `CipherError`.
 *
 * Why synchronous: node's AES-GCM is synchronous and takes microseconds for a field, so a Promise
 * per value would only add a microtask and force `await` into row mappers
 * (`rows.map((row) => decrypt(row.secret, ctx))`). The one slow step, key derivation, is the
 * Promise returned by `createEncryption`, and runs off the main thread.
 *
 * @since 0.1.0
 */
import type { Cipher } from "@clerk-sync/core"
import { Effect, Result } from "effect"
import * as Aead from "./internal/aead.ts"
import type * as KeyRing from "./KeyRing.ts"
import { derive } from "./KeyRing.ts"

/**
 * Field encryption with synchronous methods; each throws a `CipherError` (from
 * `@clerk-sync/core`) whose `reason` is all it says.
 *
 * @category models
 */
export interface FieldEncryption {
  /** Encrypts a string under the primary key, bound to `context`. */
  readonly encrypt: (plaintext: string, context: string) => string
  /** Decrypts a ciphertext written under `context`, with any key of the ring. */
  readonly decrypt: (ciphertext: string, context: string) => string
  /** Encrypts `JSON.stringify(value)`. */
  readonly encryptJson: (value: unknown, context: string) => string
  /** Decrypts and `JSON.parse`s (validate the result before trusting its shape). */
  readonly decryptJson: (ciphertext: string, context: string) => unknown
  /** Re-encrypts under the primary; returns the same string when it already is (skip the write). */
  readonly reencrypt: (ciphertext: string, context: string) => string
  /** Whether `reencrypt` would produce a new ciphertext (header check only). */
  readonly needsReencrypt: (ciphertext: string) => boolean
  /** The ring (key ids only are visible). */
  readonly keyRing: KeyRing.KeyRing
}

const unwrap = <A>(result: Result.Result<A, Cipher.CipherError>): A => {
  if (Result.isFailure(result)) throw result.failure
  return result.success
}

/**
 * Field encryption over an already derived ring.
 *
 * @category constructors
 */
export const fromKeyRing = (ring: KeyRing.KeyRing): FieldEncryption =>
  Object.freeze({
    encrypt: (plaintext: string, context: string) => unwrap(Aead.seal(ring.primary, plaintext, context)),
    decrypt: (ciphertext: string, context: string) => unwrap(Aead.open(ring, ciphertext, context)),
    encryptJson: (value: unknown, context: string) => unwrap(Aead.sealJson(ring.primary, value, context)),
    decryptJson: (ciphertext: string, context: string) => unwrap(Aead.openJson(ring, ciphertext, context)),
    reencrypt: (ciphertext: string, context: string) => unwrap(Aead.reseal(ring, ciphertext, context)),
    needsReencrypt: (ciphertext: string) => Aead.needsReseal(ring, ciphertext),
    keyRing: ring
  })

/**
 * Derives the keys (once, ≈0.1–0.5 s, off the main thread) and returns synchronous field
 * encryption. Rejects with an `EncryptionKeyError` for an empty, short or repetitive secret.
 *
 * @example
 * import { createEncryption, generateKey } from "@clerk-sync/encryption"
 * const encryption = await createEncryption({ key: process.env.ENCRYPTION_KEY ?? generateKey() })
 * const stored = encryption.encrypt("sk_live_1", "org_1:seller_accounts.credentials")
 * encryption.decrypt(stored, "org_1:seller_accounts.credentials") // "sk_live_1"
 *
 * @category constructors
 */
export const createEncryption = (options: KeyRing.Options): Promise<FieldEncryption> =>
  Effect.runPromise(Effect.map(derive(options), fromKeyRing))
