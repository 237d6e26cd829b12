/**
 * `npm start`: the reference server, configured from the environment (see README). With nothing
 * set it runs on embedded defaults: PGlite in `.clerk-sync/`, development secrets created there.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Runtime } from "effect"
import * as App from "./App.ts"
import { ServerSettings } from "./Settings.ts"

const banner = Effect.gen(function*() {
  const s = yield* ServerSettings
  const base = `http://${s.host === "0.0.0.0" ? "localhost" : s.host}:${s.port}`
  const lines = [
    `clerk-sync reference server on ${base} (${s.production ? "production" : "development"})`,
    `  webhook endpoint  POST ${base}/api/webhooks/clerk`,
    `  database          ${s.databaseUrl._tag === "Some" ? "PostgreSQL (DATABASE_URL)" : `embedded PGlite in ${s.dataDir}/pglite`}`,
    `  realtime          ${s.realtime.length > 0 ? s.realtime.join(" + ") : "off"}`,
    `  dashboard         ${base}/dashboard/test-sync?token=<ADMIN_TOKEN>`
  ]
  for (const g of s.generated) lines.push(`  created ${g.name} for development in ${g.file}`)
  if (!s.production) lines.push(`  try: npx clerk-sync send --scenario demo`)
  yield* Effect.sync(() => console.log(lines.join("\n")))
})

// Run from the repository root by `npm start`, the data directory belongs there, not in the workspace.
if (process.env.INIT_CWD && !process.env.CLERK_SYNC_DATA_DIR) process.env.CLERK_SYNC_DATA_DIR = `${process.env.INIT_CWD}/.clerk-sync`

NodeRuntime.runMain(
  Layer.launch(Layer.effectDiscard(banner).pipe(Layer.provideMerge(App.layer))).pipe(
    Effect.tapCause((cause) => Effect.logError("clerk-sync could not start", cause))
  ),
  {
    // SIGTERM/SIGINT interrupt the server, which then shuts down gracefully: that is a clean exit.
    teardown: (exit, onExit) => Runtime.defaultTeardown(exit, (code) => onExit(code === 130 ? 0 : code))
  }
)
