/**
 * Key rings: the primary key that new writes use, plus older keys that still decrypt.
 *
 * Rotation: derive a new secret, make it the primary and move the old one to the previous keys;
 * everything written earlier still decrypts, and `reencrypt` (see {@link Encryption}) moves values
 * to the new primary at the team's pace. When no ciphertext carries an old key id any more, drop
 * that key from the ring.
 *
 * A ring holds only {@link Key} objects, whose material is private: `JSON.stringify`, `String`
 * and `util.inspect` of a ring show key ids only.
 *
 * @since 0.1.0
 */
import { Effect, Redacted } from "effect"
import * as Key from "./Key.ts"

const inspect = Symbol.for("nodejs.util.inspect.custom")

/**
 * The secrets a ring is derived from. `previousKeys` are older secrets, newest first; they are
 * used to decrypt only.
 *
 * @category models
 */
export interface Options {
  readonly key: string | Redacted.Redacted<string>
  readonly previousKeys?: ReadonlyArray<string | Redacted.Redacted<string>> | undefined
}

/** A primary key plus older keys, looked up by id. @category models */
export class KeyRing {
  readonly _tag = "KeyRing" as const
  /** The key new ciphertexts are written with. */
  readonly primary: Key.Key
  /** Every key, primary first. */
  readonly keys: ReadonlyArray<Key.Key>
  readonly #byId: ReadonlyMap<string, Key.Key>

  /** Use {@link make} or {@link derive}, which check for id collisions. @internal */
  constructor(primary: Key.Key, keys: ReadonlyArray<Key.Key>, byId: ReadonlyMap<string, Key.Key>) {
    this.primary = primary
    this.keys = keys
    this.#byId = byId
  }

  /** The key with this id, if the ring has it. */
  get(id: string): Key.Key | undefined {
    return this.#byId.get(id)
  }

  /** The ids of every key, primary first. */
  get ids(): ReadonlyArray<string> {
    return this.keys.map((key) => key.id)
  }

  toJSON(): { readonly _tag: "KeyRing"; readonly primary: string; readonly keys: ReadonlyArray<string> } {
    return { _tag: this._tag, primary: this.primary.id, keys: this.ids }
  }

  toString(): string {
    return `KeyRing(primary: ${this.primary.id}, keys: ${this.ids.join(", ")})`
  }

  [inspect](): string {
    return this.toString()
  }
}

/**
 * Builds a ring from keys that are already derived (cheap: no key derivation). The same key given
 * twice is kept once; two different keys with the same id fail with `KeyIdCollision`.
 *
 * @example
 * import { Key, KeyRing } from "@clerk-sync/encryption"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const [current, old] = yield* Effect.all([Key.derive(Key.generate()), Key.derive(Key.generate())])
 *   return yield* KeyRing.make(current, [old])
 * })
 *
 * @category constructors
 */
export const make = (
  primary: Key.Key,
  previous: ReadonlyArray<Key.Key> = [],
  sources: ReadonlyArray<string> = []
): Effect.Effect<KeyRing, Key.EncryptionKeyError> =>
  Effect.suspend(() => {
    const byId = new Map<string, Key.Key>()
    const keys: Array<Key.Key> = []
    const all = [primary, ...previous]
    for (let i = 0; i < all.length; i++) {
      const key = all[i]!
      const existing = byId.get(key.id)
      if (existing === key) continue
      if (existing !== undefined) {
        return Effect.fail(
          new Key.EncryptionKeyError({ reason: "KeyIdCollision", source: sources[i] ?? `previousKeys[${i - 1}]` })
        )
      }
      byId.set(key.id, key)
      keys.push(key)
    }
    return Effect.succeed(new KeyRing(primary, keys, byId))
  })

/**
 * Derives every secret (in parallel, once) and builds the ring. `sources` name the settings in
 * error messages; by default `key` and `previousKeys[i]`.
 *
 * @example
 * import { Key, KeyRing } from "@clerk-sync/encryption"
 * import { Effect } from "effect"
 * const ring = await Effect.runPromise(KeyRing.derive({ key: Key.generate(), previousKeys: [] }))
 * ring.primary.id // safe to log
 *
 * @category constructors
 */
export const derive = (
  options: Options,
  sources: { readonly key: string; readonly previousKeys: string } = { key: "key", previousKeys: "previousKeys" }
): Effect.Effect<KeyRing, Key.EncryptionKeyError> =>
  Effect.suspend(() => {
    const previous = options.previousKeys ?? []
    const secrets = [options.key, ...previous].map((secret) => Redacted.isRedacted(secret) ? Redacted.value(secret) : secret)
    const names = [sources.key, ...previous.map((_, i) => `${sources.previousKeys}[${i}]`)]
    // Check every secret before spending any time on derivation, so the first bad one is reported.
    for (let i = 0; i < secrets.length; i++) {
      const rejected = Key.check(secrets[i]!)
      if (rejected !== undefined) return Effect.fail(new Key.EncryptionKeyError({ reason: rejected, source: names[i]! }))
    }
    // The same secret listed twice is derived once.
    const unique = secrets.flatMap((secret, i) => secrets.indexOf(secret) === i ? [i] : [])
    return Effect.all(unique.map((i) => Key.derive(secrets[i]!, names[i])), { concurrency: "unbounded" }).pipe(
      Effect.flatMap((keys) => make(keys[0]!, keys.slice(1), unique.map((i) => names[i]!)))
    )
  })
