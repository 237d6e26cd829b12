/**
 * The store the server runs on: PostgreSQL when `DATABASE_URL` is set, otherwise the embedded
 * PGlite database in the data directory (which survives restarts).
 */
import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { Layer, Option } from "effect"
import { join } from "node:path"
import { ServerSettings } from "./Settings.ts"

export const layer = Layer.unwrap(ServerSettings.useSync((s) => {
  const common = { schema: s.schema, migrate: !s.skipMigrations }
  return Option.match(s.databaseUrl, {
    onNone: () => PostgresStore.layerPGlite({ ...common, dataDir: join(s.dataDir, "pglite") }),
    onSome: (connectionString) => PostgresStore.layerPg({ ...common, connectionString })
  })
}))
