/**
 * The reference server's configuration, read from the environment through Effect `Config` and
 * validated at start with clear messages.
 *
 * In production (`NODE_ENV=production`) every secret must be given: a missing webhook secret,
 * encryption key or admin token refuses to start. In development, missing ones are created once in
 * the data directory (so restarts keep them) and printed, so `clerk-sync send` can sign and the
 * dashboard can be opened.
 */
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"

export type Realtime = "socketio" | "supabase"

export interface Settings {
  readonly production: boolean
  readonly host: string
  readonly port: number
  /** Where the embedded database and development secrets live. */
  readonly dataDir: string
  /** Absent: the embedded PGlite database in `dataDir/pglite`. */
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  readonly schema: string
  readonly skipMigrations: boolean
  readonly webhookSecrets: ReadonlyArray<Redacted.Redacted<string>>
  readonly encryptionKey: Redacted.Redacted<string>
  readonly previousEncryptionKeys: ReadonlyArray<Redacted.Redacted<string>>
  readonly adminToken: Redacted.Redacted<string>
  readonly realtime: ReadonlyArray<Realtime>
  readonly supabase: Option.Option<{ readonly url: string; readonly serviceKey: Redacted.Redacted<string> }>
  readonly clerkJwtKey: Option.Option<string>
  readonly clerkJwksUrl: Option.Option<string>
  readonly authorizedParties: ReadonlyArray<string>
  readonly webhookRateLimit: number
  readonly maxBodyBytes: number
  readonly maxInFlight: number
  readonly retentionDays: number
  /** Lifetime of the admin session tokens the dashboard page gets (it fetches fresh ones before expiry). */
  readonly dashboardTokenTtlSeconds: number
  /** Secrets created for development, to print once at start. */
  readonly generated: ReadonlyArray<{ readonly name: string; readonly file: string }>
}

export class ServerSettings extends Context.Service<ServerSettings, Settings>()("reference-server/ServerSettings") {}

const list = (name: string) =>
  Config.String(name).pipe(
    Config.map((s) => s.split(/[\s,]+/).filter((x) => x.length > 0)),
    Config.withDefault([] as ReadonlyArray<string>)
  )

const optionalRedacted = (name: string) => Config.Redacted(name).pipe(Config.option)

export class MissingSecret extends Error {
  constructor(readonly names: ReadonlyArray<string>) {
    super(`refusing to start in production without ${names.join(", ")} (set them in the environment)`)
    this.name = "MissingSecret"
  }
}

/** Reads a development secret from the data directory, creating it when absent. */
export const devSecret = (dataDir: string, file: string, make: () => string): { readonly value: string; readonly created: boolean } => {
  const path = join(dataDir, file)
  try {
    const value = readFileSync(path, "utf8").trim()
    if (value.length > 0) return { value, created: false }
  } catch {
    // absent: created below
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const value = make()
  writeFileSync(path, `${value}\n`, { mode: 0o600 })
  return { value, created: true }
}

export const newWebhookSecret = (): string => `whsec_${randomBytes(24).toString("base64")}`
const newToken = (): string => randomBytes(24).toString("base64url")

const raw = Config.all({
  nodeEnv: Config.String("NODE_ENV").pipe(Config.withDefault("development")),
  host: Config.String("HOST").pipe(Config.withDefault("0.0.0.0")),
  port: Config.Port("PORT").pipe(Config.withDefault(3000)),
  dataDir: Config.String("CLERK_SYNC_DATA_DIR").pipe(Config.withDefault(".clerk-sync")),
  databaseUrl: optionalRedacted("DATABASE_URL"),
  schema: Config.String("CLERK_SYNC_SCHEMA").pipe(Config.withDefault("clerk_sync")),
  skipMigrations: Config.Boolean("SKIP_DB_MIGRATIONS").pipe(Config.withDefault(false)),
  signingSecret: list("CLERK_WEBHOOK_SIGNING_SECRET"),
  legacySecret: list("CLERK_WEBHOOK_SECRET"),
  encryptionKey: optionalRedacted("ENCRYPTION_KEY"),
  previousEncryptionKeys: list("ENCRYPTION_KEYS_PREVIOUS"),
  adminToken: optionalRedacted("ADMIN_TOKEN"),
  realtime: list("REALTIME"),
  supabaseUrl: Config.String("SUPABASE_URL").pipe(Config.option),
  supabaseServiceKey: optionalRedacted("SUPABASE_SERVICE_KEY"),
  clerkJwtKey: Config.String("CLERK_JWT_KEY").pipe(Config.option),
  clerkJwksUrl: Config.String("CLERK_JWKS_URL").pipe(Config.option),
  authorizedParties: list("CLERK_AUTHORIZED_PARTIES"),
  webhookRateLimit: Config.Int("WEBHOOK_RATE_LIMIT").pipe(Config.withDefault(0)),
  maxBodyBytes: Config.Int("WEBHOOK_MAX_BODY_BYTES").pipe(Config.withDefault(256 * 1024)),
  maxInFlight: Config.Int("WEBHOOK_MAX_IN_FLIGHT").pipe(Config.withDefault(256)),
  retentionDays: Config.Int("RETENTION_DAYS").pipe(Config.withDefault(30)),
  dashboardTokenTtlSeconds: Config.Int("DASHBOARD_TOKEN_TTL_SECONDS").pipe(Config.withDefault(300))
})

/** Reads and validates the settings. */
export const load = Effect.gen(function*() {
  const c = yield* raw
  const production = c.nodeEnv === "production"
  const dataDir = resolve(c.dataDir)
  const generated: Array<{ name: string; file: string }> = []
  const missing: Array<string> = []

  const secretOr = (name: string, given: Option.Option<Redacted.Redacted<string>>, file: string, make: () => string) => {
    if (Option.isSome(given)) return given.value
    if (production) {
      missing.push(name)
      return Redacted.make("")
    }
    const secret = devSecret(dataDir, file, make)
    if (secret.created) generated.push({ name, file: join(dataDir, file) })
    return Redacted.make(secret.value)
  }

  const given = [...c.signingSecret, ...c.legacySecret]
  const webhookSecrets = given.length > 0
    ? given.map((s) => Redacted.make(s))
    : [secretOr("CLERK_WEBHOOK_SIGNING_SECRET", Option.none(), "webhook-secret", newWebhookSecret)]
  const encryptionKey = secretOr("ENCRYPTION_KEY", c.encryptionKey, "encryption-key", () => randomBytes(32).toString("base64url"))
  const adminToken = secretOr("ADMIN_TOKEN", c.adminToken, "admin-token", newToken)
  if (missing.length > 0) return yield* Effect.fail(new MissingSecret(missing))

  const realtime = (c.realtime.length > 0 ? c.realtime : ["socketio"]).filter((r) => r !== "none")
  for (const r of realtime) {
    if (r !== "socketio" && r !== "supabase") return yield* Effect.fail(new Error(`REALTIME: unknown publisher "${r}" (socketio, supabase or none)`))
  }
  const supabase = Option.isSome(c.supabaseUrl) && Option.isSome(c.supabaseServiceKey)
    ? Option.some({ url: c.supabaseUrl.value, serviceKey: c.supabaseServiceKey.value })
    : Option.none()
  if (realtime.includes("supabase") && Option.isNone(supabase)) {
    return yield* Effect.fail(new Error("REALTIME=supabase needs SUPABASE_URL and SUPABASE_SERVICE_KEY"))
  }
  if (c.dashboardTokenTtlSeconds < 1) return yield* Effect.fail(new Error(`DASHBOARD_TOKEN_TTL_SECONDS: ${c.dashboardTokenTtlSeconds} is not a positive number of seconds`))
  if (!/^[a-z_][a-z0-9_]*$/.test(c.schema)) return yield* Effect.fail(new Error(`CLERK_SYNC_SCHEMA: "${c.schema}" is not a plain lower-case identifier`))

  return ServerSettings.of({
    production,
    host: c.host,
    port: c.port,
    dataDir,
    databaseUrl: c.databaseUrl,
    schema: c.schema,
    skipMigrations: c.skipMigrations,
    webhookSecrets,
    encryptionKey,
    previousEncryptionKeys: c.previousEncryptionKeys.map((k) => Redacted.make(k)),
    adminToken,
    realtime: realtime as ReadonlyArray<Realtime>,
    supabase,
    clerkJwtKey: c.clerkJwtKey,
    clerkJwksUrl: c.clerkJwksUrl,
    authorizedParties: c.authorizedParties,
    webhookRateLimit: c.webhookRateLimit,
    maxBodyBytes: c.maxBodyBytes,
    maxInFlight: c.maxInFlight,
    retentionDays: c.retentionDays,
    dashboardTokenTtlSeconds: c.dashboardTokenTtlSeconds,
    generated
  })
})

export const layer = Layer.effect(ServerSettings, load)
