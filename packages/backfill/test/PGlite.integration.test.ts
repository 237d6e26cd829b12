/**
 * The backfill on PGlite (Postgres in-process), persisted to a temporary directory so a second
 * layer on it is a process restart.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"
import { PostgresStore } from "@clerk-sync/adapter-postgres"
import { storeSuite } from "./utils/StoreSuite.ts"

const dirs: Array<string> = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

storeSuite({
  name: "PGlite",
  fill: { users: 400, organizations: 40, memberships: 500 },
  race: { users: 80, organizations: 8, memberships: 100 },
  fresh: () => {
    const dir = mkdtempSync(join(tmpdir(), "clerk-sync-backfill-"))
    dirs.push(dir)
    const make = () => PostgresStore.layerPGlite({ dataDir: dir })
    return { layer: make(), again: make }
  }
})
