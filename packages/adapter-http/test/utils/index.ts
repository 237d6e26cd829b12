/**
 * Shared helpers of the adapter-http tests: secrets, signed requests, a store with fault injection,
 * and a log capture.
 */
import { MemoryStore, SyncStore } from "@clerk-sync/core"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { signWebhook, type WebhookHandler } from "../../src/index.ts"

/** The Svix docs' test vector secret, and a second one (as after a rotation). */
export const SECRET = "whsec_plJ3nmyCDGBKInavdOK15jsl"
export const SECRET_NEXT = "whsec_" + Buffer.from("a second secret, after rotation!").toString("base64")
export const SECRET_OTHER = "whsec_" + Buffer.from("somebody else's webhook secret!!").toString("base64")

/** 2026-01-01T00:00:00Z, the tests' "now". */
export const NOW = Date.UTC(2026, 0, 1)
export const NOW_SECONDS = NOW / 1000

export const fixture = (name: string): string => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), "utf8")

export const userCreated = fixture("user.created.json")
export const organizationCreated = fixture("organization.created.json")
/** Authentic but not a Clerk event clerk-sync syncs. */
export const unknownType = JSON.stringify({ object: "event", type: "email.created", timestamp: 1716883200, data: { id: "ema_1" } })
/** Authentic but undecodable: a user without an id. */
export const undecodable = JSON.stringify({ object: "event", type: "user.created", timestamp: 1716883200, data: { id: 42 } })

export const URL_ = "http://localhost/api/webhooks/clerk"

export interface SignedOptions {
  readonly svixId?: string
  readonly body?: string | Uint8Array<ArrayBuffer>
  readonly secret?: string | ReadonlyArray<string>
  /** Unix seconds. */
  readonly timestamp?: number
  readonly method?: string
  /** Extra headers, or `null` values to remove one. */
  readonly headers?: Record<string, string | null>
}

let counter = 0
export const nextId = (): string => `msg_test${String(++counter).padStart(6, "0")}`

/** A POST signed like Svix would (same body bytes), with optional changes. */
export const signed = (options: SignedOptions = {}): Request => {
  const body = options.body ?? userCreated
  const svix = signWebhook({
    secret: options.secret ?? SECRET,
    svixId: options.svixId ?? nextId(),
    timestamp: options.timestamp ?? NOW_SECONDS,
    body: typeof body === "string" ? body : "(bytes)"
  })
  const headers = new Headers({ "content-type": "application/json", ...svix })
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (value === null) headers.delete(name)
    else headers.set(name, value)
  }
  const method = options.method ?? "POST"
  return new Request(URL_, method === "GET" || method === "HEAD" ? { method, headers } : { method, headers, body })
}

/** A store delegating to a MemoryStore whose ingest fails (or hangs) on demand: fault injection. */
export interface FaultyStore {
  readonly store: SyncStore.SyncStoreShape
  readonly memory: SyncStore.SyncStoreShape
  readonly fault: { mode: "none" | "fail" | "hang"; gate?: Promise<void> }
}

export const makeFaultyStore: Effect.Effect<FaultyStore> = Effect.map(MemoryStore.make, (memory) => {
  const fault: FaultyStore["fault"] = { mode: "none" }
  const store: SyncStore.SyncStoreShape = {
    ...memory,
    ingest: (request, options) =>
      Effect.suspend(() => {
        switch (fault.mode) {
          case "fail":
            return Effect.fail(new SyncStore.StorageUnavailable({ operation: "ingest" }))
          case "hang":
            return fault.gate === undefined
              ? Effect.never
              : Effect.andThen(Effect.promise(() => fault.gate!), memory.ingest(request, options))
          case "none":
            return memory.ingest(request, options)
        }
      })
  }
  return { store, memory, fault }
})

/** Total inbox rows, whatever their status. */
export const inboxSize = (store: SyncStore.SyncStoreShape): Effect.Effect<number, SyncStore.StorageUnavailable> =>
  Effect.map(store.counts, (c) => c.inbox.received + c.inbox.processed + c.inbox.ignored + c.inbox.failed)

export const captureLog = (): { readonly lines: Array<WebhookHandler.LogLine>; readonly log: (line: WebhookHandler.LogLine) => void } => {
  const lines: Array<WebhookHandler.LogLine> = []
  return { lines, log: (line) => void lines.push(line) }
}
