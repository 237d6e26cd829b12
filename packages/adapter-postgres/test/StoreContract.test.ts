/**
 * The core's ONE contract suite of the sync-store port, against the in-memory reference store,
 * PGlite, and a real PostgreSQL 15 server (with and without group commit).
 *
 * On the real server the convergence property delivers each generated history over several
 * connections at once (`concurrency`), so concurrent deliveries touching the same user,
 * organization or membership really race. PGlite has a single connection: there, deliveries are
 * serialized by the adapter and the property shows ordering and duplicates, not lock contention.
 */
import { MemoryStore } from "@clerk-sync/core"
import { syncStoreContract } from "@clerk-sync/core/testing"
import { backends } from "./utils/backends.ts"

const [pglite, postgres] = backends("contract")

syncStoreContract("in-memory (reference)", () => MemoryStore.layer, { runs: 20 })
syncStoreContract("PGlite", () => pglite!.layer(), { runs: 30, concurrency: 4 })
syncStoreContract("PostgreSQL 15, group commit", () => postgres!.layer(), { runs: 300, concurrency: 16, timeout: 180_000 })
syncStoreContract("PostgreSQL 15, one transaction per delivery", () => postgres!.layer({ groupCommit: false }), {
  runs: 60,
  concurrency: 8,
  timeout: 180_000
})
