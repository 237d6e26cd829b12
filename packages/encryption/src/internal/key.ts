/**
 * The derived-key object and the only way to reach its material.
 *
 * The AES key lives in a `#private` field as a `KeyObject` (whose own inspection shows no bytes);
 * `materialOf` is the single door to it, and it is not exported from the package.
 *
 * @internal
 */
import type { KeyObject } from "node:crypto"

const inspect = Symbol.for("nodejs.util.inspect.custom")

/** Reads a key's material. Only `internal/aead.ts` may call it. @internal */
export let materialOf: (key: Key) => KeyObject

/** A derived AES-256-GCM key and its public id. @internal */
export class Key {
  readonly _tag = "EncryptionKey" as const
  readonly id: string
  readonly #material: KeyObject

  static {
    materialOf = (key) => key.#material
  }

  constructor(id: string, material: KeyObject) {
    this.id = id
    this.#material = material
  }

  toJSON(): { readonly _tag: "EncryptionKey"; readonly id: string } {
    return { _tag: this._tag, id: this.id }
  }

  toString(): string {
    return `EncryptionKey(${this.id})`
  }

  [inspect](): string {
    return this.toString()
  }
}
