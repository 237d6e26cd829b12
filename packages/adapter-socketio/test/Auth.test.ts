import { assert, describe, it } from "@effect/vitest"
import * as jose from "jose"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { AuthError, createAdminSessionToken, makeVerifier, secretEquals } from "../src/Auth.ts"
import { makeIssuer } from "./utils/keys.ts"

const refusal = async (promise: Promise<unknown>): Promise<string> => {
  try {
    await promise
  } catch (error) {
    assert.instanceOf(error, AuthError)
    return (error as AuthError).code
  }
  return assert.fail("expected a refusal")
}

const serveJwks = async (keys: ReadonlyArray<jose.JWK>) => {
  let hits = 0
  const server = createServer((_, res) => {
    hits++
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

describe("Auth", () => {
  it("verifies a Clerk session token with the PEM key, without any network call", async () => {
    const clerk = await makeIssuer()
    const verify = makeVerifier({ jwtKey: clerk.publicPem })
    const identity = await verify(await clerk.sign({ sub: "user_123", sid: "sess_9" }))
    assert.strictEqual(identity.kind, "user")
    if (identity.kind === "user") {
      assert.strictEqual(identity.userId, "user_123")
      assert.strictEqual(identity.sessionId, "sess_9")
      assert.isAbove(identity.expiresAt!, Date.now())
    }
  })

  it("accepts a PEM given with literal \\n escapes, as env files hold it", async () => {
    const clerk = await makeIssuer()
    const verify = makeVerifier({ jwtKey: clerk.publicPem.replace(/\n/g, "\\n") })
    assert.strictEqual((await verify(await clerk.sign({ sub: "user_1" }))).kind, "user")
  })

  it("refuses expired, not-yet-valid, foreign, subject-less, malformed and missing tokens", async () => {
    const clerk = await makeIssuer()
    const other = await makeIssuer("other")
    const verify = makeVerifier({ jwtKey: clerk.publicPem })
    assert.strictEqual(await refusal(verify(await clerk.sign({ sub: "u", expiresIn: -30 }))), "expired_token")
    assert.strictEqual(await refusal(verify(await clerk.sign({ sub: "u", notBefore: 60, expiresIn: 120 }))), "token_not_yet_valid")
    assert.strictEqual(await refusal(verify(await other.sign({ sub: "u" }))), "invalid_signature")
    assert.strictEqual(await refusal(verify(await clerk.sign({}))), "invalid_token")
    assert.strictEqual(await refusal(verify("a.b.c")), "malformed_token")
    assert.strictEqual(await refusal(verify("")), "missing_token")
    assert.strictEqual(await refusal(verify(null)), "missing_token")
  })

  it("tolerates a few seconds of clock skew", async () => {
    const clerk = await makeIssuer()
    const token = await clerk.sign({ sub: "u", expiresIn: 1 })
    const later = makeVerifier({ jwtKey: clerk.publicPem, now: () => Date.now() + 4_000 })
    assert.strictEqual((await later(token)).kind, "user")
    const muchLater = makeVerifier({ jwtKey: clerk.publicPem, now: () => Date.now() + 30_000 })
    assert.strictEqual(await refusal(muchLater(token)), "expired_token")
  })

  it("checks azp against the authorized parties, and the issuer when configured", async () => {
    const clerk = await makeIssuer()
    const verify = makeVerifier({ jwtKey: clerk.publicPem, authorizedParties: ["https://app.example.com"], issuer: "https://clerk.test.example" })
    assert.strictEqual((await verify(await clerk.sign({ sub: "u", azp: "https://app.example.com" }))).kind, "user")
    assert.strictEqual(await refusal(verify(await clerk.sign({ sub: "u", azp: "https://evil.example" }))), "unauthorized_party")
    assert.strictEqual(await refusal(verify(await clerk.sign({ sub: "u", iss: "https://other.clerk" }))), "invalid_token")
  })

  it("verifies through a JWKS URL, and falls back to it when the PEM key was rotated", async () => {
    const current = await makeIssuer("key_new")
    const old = await makeIssuer("key_old")
    const jwks = await serveJwks([current.jwk])
    try {
      const viaJwks = makeVerifier({ jwksUrl: jwks.url })
      assert.strictEqual((await viaJwks(await current.sign({ sub: "user_j" }))).kind, "user")
      assert.strictEqual(await refusal(viaJwks(await old.sign({ sub: "user_j" }))), "invalid_signature")
      const rotated = makeVerifier({ jwtKey: old.publicPem, jwksUrl: jwks.url })
      assert.strictEqual((await rotated(await old.sign({ sub: "u" }))).kind, "user", "the PEM key still works")
      assert.strictEqual((await rotated(await current.sign({ sub: "u" }))).kind, "user", "the JWKS knows the new key")
      assert.isAtLeast(jwks.hits(), 1)
    } finally {
      await jwks.close()
    }
  })

  it("grants admin to the admin token (constant-time compare) and to admin session tokens", async () => {
    const clerk = await makeIssuer()
    const verify = makeVerifier({ jwtKey: clerk.publicPem, adminToken: "s3cret-admin-token" })
    assert.deepStrictEqual(await verify("s3cret-admin-token"), { kind: "admin", expiresAt: null })
    const session = await createAdminSessionToken({ adminToken: "s3cret-admin-token", ttlSeconds: 60 })
    const identity = await verify(session)
    assert.strictEqual(identity.kind, "admin")
    assert.isFalse(session.includes("s3cret"), "the admin token is not inside the session token")
    const expired = await createAdminSessionToken({ adminToken: "s3cret-admin-token", ttlSeconds: 60, now: () => Date.now() - 3_600_000 })
    assert.strictEqual(await refusal(verify(expired)), "expired_token")
    const forged = await createAdminSessionToken({ adminToken: "another-token", ttlSeconds: 60 })
    assert.strictEqual(await refusal(verify(forged)), "invalid_signature")
    assert.isTrue(secretEquals("a", "a"))
    assert.isFalse(secretEquals("a", "ab"))
  })

  it("resists algorithm confusion: no HS256 signed with the public key, no alg none", async () => {
    const clerk = await makeIssuer()
    const verify = makeVerifier({ jwtKey: clerk.publicPem, adminToken: "admin-token" })
    const confused = await new jose.SignJWT({ sub: "admin" })
      .setProtectedHeader({ alg: "HS256" })
      .setAudience("clerk-sync:admin")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(clerk.publicPem))
    assert.strictEqual(await refusal(verify(confused)), "invalid_signature")
    const none = new jose.UnsecuredJWT({ sub: "user_x" }).setExpirationTime("1h").encode()
    assert.include(["invalid_token", "malformed_token"], await refusal(verify(none)))
    const userOnly = makeVerifier({ jwtKey: clerk.publicPem })
    const session = await createAdminSessionToken({ adminToken: "admin-token" })
    assert.strictEqual(await refusal(userOnly(session)), "invalid_token", "no admin without an admin token configured")
  })

  it("refuses to start without any way to verify", () => {
    assert.throws(() => makeVerifier({}), /CLERK_JWT_KEY/)
  })
})
