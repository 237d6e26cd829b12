/**
 * The cipher port: field encryption bound to a context.
 *
 * `context` is additional authenticated data (e.g. `"<organizationId>:seller_accounts.credentials"`):
 * a ciphertext only decrypts under the context it was written with, so a value copied into another
 * tenant's row fails to decrypt. Errors never reveal the key, the plaintext or the ciphertext.
 *
 * @since 0.1.0
 */
import { Context, Data, type Effect } from "effect"

/** Decryption or encryption failed. @category errors */
export class CipherError extends Data.TaggedError("CipherError")<{
  /**
   * `Undecryptable`: authentication failed: wrong key, tampered ciphertext or wrong context. These
   * are deliberately indistinguishable (telling them apart would be an oracle).
   */
  readonly reason: "Undecryptable" | "Malformed" | "UnknownKey" | "Unavailable"
}> {
  override get message(): string {
    return `cipher failed: ${this.reason}`
  }
}

/** @category models */
export interface CipherShape {
  readonly encrypt: (plaintext: string, context: string) => Effect.Effect<string, CipherError>
  readonly decrypt: (ciphertext: string, context: string) => Effect.Effect<string, CipherError>
}

/** @category services */
export class Cipher extends Context.Service<Cipher, CipherShape>()("@clerk-sync/core/Cipher") {}
