/**
 * The webhook's configuration read through Effect `Config` (environment variables by default).
 *
 * Both names the Clerk guides use are accepted: `CLERK_WEBHOOK_SIGNING_SECRET` (Clerk's current
 * docs) and `CLERK_WEBHOOK_SECRET` (older guides). Each may hold several secrets separated by
 * commas or spaces, for a rotation; when both are set, all their secrets are accepted.
 *
 * @example
 * import { Effect } from "effect"
 * import { WebhookConfig } from "@clerk-sync/adapter-http"
 * const secrets = await Effect.runPromise(WebhookConfig.secrets) // ReadonlyArray<Redacted<string>>
 *
 * @since 0.1.0
 */
import { Config, Option, Redacted } from "effect"
import * as Signature from "./Signature.ts"

/** The variable names read, in order. @category constants */
export const secretVariables = ["CLERK_WEBHOOK_SIGNING_SECRET", "CLERK_WEBHOOK_SECRET"] as const

const split = (value: Redacted.Redacted<string>): ReadonlyArray<Redacted.Redacted<string>> =>
  Signature.splitSecrets(value).map((s) => Redacted.make(s))

/**
 * The signing secrets found in a plain environment object (default `process.env`), for the
 * Promise surface: both variable names, all their secrets. Empty when neither is set.
 *
 * @category config
 */
export const secretsFromEnv = (
  env: Readonly<Record<string, string | undefined>> | undefined = (globalThis as { process?: { env?: Record<string, string | undefined> } })
    .process?.env
): ReadonlyArray<string> => secretVariables.flatMap((name) => Signature.splitSecrets(env?.[name] ?? ""))

/**
 * The signing secrets. Fails with a `ConfigError` naming `CLERK_WEBHOOK_SIGNING_SECRET` when
 * neither variable is set.
 *
 * @category config
 */
export const secrets: Config.Config<ReadonlyArray<Redacted.Redacted<string>>> = Config.all([
  Config.option(Config.Redacted(secretVariables[0])),
  Config.option(Config.Redacted(secretVariables[1]))
]).pipe(
  Config.flatMap(([signing, legacy]) => {
    const found = [...Option.toArray(signing), ...Option.toArray(legacy)].flatMap(split)
    return found.length > 0
      ? Config.succeed(found)
      : Config.Redacted(secretVariables[0]).pipe(Config.map(split))
  })
)
