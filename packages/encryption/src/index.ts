/**
 * clerk-sync encryption: AES-256-GCM field encryption with key rings and context binding, for
 * server-side code. Implements core's `Cipher` port (`Encryption.layerConfig`) and offers a plain
 * surface (`createEncryption`) for code without Effect.
 *
 * @since 0.1.0
 */
export * as Encryption from "./Encryption.ts"
export * as Envelope from "./Envelope.ts"
export * as FieldEncryption from "./FieldEncryption.ts"
export * as Key from "./Key.ts"
export * as KeyRing from "./KeyRing.ts"

/** See {@link FieldEncryption.createEncryption}. @category constructors */
export { createEncryption } from "./FieldEncryption.ts"

/** See {@link Key.generate}. @category constructors */
export { generate as generateKey } from "./Key.ts"
