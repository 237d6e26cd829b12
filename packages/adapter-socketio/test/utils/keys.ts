/**
 * A real RSA key pair standing in for a Clerk instance's, and tokens signed with it the way Clerk
 * signs session tokens (RS256, `sub`, `sid`, `azp`, `iss`, `exp`, `nbf`, `iat`). Verification in the
 * tests is the real one; only the issuer is ours.
 */
import * as jose from "jose"

export interface TestIssuer {
  readonly publicPem: string
  readonly jwk: jose.JWK
  readonly sign: (claims: {
    readonly sub?: string
    readonly azp?: string
    readonly iss?: string
    readonly sid?: string
    /** Seconds from now (negative: already expired). Default 60. */
    readonly expiresIn?: number
    /** Seconds from now the token becomes valid (default -5). */
    readonly notBefore?: number
  }) => Promise<string>
}

export const makeIssuer = async (kid = "ins_test_key"): Promise<TestIssuer> => {
  const { publicKey, privateKey } = await jose.generateKeyPair("RS256", { extractable: true })
  const publicPem = await jose.exportSPKI(publicKey)
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }
  return {
    publicPem,
    jwk,
    sign: async (claims) => {
      const now = Math.floor(Date.now() / 1000)
      const jwt = new jose.SignJWT({ sid: claims.sid ?? "sess_test", ...(claims.azp ? { azp: claims.azp } : {}) })
        .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
        .setIssuedAt(now)
        .setNotBefore(now + (claims.notBefore ?? -5))
        .setExpirationTime(now + (claims.expiresIn ?? 60))
        .setIssuer(claims.iss ?? "https://clerk.test.example")
      if (claims.sub !== undefined) jwt.setSubject(claims.sub)
      return jwt.sign(privateKey)
    }
  }
}
