/**
 * Who is connecting: verification of Clerk session tokens (networkless, with Clerk's PEM public
 * key, and/or through a JWKS URL), and of admin credentials for back-office dashboards.
 *
 * A Clerk session token is an RS256 JWT whose `sub` is the Clerk user id. It is accepted when its
 * signature verifies, it is within `nbf`..`exp` (with a small clock tolerance), its issuer matches
 * when one is configured, and its `azp` (the origin that asked for it) is in the allow-list when one
 * is configured — the checks Clerk recommends.
 *
 * An admin is either the raw admin token (compared in constant time), or a short-lived admin session
 * token made with {@link createAdminSessionToken} (what a dashboard page is given, so the admin token
 * itself never reaches a browser).
 *
 * @example
 * import { Auth } from "@clerk-sync/adapter-socketio"
 * const verify = Auth.makeVerifier({ jwtKey: process.env.CLERK_JWT_KEY, authorizedParties: ["https://app.example.com"] })
 * const identity = await verify(token) // { kind: "user", userId: "user_2abc…", sessionId: "sess_…", expiresAt: 1767225660000 }
 *
 * @since 0.1.0
 */
import { createHash, timingSafeEqual } from "node:crypto"
import * as jose from "jose"

/** A verified identity. @category models */
export type Identity =
  | {
    readonly kind: "user"
    /** The Clerk user id (`sub`). */
    readonly userId: string
    /** The Clerk session id (`sid`), when the token has one. */
    readonly sessionId: string | null
    /** When the token expires (ms), when it says. */
    readonly expiresAt: number | null
  }
  | { readonly kind: "admin"; readonly expiresAt: number | null }

/**
 * Why a connection (`connect_error` `data.code`) or a token refresh (the refresh's answer) was
 * refused. `identity_mismatch` is for refreshes only: the new token is someone else's.
 *
 * @category models
 */
export type AuthErrorCode =
  | "missing_token"
  | "malformed_token"
  | "expired_token"
  | "token_not_yet_valid"
  | "invalid_signature"
  | "invalid_token"
  | "unauthorized_party"
  | "user_deleted"
  | "auth_unavailable"
  | "identity_mismatch"

/** @category errors */
export class AuthError extends Error {
  override readonly name = "AuthError"
  readonly _tag = "AuthError"
  constructor(readonly code: AuthErrorCode, message: string) {
    super(message)
  }
}

/** @category models */
export interface VerifierOptions {
  /**
   * Clerk's JWT public key, PEM (`CLERK_JWT_KEY`; Dashboard → API keys → JWT public key). Verifies
   * without any network call. Literal `\n` sequences (as env files often hold them) are accepted.
   */
  readonly jwtKey?: string | undefined
  /** A JWKS URL (`https://<your-frontend-api>/.well-known/jwks.json`), used when no key is given or the key does not match. */
  readonly jwksUrl?: string | undefined
  /** Allowed `azp` values (your app's origins). Empty: not checked. */
  readonly authorizedParties?: ReadonlyArray<string> | undefined
  /** Expected `iss` (your Clerk Frontend API URL). Absent: not checked. */
  readonly issuer?: string | undefined
  /** The admin token (`ADMIN_TOKEN`): grants the `admin` audience. Absent: no admin access. */
  readonly adminToken?: string | undefined
  /**
   * Clock tolerance in seconds for `exp`/`nbf` (default 5). A connection is closed this long after
   * its token's `exp` too, so a token is good for exactly as long as it would be accepted.
   */
  readonly clockToleranceSeconds?: number | undefined
  /** The current time, for tests (default: the system clock). */
  readonly now?: (() => number) | undefined
}

/** The default clock tolerance for `exp`/`nbf`, in seconds. @category constants */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5

/**
 * Whether a new token speaks for the same identity as the one a connection was opened with (same
 * user, or admin for admin): what a refresh may change is only how long it lasts.
 *
 * @category predicates
 */
export const sameIdentity = (a: Identity, b: Identity): boolean =>
  a.kind === "admin" ? b.kind === "admin" : b.kind === "user" && a.userId === b.userId

/** Verifies a token and says who it is. Rejects with an {@link AuthError}. @category models */
export type Verifier = (token: string | null | undefined) => Promise<Identity>

const sha256 = (value: string) => createHash("sha256").update(value, "utf8").digest()

/** Compares two secrets in constant time (whatever their lengths). @category utils */
export const secretEquals = (a: string, b: string): boolean => timingSafeEqual(sha256(a), sha256(b))

const ADMIN_AUDIENCE = "clerk-sync:admin"

const adminSessionKey = (adminToken: string): Uint8Array =>
  new Uint8Array(createHash("sha256").update("clerk-sync admin session v1\u0000", "utf8").update(adminToken, "utf8").digest())

/**
 * A short-lived token granting the `admin` audience, for a dashboard page: an HS256 JWT signed with a
 * key derived from the admin token (the admin token itself is never sent to the browser).
 *
 * @example
 * const token = await createAdminSessionToken({ adminToken: process.env.ADMIN_TOKEN!, ttlSeconds: 3600 })
 *
 * @category constructors
 */
export const createAdminSessionToken = async (options: {
  readonly adminToken: string
  readonly ttlSeconds?: number
  readonly now?: () => number
}): Promise<string> => {
  const now = Math.floor((options.now ?? Date.now)() / 1000)
  return await new jose.SignJWT({})
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject("admin")
    .setAudience(ADMIN_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.ttlSeconds ?? 3600))
    .sign(adminSessionKey(options.adminToken))
}

const normalizePem = (pem: string): string => pem.replace(/\\n/g, "\n").trim()

const fromJoseError = (error: unknown): AuthError => {
  if (error instanceof AuthError) return error
  if (error instanceof jose.errors.JWTExpired) return new AuthError("expired_token", "the session token has expired")
  if (error instanceof jose.errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") return new AuthError("token_not_yet_valid", "the session token is not valid yet")
    return new AuthError("invalid_token", `the session token's "${error.claim}" claim is not accepted`)
  }
  if (error instanceof jose.errors.JWSSignatureVerificationFailed) {
    return new AuthError("invalid_signature", "the session token's signature does not verify (a token from another instance?)")
  }
  if (error instanceof jose.errors.JWKSNoMatchingKey) return new AuthError("invalid_signature", "no key of the JWKS matches the session token")
  if (error instanceof jose.errors.JWKSTimeout || error instanceof jose.errors.JWKSInvalid) {
    return new AuthError("auth_unavailable", "the JWKS could not be fetched")
  }
  if (error instanceof jose.errors.JOSEAlgNotAllowed) return new AuthError("invalid_token", "the session token's algorithm is not accepted")
  if (error instanceof jose.errors.JWSInvalid || error instanceof jose.errors.JWTInvalid) {
    return new AuthError("malformed_token", "the session token is malformed")
  }
  return new AuthError("invalid_token", "the session token is not accepted")
}

/**
 * Makes a verifier. At least one of `jwtKey`, `jwksUrl` or `adminToken` is required.
 *
 * @category constructors
 */
export const makeVerifier = (options: VerifierOptions): Verifier => {
  if (!options.jwtKey && !options.jwksUrl && !options.adminToken) {
    throw new Error("clerk-sync socket.io auth: configure CLERK_JWT_KEY (jwtKey), a JWKS URL (jwksUrl), or at least an admin token")
  }
  const now = options.now ?? Date.now
  const clockTolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS
  const parties = options.authorizedParties ?? []
  const pemKey = options.jwtKey ? jose.importSPKI(normalizePem(options.jwtKey), "RS256") : undefined
  // Fail fast (at the first verification) on a key that does not parse, with a clear message.
  pemKey?.catch(() => undefined)
  const jwks = options.jwksUrl ? jose.createRemoteJWKSet(new URL(options.jwksUrl)) : undefined
  const adminKey = options.adminToken ? adminSessionKey(options.adminToken) : undefined

  const claims = (): jose.JWTVerifyOptions => ({
    algorithms: ["RS256"],
    clockTolerance,
    currentDate: new Date(now()),
    ...(options.issuer ? { issuer: options.issuer } : {})
  })

  const verifyClerk = async (token: string): Promise<jose.JWTPayload> => {
    if (pemKey) {
      let key: jose.CryptoKey
      try {
        key = await pemKey
      } catch {
        throw new AuthError("auth_unavailable", "CLERK_JWT_KEY is not a valid PEM public key")
      }
      try {
        return (await jose.jwtVerify(token, key, claims())).payload
      } catch (error) {
        // A rotated key: the JWKS may know the new one.
        if (!(jwks && error instanceof jose.errors.JWSSignatureVerificationFailed)) throw error
      }
    }
    if (jwks) return (await jose.jwtVerify(token, jwks, claims())).payload
    throw new AuthError("invalid_token", "user tokens are not accepted (no CLERK_JWT_KEY or JWKS URL configured)")
  }

  return async (token) => {
    if (typeof token !== "string" || token.length === 0) {
      throw new AuthError("missing_token", "no session token: pass your Clerk session token as auth.token")
    }
    if (options.adminToken && secretEquals(token, options.adminToken)) return { kind: "admin", expiresAt: null }
    let header: jose.ProtectedHeaderParameters
    try {
      header = jose.decodeProtectedHeader(token)
    } catch {
      throw new AuthError("malformed_token", "the session token is malformed (not a JWT)")
    }
    try {
      if (header.alg === "HS256") {
        if (!adminKey) throw new AuthError("invalid_token", "admin session tokens are not accepted (no admin token configured)")
        const { payload } = await jose.jwtVerify(token, adminKey, {
          algorithms: ["HS256"],
          audience: ADMIN_AUDIENCE,
          subject: "admin",
          clockTolerance,
          currentDate: new Date(now())
        })
        return { kind: "admin", expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : null }
      }
      const payload = await verifyClerk(token)
      if (typeof payload.sub !== "string" || payload.sub.length === 0) {
        throw new AuthError("invalid_token", "the session token has no subject (sub)")
      }
      const azp = payload["azp"]
      if (parties.length > 0 && typeof azp === "string" && !parties.includes(azp)) {
        throw new AuthError("unauthorized_party", `the session token was issued for ${azp}, which is not an authorized party`)
      }
      const sid = payload["sid"]
      return {
        kind: "user",
        userId: payload.sub,
        sessionId: typeof sid === "string" ? sid : null,
        expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : null
      }
    } catch (error) {
      throw fromJoseError(error)
    }
  }
}
