// A separate process delivering a history: `ingest-process.ts <url> <schema> <events.json> <seed>`.
// Connects, says `ready`, waits for `go` (so that all processes race), then delivers every event
// in an order of its own (seeded), 8 at a time, and prints how many it recorded (processed or
// ignored; the rest are duplicates of the other processes' deliveries).
import { Ingest, SyncStore } from "@clerk-sync/core"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import * as PostgresStore from "../../src/PostgresStore.ts"
import { awaitGo } from "./run-script.ts"

const [url, schema, file, seedText] = process.argv.slice(2)
const events = JSON.parse(readFileSync(file!, "utf8")) as Array<{ svixId: string; body: string }>
let seed = Number(seedText)
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
const order = events.map((e) => ({ e, k: random() })).sort((a, b) => a.k - b.k).map((x) => x.e)

const program = Effect.gen(function*() {
  yield* SyncStore.SyncStore.use((s) => s.counts) // connected
  yield* Effect.promise(awaitGo)
  return yield* Effect.forEach(order, (e) => Ingest.ingest(e), { concurrency: 8 })
})
const results = await Effect.runPromise(
  program.pipe(Effect.provide(PostgresStore.layerPg({ connectionString: url!, schema: schema!, migrate: false })))
)
console.log(JSON.stringify({ processed: results.filter((r) => r.status === "processed" || r.status === "ignored").length }))
process.exit(0)
