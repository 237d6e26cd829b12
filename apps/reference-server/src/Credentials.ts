/**
 * Organization-scoped encrypted credentials: the seeds' `seller_accounts`, which hold third-party API
 * credentials (e.g. Amazon SP-API refresh tokens) per organization.
 *
 * - An organization admin stores credentials: `POST /api/organizations/:orgId/credentials`.
 * - Members list them, without secrets: `GET /api/organizations/:orgId/credentials`.
 * - An admin checks that stored credentials still decrypt: `POST …/credentials/:id/verify`.
 * - Other organizations see nothing: every query filters by the caller's organization.
 *
 * Callers authenticate with their Clerk session token (`Authorization: Bearer`), verified locally
 * with `CLERK_JWT_KEY` (or `CLERK_JWKS_URL`); who they are in which organization comes from the
 * synced tables through the core's auth helpers. The secret part is encrypted with AES-256-GCM
 * bound to the organization's internal id, so a ciphertext copied into another organization's row
 * does not decrypt; the database holds only ciphertext.
 */
import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { Auth } from "@clerk-sync/adapter-socketio"
import { AuthHelpers, Cipher, SyncStore } from "@clerk-sync/core"
import { Context, Data, Effect, Layer, Option, Schema } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { sql } from "kysely"
import { ServerSettings } from "./Settings.ts"

export interface CredentialSummary {
  readonly id: string
  readonly name: string
  readonly marketplace: string | null
  readonly createdAt: string
}

export interface CredentialsShape {
  /** Verifies a Clerk session token; `None` when no key is configured. */
  readonly verifier: Option.Option<Auth.Verifier>
}

export class CredentialsAuth extends Context.Service<CredentialsAuth, CredentialsShape>()("reference-server/CredentialsAuth") {}

const Body = Schema.Struct({
  name: Schema.String.pipe(Schema.check(Schema.isNonEmpty()), Schema.check(Schema.isMaxLength(200))),
  marketplace: Schema.optionalKey(Schema.NullOr(Schema.String.pipe(Schema.check(Schema.isMaxLength(64))))),
  credentials: Schema.Record(Schema.String, Schema.Unknown)
})
const decodeBody = Schema.decodeUnknownEffect(Schema.fromJsonString(Body))

/** The encryption context: the organization's internal id and the column. */
export const contextOf = (organizationId: string) => `${organizationId}:seller_accounts.credentials`

/** Creates the table (idempotent) and the token verifier. */
export const layer = Layer.effect(CredentialsAuth, Effect.gen(function*() {
  const settings = yield* ServerSettings
  const db = yield* PostgresStore.Database
  const s = db.schema
  yield* db.run((k) =>
    sql`CREATE TABLE IF NOT EXISTS ${sql.id(s, "seller_accounts")} (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      organization_id uuid NOT NULL REFERENCES ${sql.id(s, "organizations")} (id),
      created_by uuid REFERENCES ${sql.id(s, "users")} (id),
      name text NOT NULL,
      marketplace text,
      credentials text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(k).then(() =>
      sql`CREATE INDEX IF NOT EXISTS seller_accounts_organization_id ON ${sql.id(s, "seller_accounts")} (organization_id)`.execute(k)
    )
  )
  const jwtKey = Option.getOrUndefined(settings.clerkJwtKey)
  const jwksUrl = Option.getOrUndefined(settings.clerkJwksUrl)
  const verifier = jwtKey || jwksUrl
    ? Option.some(Auth.makeVerifier({ jwtKey, jwksUrl, authorizedParties: settings.authorizedParties }))
    : Option.none()
  return CredentialsAuth.of({ verifier })
}))

const NO_STORE = { "cache-control": "no-store" }
const json = (body: unknown, status = 200) => HttpServerResponse.jsonUnsafe(body, { status, headers: NO_STORE })

/** An early answer: the request is refused with this response. */
class Reject extends Data.TaggedError("Reject")<{ readonly response: HttpServerResponse.HttpServerResponse }> {}

const reject = (status: number, error: string, message: string) => new Reject({ response: json({ error, message }, status) })

/** Who is calling: the Clerk user id from a verified session token. */
const caller = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const { verifier } = yield* CredentialsAuth
  if (Option.isNone(verifier)) return yield* reject(503, "auth_not_configured", "set CLERK_JWT_KEY or CLERK_JWKS_URL to use this API")
  const header = request.headers["authorization"]
  const token = typeof header === "string" && header.startsWith("Bearer ") ? header.slice(7).trim() : null
  const identity = yield* Effect.tryPromise({
    try: () => verifier.value(token),
    catch: (e) => reject(401, e instanceof Auth.AuthError ? e.code : "invalid_token", "a valid Clerk session token is required")
  })
  if (identity.kind !== "user") return yield* reject(403, "forbidden", "a user session is required")
  return identity.userId
})

/** Maps every expected failure to its answer; anything else is a defect (500, logged). */
const answer = <R>(
  effect: Effect.Effect<
    HttpServerResponse.HttpServerResponse,
    Reject | AuthHelpers.NotSignedIn | AuthHelpers.NotSyncedYet | AuthHelpers.NotAMember | AuthHelpers.Forbidden | SyncStore.StorageUnavailable | Schema.SchemaError | Cipher.CipherError,
    R
  >
) =>
  effect.pipe(Effect.catchTags({
    Reject: (e) => Effect.succeed(e.response),
    NotSignedIn: (e) => Effect.succeed(json({ error: "not_signed_in", message: e.message }, 401)),
    // The webhook for this user or organization has not arrived yet: worth retrying shortly.
    NotSyncedYet: (e) => Effect.succeed(json({ error: e.deleted ? "deleted" : "not_synced_yet", message: e.message }, e.deleted ? 403 : 409)),
    NotAMember: () => Effect.succeed(json({ error: "not_a_member", message: "not a member of this organization" }, 403)),
    Forbidden: (e) => Effect.succeed(json({ error: "forbidden", message: e.message }, 403)),
    StorageUnavailable: (e) =>
      Effect.as(Effect.logWarning(`credentials: ${e.message}`), HttpServerResponse.text("storage unavailable\n", { status: 503, headers: { "retry-after": "5" } })),
    SchemaError: () => Effect.succeed(json({ error: "invalid_body", message: "expected JSON { name, marketplace?, credentials: { … } }" }, 400)),
    CipherError: (e) => Effect.as(Effect.logError(`credentials: ${e.message}`), json({ error: "cipher_error", message: e.message }, 500))
  }))

const list = Effect.gen(function*() {
  const userId = yield* caller
  const { orgId } = yield* HttpRouter.params
  const ctx = yield* AuthHelpers.requireAuthContext({ userId, orgId: orgId ?? null })
  const db = yield* PostgresStore.Database
  const rows = yield* db.run((k) =>
    k.withSchema(db.schema).selectFrom("seller_accounts")
      .select(["id", "name", "marketplace", "created_at"])
      .where("organization_id", "=", ctx.organization.organization.id)
      .orderBy("created_at", "asc")
      .execute()
  )
  return json({
    credentials: rows.map((r): CredentialSummary => ({ id: r.id, name: r.name, marketplace: r.marketplace, createdAt: new Date(r.created_at).toISOString() }))
  })
})

const create = Effect.gen(function*() {
  const userId = yield* caller
  const { orgId } = yield* HttpRouter.params
  const ctx = yield* AuthHelpers.requireAuthContext({ userId, orgId: orgId ?? null }, { role: "org:admin" })
  const request = yield* HttpServerRequest.HttpServerRequest
  const body = yield* decodeBody(yield* Effect.orDie(request.text))
  const cipher = yield* Cipher.Cipher
  const organizationId = ctx.organization.organization.id
  const ciphertext = yield* cipher.encrypt(JSON.stringify(body.credentials), contextOf(organizationId))
  const db = yield* PostgresStore.Database
  const row = yield* db.run((k) =>
    k.withSchema(db.schema).insertInto("seller_accounts")
      .values({ organization_id: organizationId, created_by: ctx.user.id, name: body.name, marketplace: body.marketplace ?? null, credentials: ciphertext })
      .returning(["id", "name", "marketplace", "created_at"])
      .executeTakeFirstOrThrow()
  )
  return json({ id: row.id, name: row.name, marketplace: row.marketplace, createdAt: new Date(row.created_at).toISOString() } satisfies CredentialSummary, 201)
})

const verify = Effect.gen(function*() {
  const userId = yield* caller
  const { orgId, id } = yield* HttpRouter.params
  const ctx = yield* AuthHelpers.requireAuthContext({ userId, orgId: orgId ?? null }, { role: "org:admin" })
  const db = yield* PostgresStore.Database
  const organizationId = ctx.organization.organization.id
  const row = yield* db.run((k) =>
    k.withSchema(db.schema).selectFrom("seller_accounts").select(["credentials"])
      .where("id", "=", /^[0-9a-f-]{36}$/i.test(id ?? "") ? id! : "00000000-0000-0000-0000-000000000000")
      .where("organization_id", "=", organizationId)
      .executeTakeFirst()
  )
  if (!row) return yield* reject(404, "not_found", "no such credentials in this organization")
  const cipher = yield* Cipher.Cipher
  const plain = yield* cipher.decrypt(row.credentials, contextOf(organizationId))
  // Only the names of the fields leave the server, never their values.
  return json({ ok: true, fields: Object.keys(JSON.parse(plain) as object).sort() })
})

export const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/api/organizations/:orgId/credentials", answer(list)),
  HttpRouter.add("POST", "/api/organizations/:orgId/credentials", answer(create)),
  HttpRouter.add("POST", "/api/organizations/:orgId/credentials/:id/verify", answer(verify))
)
