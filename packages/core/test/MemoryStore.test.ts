import { MemoryStore } from "@clerk-sync/core"
import { syncStoreContract } from "@clerk-sync/core/testing"

syncStoreContract("in-memory", () => MemoryStore.layer, { runs: 300 })
