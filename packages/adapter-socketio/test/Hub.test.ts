/**
 * A node's stream: batches from other nodes may arrive reordered (the Postgres adapter sends large
 * payloads through a table, read asynchronously), be lost (a dropped LISTEN connection), or come
 * from a new relay leader. Each node still dispatches every notification once, in seq order.
 */
import { ClerkSimulator, MemoryStore, type Notification } from "@clerk-sync/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { BATCH, type Batch } from "../src/Protocol.ts"
import { findHead } from "../src/internal/Hub.ts"
import { ADMIN_TOKEN, connectReady, sleep, startServer, waitFor } from "./utils/harness.ts"

const T0 = Date.UTC(2026, 0, 1)

/** A server whose outbox holds `n` organization updates, none published yet. */
const setup = async (n: number, options: { readonly reorderWindowMs?: number } = {}) => {
  const store = await Effect.runPromise(MemoryStore.make)
  const server = await startServer(store, { reorderWindowMs: options.reorderWindowMs ?? 100 })
  const admin = await connectReady(server.url, { token: ADMIN_TOKEN })
  const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
  const acme = clerk.createOrganization({ name: "Acme" })
  for (let i = 0; i < n - 1; i++) clerk.tick().updateOrganization(acme, { name: `v${i}` })
  await server.ingest(clerk.events)
  const rows = await Effect.runPromise(store.readOutbox(0, ["admin"], 1_000))
  /** Delivers a batch as if another node had published it. */
  const remote = (batch: Batch) =>
    (server.realtime.namespace as unknown as { _onServerSideEmit: (args: Array<unknown>) => void })._onServerSideEmit([BATCH, batch])
  return { server, admin, rows, remote }
}

const batch = (from: string, rows: ReadonlyArray<Notification.Stored>, prev: number | null): Batch => ({ from, prev, items: rows })

describe("a node's stream", () => {
  it("holds a batch that arrives before the one it follows, then dispatches both in order", async () => {
    const { server, admin, rows, remote } = await setup(6)
    try {
      remote(batch("other", rows.slice(0, 2), null))
      await waitFor(() => admin.delivered.length === 2)
      remote(batch("other", rows.slice(4), rows[3]!.seq)) // early
      await sleep(20)
      assert.strictEqual(admin.delivered.length, 2, "held while the batch before it may still come")
      remote(batch("other", rows.slice(2, 4), rows[1]!.seq))
      await waitFor(() => admin.delivered.length === 6)
      assert.deepStrictEqual(admin.delivered.map((d) => d.seq), rows.map((n) => n.seq))
    } finally {
      admin.close()
      await server.close()
    }
  })

  it("reads a lost batch from the outbox once the reorder window has passed", async () => {
    const { server, admin, rows, remote } = await setup(6, { reorderWindowMs: 30 })
    try {
      remote(batch("other", rows.slice(0, 2), null))
      remote(batch("other", rows.slice(4), rows[3]!.seq)) // rows 2..3 never arrive
      await waitFor(() => admin.delivered.length === 6)
      assert.deepStrictEqual(admin.delivered.map((d) => d.seq), rows.map((n) => n.seq))
      remote(batch("other", rows.slice(2, 4), rows[1]!.seq)) // arrives at last: already delivered
      await sleep(50)
      assert.strictEqual(admin.delivered.length, 6, "nothing twice")
    } finally {
      admin.close()
      await server.close()
    }
  })

  it("reads what a new relay leader's first batch may follow, and drops what was already dispatched", async () => {
    const { server, admin, rows, remote } = await setup(8)
    try {
      remote(batch("old-leader", rows.slice(0, 3), null))
      // The old leader published rows 3..4 but the message was lost; the new one starts at 5,
      // re-sending 4 (at-least-once) with no previous batch of its own.
      remote(batch("new-leader", rows.slice(4, 6), null))
      remote(batch("new-leader", rows.slice(6), rows[5]!.seq))
      remote(batch("new-leader", rows.slice(6), rows[5]!.seq)) // a retry
      await waitFor(() => admin.delivered.length === 8)
      await sleep(50)
      assert.deepStrictEqual(admin.delivered.map((d) => d.seq), rows.map((n) => n.seq))
    } finally {
      admin.close()
      await server.close()
    }
  })

  it("polls the outbox as a safety net when nothing arrives at all", async () => {
    const store = await Effect.runPromise(MemoryStore.make)
    const server = await startServer(store, { pollIntervalMs: 50 })
    try {
      const admin = await connectReady(server.url, { token: ADMIN_TOKEN })
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      clerk.createOrganization({ name: "Acme" })
      await server.ingest(clerk.events) // never published
      await waitFor(() => admin.delivered.length === 1, "the poll", 2_000)
      admin.close()
    } finally {
      await server.close()
    }
  })

  it("finds the outbox head in O(log n) reads", async () => {
    const store = await Effect.runPromise(MemoryStore.make)
    assert.strictEqual(await findHead(store), 0)
    const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
    const acme = clerk.createOrganization({ name: "Acme" })
    for (let i = 0; i < 1_000; i++) clerk.tick().updateOrganization(acme, { name: `v${i}` })
    const { Ingest, SyncStore } = await import("@clerk-sync/core")
    for (const e of clerk.events) {
      await Effect.runPromise(Ingest.ingest(e).pipe(Effect.provideService(SyncStore.SyncStore, store)))
    }
    let reads = 0
    const counting = { ...store, readOutbox: (...args: Parameters<typeof store.readOutbox>) => (reads++, store.readOutbox(...args)) }
    assert.strictEqual(await findHead(counting), 1_001)
    assert.isAtMost(reads, 30)
    const all = await Effect.runPromise(store.claimUnpublished(10_000))
    await Effect.runPromise(store.markPublished(all.map((n) => n.seq)))
    await Effect.runPromise(store.prune({ inboxBefore: 0, outboxBefore: Number.MAX_SAFE_INTEGER }))
    assert.strictEqual((await Effect.runPromise(store.readOutbox(0, ["admin"], 10))).length, 0)
    assert.strictEqual(await findHead(store), 1_001, "an empty outbox after pruning: the floor says where it is")
  })
})
