/**
 * The encryption service: AES-256-GCM field encryption with a key ring and context binding, and
 * the layers that provide it, as core's `Cipher` port too.
 *
 * Every value gets a fresh random 96-bit IV; the result is a self-describing string
 * (`v1.<keyId>.<iv>.<ciphertext+tag>`, see {@link Envelope}) that only decrypts under the
 * `context` it was written with, e.g. `"<organizationId>:seller_accounts.credentials"`.
 * Failures are `CipherError`s from `@clerk-sync/core` whose reason is all they say:
 * `Undecryptable` (wrong key, tampered or wrong context, indistinguishable on purpose),
 * `Malformed` (not a ciphertext, or a value JSON or UTF-8 cannot carry), `UnknownKey` (a key id
 * the ring does not hold).
 *
 * Keys are derived once, when the layer is built (PBKDF2, ≈0.1–0.5 s, see {@link Key}).
 *
 * @example
 * import { Encryption } from "@clerk-sync/encryption"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const encryption = yield* Encryption.Encryption
 *   const stored = yield* encryption.encryptJson({ apiKey: "sk_live_1" }, "org_1:seller_accounts.credentials")
 *   return yield* encryption.decryptJson(stored, "org_1:seller_accounts.credentials")
 * })
 * Effect.runPromise(program.pipe(Effect.provide(Encryption.layerConfig))) // reads ENCRYPTION_KEY
 *
 * @since 0.1.0
 */
import { Cipher } from "@clerk-sync/core"
import { Config, Context, Effect, Layer, Option, Redacted, type Result } from "effect"
import * as Aead from "./internal/aead.ts"
import type * as Key from "./Key.ts"
import * as KeyRing from "./KeyRing.ts"

type CipherError = Cipher.CipherError

/** @category models */
export interface EncryptionShape {
  /** Encrypts a string under the primary key, bound to `context`. */
  readonly encrypt: (plaintext: string, context: string) => Effect.Effect<string, CipherError>
  /** Decrypts a ciphertext written under `context` with any key of the ring. */
  readonly decrypt: (ciphertext: string, context: string) => Effect.Effect<string, CipherError>
  /** Encrypts `JSON.stringify(value)`; `Malformed` if JSON cannot represent it. */
  readonly encryptJson: (value: unknown, context: string) => Effect.Effect<string, CipherError>
  /** Decrypts and `JSON.parse`s; decode the result with a `Schema`. */
  readonly decryptJson: (ciphertext: string, context: string) => Effect.Effect<unknown, CipherError>
  /**
   * Re-encrypts under the primary key. A ciphertext already under the primary is authenticated
   * and returned unchanged (`result === ciphertext`): skip the write then.
   */
  readonly reencrypt: (ciphertext: string, context: string) => Effect.Effect<string, CipherError>
  /**
   * Whether `reencrypt` would produce a new ciphertext: a header check, no cryptography. `true`
   * for anything not recognisably under the primary key, including malformed input.
   */
  readonly needsReencrypt: (ciphertext: string) => boolean
  /** The ring (key ids only are visible). */
  readonly keyRing: KeyRing.KeyRing
}

/** @category services */
export class Encryption extends Context.Service<Encryption, EncryptionShape>()("@clerk-sync/encryption/Encryption") {}

const lift = <A>(run: () => Result.Result<A, CipherError>): Effect.Effect<A, CipherError> =>
  // `suspend`: each run of the effect encrypts anew, with a fresh IV.
  Effect.suspend(() => Effect.fromResult(run()))

/**
 * The service over an already derived ring (cheap; no key derivation).
 *
 * @category constructors
 */
export const fromKeyRing = (ring: KeyRing.KeyRing): EncryptionShape => {
  const shape: EncryptionShape = {
    encrypt: (plaintext, context) => lift(() => Aead.seal(ring.primary, plaintext, context)),
    decrypt: (ciphertext, context) => lift(() => Aead.open(ring, ciphertext, context)),
    encryptJson: (value, context) => lift(() => Aead.sealJson(ring.primary, value, context)),
    decryptJson: (ciphertext, context) => lift(() => Aead.openJson(ring, ciphertext, context)),
    reencrypt: (ciphertext, context) => lift(() => Aead.reseal(ring, ciphertext, context)),
    needsReencrypt: (ciphertext) => Aead.needsReseal(ring, ciphertext),
    keyRing: ring
  }
  return Object.freeze(shape)
}

/**
 * Derives the ring from secrets (once) and builds the service.
 *
 * @category constructors
 */
export const make = (options: KeyRing.Options): Effect.Effect<EncryptionShape, Key.EncryptionKeyError> =>
  Effect.map(KeyRing.derive(options), fromKeyRing)

/** The `Cipher` port of core, backed by the service. @category conversions */
export const toCipher = (encryption: EncryptionShape): Cipher.CipherShape =>
  Cipher.Cipher.of({ encrypt: encryption.encrypt, decrypt: encryption.decrypt })

const provideBoth = (shape: EncryptionShape): Context.Context<Encryption | Cipher.Cipher> =>
  Context.make(Encryption, shape).pipe(Context.add(Cipher.Cipher, toCipher(shape)))

/**
 * Provides {@link Encryption} and core's `Cipher` from an already derived ring: no derivation,
 * so tests can share one ring across many layers.
 *
 * @category layers
 */
export const layerKeyRing = (ring: KeyRing.KeyRing): Layer.Layer<Encryption | Cipher.Cipher> =>
  Layer.succeedContext(provideBoth(fromKeyRing(ring)))

/**
 * Provides {@link Encryption} and core's `Cipher` from secrets given in code. Derivation happens
 * once, when the layer is built; a weak secret fails it with an `EncryptionKeyError`.
 *
 * @example
 * import { Cipher } from "@clerk-sync/core"
 * import { Encryption, Key } from "@clerk-sync/encryption"
 * import { Effect } from "effect"
 * const program = Cipher.Cipher.use((cipher) => cipher.encrypt("secret", "org_1:notes"))
 * Effect.runPromise(program.pipe(Effect.provide(Encryption.layer({ key: Key.generate() }))))
 *
 * @category layers
 */
export const layer = (options: KeyRing.Options): Layer.Layer<Encryption | Cipher.Cipher, Key.EncryptionKeyError> =>
  Layer.effectContext(Effect.map(make(options), provideBoth))

/**
 * Reads the secrets from configuration:
 * - `ENCRYPTION_KEY` (required): the primary secret, at least 32 characters;
 * - `ENCRYPTION_KEYS_PREVIOUS` (optional): older secrets, comma-separated, newest first; entries
 *   are trimmed and empty entries ignored (so a secret cannot contain a comma).
 *
 * Both are read as `Redacted`. An unset or weak `ENCRYPTION_KEY` fails the layer with an
 * `EncryptionKeyError` that names the variable, never its value.
 *
 * @category config
 */
export const config: Config.Config<KeyRing.Options> = Config.all({
  key: Config.option(Config.Redacted("ENCRYPTION_KEY")),
  previous: Config.option(Config.Redacted("ENCRYPTION_KEYS_PREVIOUS"))
}).pipe(Config.map(({ key, previous }) => ({
  // Unset (or, for env providers, empty) becomes "", which derivation rejects as `Empty` with a
  // message that names the variable and says what to put there.
  key: Option.getOrElse(key, () => Redacted.make("")),
  previousKeys: Option.match(previous, {
    onNone: () => [],
    onSome: (list) =>
      Redacted.value(list).split(",").map((entry) => entry.trim()).filter((entry) => entry.length > 0).map((entry) =>
        Redacted.make(entry)
      )
  })
})))

/**
 * {@link layer} with the secrets from {@link config} (`ENCRYPTION_KEY`, `ENCRYPTION_KEYS_PREVIOUS`).
 *
 * @category layers
 */
export const layerConfig: Layer.Layer<Encryption | Cipher.Cipher, Config.ConfigError | Key.EncryptionKeyError> =
  Layer.effectContext(
    Effect.flatMap(config, (options) =>
      Effect.map(
        KeyRing.derive(options, { key: "ENCRYPTION_KEY", previousKeys: "ENCRYPTION_KEYS_PREVIOUS" }),
        (ring) => provideBoth(fromKeyRing(ring))
      ))
  )
