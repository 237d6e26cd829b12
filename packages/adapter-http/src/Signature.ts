/**
 * Svix signatures: the signing secrets, verification of a delivery, and signing (for tests and the
 * CLI that sends signed webhooks to a local server; there is no verification bypass).
 *
 * The HMAC is computed by the `svix` package's own `Webhook` class. Verification compares it with
 * every `v1` signature in the `svix-signature` header (Svix sends several while a secret is being
 * rotated) for every configured secret, in constant time, and checks the `svix-timestamp` against
 * the clock with Svix's five-minute tolerance. The clock is passed in, so the Effect handler reads
 * it from `Clock` and tests control it; the result agrees with `svix`'s `Webhook.verify` (a test
 * checks both on random inputs).
 *
 * @example
 * import { Signature } from "@clerk-sync/adapter-http"
 * const headers = Signature.signWebhook({ secret: "whsec_plJ3nmyCDGBKInavdOK15jsl", svixId: "msg_1", body: "{}" })
 * const verifier = Signature.makeVerifier("whsec_plJ3nmyCDGBKInavdOK15jsl")
 * Signature.verify(verifier, { id: "msg_1", timestamp: headers["svix-timestamp"], signature: headers["svix-signature"] }, "{}", Date.now()) // "verified"
 *
 * @since 0.1.0
 */
import { Data, Redacted } from "effect"
import { Webhook } from "svix"
import { decodeUtf8 } from "./internal/utf8.ts"

/** Svix's timestamp tolerance, both ways. @category constants */
export const toleranceSeconds = 5 * 60

/**
 * One or more signing secrets (`whsec_…`). A string may hold several separated by commas or
 * whitespace (what an environment variable can carry during a rotation).
 *
 * @category models
 */
export type SecretInput = string | Redacted.Redacted<string> | ReadonlyArray<string | Redacted.Redacted<string>>

/** A signing secret is missing or not a Svix secret. Never contains the secret. @category errors */
export class InvalidSecret extends Data.TaggedError("InvalidSecret")<{ readonly reason: string }> {
  override get message(): string {
    return `invalid webhook signing secret: ${this.reason}`
  }
}

/** The svix headers of a delivery (a plain record: spread it into `fetch` headers or `new Headers`). @category models */
export type SvixHeaders = {
  readonly "svix-id": string
  readonly "svix-timestamp": string
  readonly "svix-signature": string
}

/** Splits secret inputs into single secrets. @category parsing */
export const splitSecrets = (input: SecretInput): ReadonlyArray<string> => {
  if ((input as unknown) === undefined || (input as unknown) === null) return [] // an unset variable, from JavaScript
  const items = typeof input === "string" || Redacted.isRedacted(input) ? [input] : input
  return items.flatMap((item) => (typeof item === "string" ? item : Redacted.value(item)).split(/[\s,]+/).filter((s) => s !== ""))
}

const webhooksOf = (input: SecretInput): ReadonlyArray<Webhook> => {
  const secrets = splitSecrets(input)
  if (secrets.length === 0) throw new InvalidSecret({ reason: "no secret configured (set CLERK_WEBHOOK_SIGNING_SECRET)" })
  return secrets.map((secret, index) => {
    try {
      return new Webhook(secret)
    } catch {
      throw new InvalidSecret({ reason: `secret #${index + 1} is not "whsec_" followed by base64` })
    }
  })
}

/** Verifies deliveries against one or more secrets. Opaque; build it with {@link makeVerifier}. @category models */
export interface Verifier {
  readonly webhooks: ReadonlyArray<Webhook>
}

/**
 * Makes a verifier. Throws {@link InvalidSecret} when there is no secret or one is malformed, so a
 * misconfigured endpoint fails at startup.
 *
 * @category constructors
 */
export const makeVerifier = (secret: SecretInput): Verifier => ({ webhooks: webhooksOf(secret) })

/** @category models */
export type Verification = "verified" | "timestamp_out_of_tolerance" | "invalid_signature"

const constantTimeEqual = (a: string, b: string): boolean => {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}

/**
 * Verifies a delivery. `timestamp` must be the header's decimal seconds; `now` is in milliseconds.
 *
 * @category verification
 */
export const verify = (
  verifier: Verifier,
  headers: { readonly id: string; readonly timestamp: string; readonly signature: string },
  body: string,
  now: number
): Verification => {
  const timestamp = Number(headers.timestamp)
  const nowSeconds = Math.floor(now / 1000)
  if (!Number.isSafeInteger(timestamp) || nowSeconds - timestamp > toleranceSeconds || timestamp > nowSeconds + toleranceSeconds) {
    return "timestamp_out_of_tolerance"
  }
  const passed: Array<string> = []
  for (const versioned of headers.signature.split(" ")) {
    const [version, signature] = versioned.split(",")
    if (version === "v1" && signature !== undefined) passed.push(signature)
  }
  const at = new Date(timestamp * 1000)
  let matched = false
  for (const webhook of verifier.webhooks) {
    const expected = webhook.sign(headers.id, at, body).slice("v1,".length)
    for (const signature of passed) if (constantTimeEqual(signature, expected)) matched = true
  }
  return matched ? "verified" : "invalid_signature"
}

/** @category models */
export interface SignInput {
  /** The secret(s) to sign with; several give a header with several signatures, as during a rotation. */
  readonly secret: SecretInput
  readonly svixId: string
  /** When the delivery is signed: a `Date`, or Unix seconds (what the `svix-timestamp` header holds). Default: now. */
  readonly timestamp?: Date | number
  /** The exact body to send. Bytes must be UTF-8. */
  readonly body: string | Uint8Array
}

/**
 * Signs a delivery the way Svix does and returns the three headers to send with the body.
 *
 * @example
 * import { signWebhook } from "@clerk-sync/adapter-http"
 * const body = JSON.stringify({ type: "user.created", data: { id: "user_1" } })
 * const headers = signWebhook({ secret: process.env.CLERK_WEBHOOK_SIGNING_SECRET!, svixId: "msg_1", body })
 * await fetch("http://localhost:3000/api/webhooks/clerk", { method: "POST", headers, body })
 *
 * @category signing
 */
export const signWebhook = (input: SignInput): SvixHeaders => {
  const body = typeof input.body === "string" ? input.body : decodeUtf8(input.body)
  if (body === undefined) throw new TypeError("signWebhook: body is not valid UTF-8")
  const at = input.timestamp === undefined
    ? new Date()
    : typeof input.timestamp === "number"
    ? new Date(input.timestamp * 1000)
    : input.timestamp
  const signature = webhooksOf(input.secret).map((webhook) => webhook.sign(input.svixId, at, body)).join(" ")
  return { "svix-id": input.svixId, "svix-timestamp": String(Math.floor(at.getTime() / 1000)), "svix-signature": signature }
}
