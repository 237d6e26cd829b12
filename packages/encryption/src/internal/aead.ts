/**
 * The AES-256-GCM core: seal, open and re-seal envelopes with a key ring. Synchronous (node's
 * GCM is), returning `Result` so both the Effect service and the plain facade can use it.
 *
 * Errors carry only a reason: never the key, the plaintext, the ciphertext or node's own error.
 *
 * @internal
 */
import { Cipher } from "@clerk-sync/core"
import { Option, Result } from "effect"
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import * as Envelope from "../Envelope.ts"
import type { KeyRing } from "../KeyRing.ts"
import { type Key, materialOf } from "./key.ts"

const ALGORITHM = "aes-256-gcm"

type CipherError = Cipher.CipherError

const failure = (reason: CipherError["reason"]): Result.Result<never, CipherError> =>
  Result.fail(new Cipher.CipherError({ reason }))

/**
 * A string with a lone surrogate cannot round-trip through UTF-8 (it would come back as U+FFFD),
 * and two such contexts could share additional data: refuse rather than corrupt.
 */
const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed()

/** Encrypts with `key` under `context`. */
export const seal = (key: Key, plaintext: string, context: string): Result.Result<string, CipherError> => {
  if (typeof plaintext !== "string" || typeof context !== "string") return failure("Malformed")
  if (!isWellFormed(plaintext) || !isWellFormed(context)) return failure("Malformed")
  // IVs come from the CSPRNG (never Effect's seeded `Random`): a repeated IV under one key breaks GCM.
  const iv = randomBytes(Envelope.IV_BYTES)
  const cipher = createCipheriv(ALGORITHM, materialOf(key), iv, { authTagLength: Envelope.TAG_BYTES })
  cipher.setAAD(Envelope.additionalData(key.id, context))
  const head = cipher.update(plaintext, "utf8")
  const tail = cipher.final()
  return Result.succeed(Envelope.format(key.id, iv, Buffer.concat([head, tail, cipher.getAuthTag()])))
}

const openEnvelope = (key: Key, envelope: Envelope.Envelope, context: string): Result.Result<string, CipherError> => {
  const { body, iv } = envelope
  const split = body.length - Envelope.TAG_BYTES
  const decipher = createDecipheriv(ALGORITHM, materialOf(key), iv, { authTagLength: Envelope.TAG_BYTES })
  decipher.setAAD(Envelope.additionalData(key.id, context))
  decipher.setAuthTag(body.subarray(split))
  const head = decipher.update(body.subarray(0, split))
  try {
    const tail = decipher.final() // throws when authentication fails
    return Result.succeed(tail.length === 0 ? head.toString("utf8") : Buffer.concat([head, tail]).toString("utf8"))
  } catch {
    head.fill(0) // unauthenticated plaintext: wipe it, never return it
    return failure("Undecryptable")
  }
}

const locate = (
  ring: KeyRing,
  ciphertext: string,
  context: string
): Result.Result<readonly [Key, Envelope.Envelope], CipherError> => {
  if (typeof ciphertext !== "string" || typeof context !== "string" || !isWellFormed(context)) return failure("Malformed")
  const envelope = Envelope.parse(ciphertext)
  if (Option.isNone(envelope)) return failure("Malformed")
  const key = ring.get(envelope.value.keyId)
  if (key === undefined) return failure("UnknownKey")
  return Result.succeed([key, envelope.value] as const)
}

/** Decrypts with whichever key of the ring the ciphertext names. */
export const open = (ring: KeyRing, ciphertext: string, context: string): Result.Result<string, CipherError> => {
  const located = locate(ring, ciphertext, context)
  return Result.isFailure(located)
    ? Result.fail(located.failure)
    : openEnvelope(located.success[0], located.success[1], context)
}

/**
 * Decrypts and encrypts again under the primary key. A ciphertext already under the primary is
 * authenticated and returned unchanged (the same string), so callers can skip the write.
 */
export const reseal = (ring: KeyRing, ciphertext: string, context: string): Result.Result<string, CipherError> => {
  const located = locate(ring, ciphertext, context)
  if (Result.isFailure(located)) return Result.fail(located.failure)
  const [key, envelope] = located.success
  const plaintext = openEnvelope(key, envelope, context)
  if (Result.isFailure(plaintext)) return plaintext
  return key === ring.primary ? Result.succeed(ciphertext) : seal(ring.primary, plaintext.success, context)
}

/** Whether `reseal` would produce a new ciphertext (a header check, no cryptography). */
export const needsReseal = (ring: KeyRing, ciphertext: string): boolean => {
  const keyId = Envelope.keyIdOf(ciphertext)
  return Option.isNone(keyId) || keyId.value !== ring.primary.id
}

/** Encrypts `JSON.stringify(value)`; values JSON cannot represent fail with `Malformed`. */
export const sealJson = (key: Key, value: unknown, context: string): Result.Result<string, CipherError> => {
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch {
    return failure("Malformed") // cycles, BigInt, a throwing toJSON: the thrown message may quote the value
  }
  return json === undefined ? failure("Malformed") : seal(key, json, context)
}

/** Decrypts and parses JSON; a value that authenticates but is not JSON fails with `Malformed`. */
export const openJson = (ring: KeyRing, ciphertext: string, context: string): Result.Result<unknown, CipherError> => {
  const text = open(ring, ciphertext, context)
  if (Result.isFailure(text)) return text
  try {
    return Result.succeed(JSON.parse(text.success) as unknown)
  } catch {
    return failure("Malformed") // SyntaxError messages quote the plaintext
  }
}
