/**
 * The ciphertext format: a versioned, self-describing string.
 *
 * ```text
 * v1.<keyId>.<iv>.<ciphertext+tag>
 * ```
 *
 * - `v1`: the format version (AES-256-GCM, the v1 key derivation, the v1 additional data);
 * - `keyId`: 8 base64url characters, the id of the key that encrypted it (see {@link Key});
 * - `iv`: the 96-bit random IV, 16 base64url characters;
 * - `ciphertext+tag`: the GCM ciphertext followed by its 128-bit tag, base64url without padding.
 *
 * The additional authenticated data is `v1.<keyId>.<context>`: the version, the key id and the
 * caller's context are all authenticated, so a value copied to another row (another context),
 * relabelled with another key id or replayed under another version fails to decrypt. The version
 * and key id contain no `.`, so the encoding is unambiguous whatever the context holds.
 *
 * Parsing is strict (exact part count, alphabet, lengths, canonical base64url) so that there is
 * exactly one string for each ciphertext: a changed character never decrypts to the same value.
 * Nothing here is secret: the format can be inspected by tooling, e.g. to count rows per key id
 * in SQL with `split_part(column, '.', 2)`.
 *
 * @since 0.1.0
 */
import { Option } from "effect"
import { ID_LENGTH } from "./Key.ts"

/** The current format version. @category constants */
export const VERSION = "v1"

/** The IV length in bytes (96 bits, the GCM standard). @category constants */
export const IV_BYTES = 12

/** The GCM tag length in bytes (128 bits). @category constants */
export const TAG_BYTES = 16

/** A parsed ciphertext. @category models */
export interface Envelope {
  readonly version: typeof VERSION
  readonly keyId: string
  readonly iv: Buffer
  /** The ciphertext followed by the tag. */
  readonly body: Buffer
}

const B64URL = /^[A-Za-z0-9_-]*$/
const IV_CHARS = 16
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/**
 * Unpadded base64url (alphabet already checked) is canonical when its length is not 1 mod 4 and
 * the bits of the last character that fall beyond the last byte are zero.
 */
const isCanonical = (text: string): boolean => {
  const rest = text.length % 4
  if (rest === 0) return true
  if (rest === 1) return false
  const last = ALPHABET.indexOf(text.charAt(text.length - 1))
  return (last & (rest === 2 ? 0b1111 : 0b11)) === 0
}

/**
 * Formats a ciphertext string.
 *
 * @category constructors
 */
export const format = (keyId: string, iv: Uint8Array, body: Uint8Array): string =>
  `${VERSION}.${keyId}.${Buffer.from(iv.buffer, iv.byteOffset, iv.byteLength).toString("base64url")}.${
    Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("base64url")
  }`

/**
 * Parses a ciphertext string; `None` if it is not a well-formed `v1` envelope.
 *
 * @example
 * import { Envelope } from "@clerk-sync/encryption"
 * Envelope.parse("not a ciphertext") // Option.none()
 *
 * @category parsing
 */
export const parse = (text: string): Option.Option<Envelope> => {
  const parts = text.split(".")
  if (parts.length !== 4) return Option.none()
  const [version, keyId, ivText, bodyText] = parts as [string, string, string, string]
  if (version !== VERSION) return Option.none()
  if (keyId.length !== ID_LENGTH || !B64URL.test(keyId)) return Option.none()
  // 16 base64url characters are exactly 96 bits: always canonical.
  if (ivText.length !== IV_CHARS || !B64URL.test(ivText)) return Option.none()
  if (!B64URL.test(bodyText) || !isCanonical(bodyText)) return Option.none()
  const body = Buffer.from(bodyText, "base64url")
  if (body.length < TAG_BYTES) return Option.none()
  return Option.some({ version, keyId, iv: Buffer.from(ivText, "base64url"), body })
}

/**
 * The key id of a ciphertext, read from its header without decrypting (and without checking
 * the rest of the string).
 *
 * @example
 * import { Envelope } from "@clerk-sync/encryption"
 * Envelope.keyIdOf("v1.h2P0zQ_a.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA") // Option.some("h2P0zQ_a")
 *
 * @category parsing
 */
export const keyIdOf = (text: string): Option.Option<string> => {
  const prefix = `${VERSION}.`
  if (!text.startsWith(prefix) || text.charAt(prefix.length + ID_LENGTH) !== ".") return Option.none()
  const keyId = text.slice(prefix.length, prefix.length + ID_LENGTH)
  return B64URL.test(keyId) ? Option.some(keyId) : Option.none()
}

/**
 * The additional authenticated data for a key id and a context: `v1.<keyId>.<context>` in UTF-8.
 *
 * @category constructors
 */
export const additionalData = (keyId: string, context: string): Buffer =>
  Buffer.from(`${VERSION}.${keyId}.${context}`, "utf8")
