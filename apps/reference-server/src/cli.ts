/**
 * The `clerk-sync` command.
 *
 *   clerk-sync send <event-type> [--user user_…] [--org org_…] [--role org:admin]
 *   clerk-sync send --scenario demo
 *   clerk-sync send --file event.json
 *   clerk-sync backfill [reconcile] [--apply] …   (see `clerk-sync backfill --help`)
 *
 * `send` signs with the server's webhook secret: `CLERK_WEBHOOK_SIGNING_SECRET` (or
 * `CLERK_WEBHOOK_SECRET`), else the development secret the server created in `.clerk-sync/`.
 * The target is `--url`, else `CLERK_SYNC_URL`, else `http://localhost:$PORT/api/webhooks/clerk`.
 */
import { readFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { parseArgs } from "node:util"
import { build, post } from "./Send.ts"

const USAGE = `usage:
  clerk-sync send <event-type> [--user <clerk user id>] [--org <clerk org id>] [--role <role>] [--url <endpoint>]
  clerk-sync send --scenario demo [--url <endpoint>]
  clerk-sync send --file <event.json> [--url <endpoint>]
  clerk-sync backfill [reconcile] [--apply] …  (clerk-sync backfill --help)
event types: user.created user.updated user.deleted organization.created organization.updated organization.deleted
             organizationMembership.created organizationMembership.updated organizationMembership.deleted (or any other, sent as unhandled)`

const secretFor = (): string => {
  const fromEnv = process.env.CLERK_WEBHOOK_SIGNING_SECRET ?? process.env.CLERK_WEBHOOK_SECRET
  if (fromEnv) return fromEnv.split(/[\s,]+/)[0]!
  const dataDir = resolve(process.env.CLERK_SYNC_DATA_DIR ?? join(process.env.INIT_CWD ?? process.cwd(), ".clerk-sync"))
  try {
    return readFileSync(join(dataDir, "webhook-secret"), "utf8").trim()
  } catch {
    throw new Error(`no webhook secret: set CLERK_WEBHOOK_SIGNING_SECRET, or start the server once in development (it creates ${join(dataDir, "webhook-secret")})`)
  }
}

const send = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      scenario: { type: "string" },
      file: { type: "string" },
      user: { type: "string" },
      org: { type: "string" },
      role: { type: "string" },
      url: { type: "string" },
      help: { type: "boolean", short: "h" }
    }
  })
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  const what = values.scenario !== undefined
    ? values.scenario === "demo" ? { scenario: "demo" as const } : undefined
    : values.file !== undefined
    ? { file: values.file }
    : positionals[0] !== undefined
    ? { type: positionals[0] }
    : undefined
  if (what === undefined) {
    console.error(USAGE)
    return 2
  }
  const url = values.url ?? process.env.CLERK_SYNC_URL ?? `http://localhost:${process.env.PORT ?? 3000}/api/webhooks/clerk`
  const secret = secretFor()
  const deliveries = build({
    what,
    ...(values.user ? { user: values.user } : {}),
    ...(values.org ? { org: values.org } : {}),
    ...(values.role ? { role: values.role } : {})
  })
  let failures = 0
  for (const delivery of deliveries) {
    const result = await post({ url, secret }, delivery)
    const status = (() => {
      try {
        return (JSON.parse(result.body) as { status?: string }).status ?? ""
      } catch {
        return ""
      }
    })()
    if (result.status >= 300) failures++
    console.log(`${result.status} ${status.padEnd(9)} ${result.type.padEnd(32)} ${result.svixId}`)
  }
  if (failures > 0) console.error(`${failures} of ${deliveries.length} deliveries were not accepted`)
  return failures > 0 ? 1 : 0
}

export const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [command, ...rest] = argv
  switch (command) {
    case "send":
      return send(rest)
    case "backfill": {
      const [{ runBackfillCli }, { PostgresStore }] = await Promise.all([import("@clerk-sync/backfill"), import("@clerk-sync/adapter-postgres")])
      // The same database as the server: DATABASE_URL, or the embedded one in the data directory
      // (which one process opens at a time: stop the server first, or use DATABASE_URL).
      process.env.CLERK_SYNC_PGLITE_DIR ??= join(resolve(process.env.CLERK_SYNC_DATA_DIR ?? join(process.env.INIT_CWD ?? process.cwd(), ".clerk-sync")), "pglite")
      return runBackfillCli(rest, { store: PostgresStore.layerConfig })
    }
    default:
      console.error(USAGE)
      return command === undefined || command === "--help" || command === "-h" ? 0 : 2
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`clerk-sync: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  }
)
