/**
 * Keys derived once per test file (PBKDF2 at 600,000 iterations is deliberately slow), shared
 * through a layer so that every ring in a file is built from them without new derivations.
 */
import { Context, Effect, Layer } from "effect"
import { hkdfSync, pbkdf2Sync } from "node:crypto"
import { inspect } from "node:util"
import * as Key from "../../src/Key.ts"
import * as KeyRing from "../../src/KeyRing.ts"

export interface TestKeysShape {
  /** The secrets (random per run). */
  readonly secrets: { readonly a: string; readonly b: string; readonly c: string }
  readonly a: Key.Key
  readonly b: Key.Key
  readonly c: Key.Key
}

export class TestKeys extends Context.Service<TestKeys, TestKeysShape>()("test/TestKeys") {
  static readonly layer = Layer.effect(
    TestKeys,
    Effect.gen(function*() {
      const secrets = { a: Key.generate(), b: Key.generate(), c: Key.generate() }
      const [a, b, c] = yield* Effect.all([Key.derive(secrets.a), Key.derive(secrets.b), Key.derive(secrets.c)], {
        concurrency: "unbounded"
      })
      return TestKeys.of({ secrets, a: a!, b: b!, c: c! })
    }).pipe(Effect.orDie)
  )
}

/** A ring from derived keys (no derivation). */
export const ring = (primary: Key.Key, ...previous: Array<Key.Key>): Effect.Effect<KeyRing.KeyRing> =>
  Effect.orDie(KeyRing.make(primary, previous))

/**
 * The v1 derivation written out independently of the implementation, from the spec in `Key.ts`:
 * PBKDF2-HMAC-SHA256(secret, "clerk-sync/encryption/v1/pbkdf2", 600000) then HKDF-SHA256 with
 * empty salt and the labels below.
 */
export const referenceDerive = (secret: string): { readonly aes: Buffer; readonly id: string } => {
  const master = pbkdf2Sync(secret, "clerk-sync/encryption/v1/pbkdf2", 600_000, 32, "sha256")
  const aes = Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), "clerk-sync/encryption/v1/aes-256-gcm", 32))
  const id = Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), "clerk-sync/encryption/v1/key-id", 6))
    .toString("base64url")
  return { aes, id }
}

/** Every rendering of a value that could end up in a log or a response. */
export const renderings = (value: unknown): ReadonlyArray<string> => {
  const out: Array<string> = []
  out.push(String(value))
  out.push(JSON.stringify(value) ?? "")
  out.push(inspect(value, { showHidden: true, depth: Infinity, getters: true }))
  out.push(inspect(value))
  out.push(inspect(value, { customInspect: false, showHidden: true, depth: Infinity }))
  if (value instanceof Error) {
    out.push(value.message, value.stack ?? "", value.toString())
  }
  return out
}

/** Encodings under which a byte string could leak. */
export const encodings = (bytes: Buffer): ReadonlyArray<string> => [
  bytes.toString("hex"),
  bytes.toString("base64"),
  bytes.toString("base64url")
]
