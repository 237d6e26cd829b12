/**
 * Two clerk-sync nodes (separate Node processes) on one real PostgreSQL: the Postgres store, the
 * outbox relay with its leader lock, Socket.IO clustered through `@socket.io/postgres-adapter`.
 * Clients connect to either node; webhooks arrive at either node.
 */
import { ClerkSimulator, type Notification } from "@clerk-sync/core"
import { createTestDatabase, type TestDatabase } from "@clerk-sync/adapter-postgres/testing"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { ADMIN_TOKEN, connectReady, type Recorder, sleep, waitFor } from "./utils/harness.ts"
import { makeIssuer, type TestIssuer } from "./utils/keys.ts"

interface Node {
  readonly name: string
  readonly url: string
  readonly process: ChildProcess
  readonly ingest: (events: ReadonlyArray<{ readonly svixId: string; readonly body: string }>) => Promise<void>
  readonly stop: () => Promise<void>
}

const script = fileURLToPath(new URL("./utils/cluster-node.ts", import.meta.url))

const startNode = async (name: string, db: TestDatabase, issuer: TestIssuer): Promise<Node> => {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    env: { ...process.env, DATABASE_URL: db.url, JWT_KEY: issuer.publicPem, ADMIN_TOKEN, NODE_NAME: name },
    stdio: ["ignore", "pipe", "inherit"]
  })
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on("line", (line) => {
      try {
        resolve((JSON.parse(line) as { port: number }).port)
      } catch {
        // not the ready line
      }
    })
    child.once("exit", (code) => reject(new Error(`node ${name} exited with ${code}`)))
  })
  const url = `http://127.0.0.1:${port}`
  return {
    name,
    url,
    process: child,
    ingest: async (events) => {
      const res = await fetch(`${url}/ingest`, { method: "POST", body: JSON.stringify(events) })
      assert.strictEqual(res.status, 200, await res.clone().text())
      await res.text()
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once("exit", () => resolve())
        child.kill("SIGTERM")
        setTimeout(() => child.kill("SIGKILL"), 5_000).unref()
      })
  }
}

const headOf = async (node: Node) => ((await (await fetch(`${node.url}/head`)).json()) as { head: number }).head

/** Waits until the nodes agree on their head, it stops moving, and the given clients reached it. */
const settled = async (nodes: ReadonlyArray<Node>, clients: ReadonlyArray<Recorder>) => {
  let last = -1
  for (let stable = 0; stable < 3;) {
    await sleep(150)
    const heads = await Promise.all(nodes.map(headOf))
    const same = heads.every((h) => h === heads[0]) && clients.every((c) => c.delivered.at(-1)?.seq === heads[0])
    stable = same && heads[0] === last ? stable + 1 : 0
    last = heads[0]!
  }
}

const names = (r: Recorder) => r.delivered.map((d) => d.name === "organization.updated" ? d.organization.name : d.name)

describe("two nodes on one Postgres", () => {
  let db: TestDatabase
  let issuer: TestIssuer
  let a: Node
  let b: Node
  const clients: Array<Recorder> = []
  const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: "cl_", startAt: Date.UTC(2026, 0, 1) })
  let sent = 0
  const pending = () => {
    const events = clerk.events.slice(sent)
    sent = clerk.events.length
    return events
  }

  beforeAll(async () => {
    db = await createTestDatabase({ prefix: "socketio_cluster" })
    issuer = await makeIssuer()
    a = await startNode("A", db, issuer)
    b = await startNode("B", db, issuer)
  }, 120_000)

  afterAll(async () => {
    for (const c of clients) c.close()
    await Promise.all([a?.stop(), b?.stop()])
    await db?.drop()
  }, 60_000)

  const connect = async (node: Node, sub: string | null, lastSeq?: number) => {
    const r = await connectReady(node.url, { token: sub === null ? ADMIN_TOKEN : await issuer.sign({ sub, expiresIn: 600 }), lastSeq })
    clients.push(r)
    return r
  }

  let alice: string, bob: string, acme: string
  let onA: Recorder, onB: Recorder, adminOnA: Recorder, adminOnB: Recorder

  it("an event ingested on node A reaches a client on node B, and the other way round, exactly once", async () => {
    alice = clerk.createUser({ firstName: "Alice" })
    bob = clerk.createUser({ firstName: "Bob" })
    acme = clerk.createOrganization({ name: "Acme" })
    clerk.addMember(alice, acme)
    clerk.addMember(bob, acme)
    await a.ingest(pending())
    onA = await connect(a, alice)
    onB = await connect(b, bob)
    adminOnA = await connect(a, null)
    adminOnB = await connect(b, null)
    clerk.tick().updateOrganization(acme, { name: "from A" })
    await a.ingest(pending())
    clerk.tick().updateOrganization(acme, { name: "from B" })
    await b.ingest(pending())
    await waitFor(() => onA.delivered.length === 2 && onB.delivered.length === 2, "both clients", 15_000)
    await sleep(300)
    assert.deepStrictEqual(names(onA), ["from A", "from B"])
    assert.deepStrictEqual(names(onB), ["from A", "from B"])
    assert.deepStrictEqual(adminOnA.delivered.map((d) => d.seq), adminOnB.delivered.map((d) => d.seq))
  })

  it("a member removed on one node leaves the room on the other before the next org event", async () => {
    clerk.tick().removeMember(bob, acme)
    clerk.tick().updateOrganization(acme, { name: "after Bob left" })
    await a.ingest(pending()) // both in one ingest: the relay publishes them in one batch
    await waitFor(() => onA.delivered.length === 4, "alice", 15_000)
    await sleep(300)
    assert.deepStrictEqual(names(onB), ["from A", "from B", "membership.deleted"])
    assert.deepStrictEqual(names(onA).slice(2), ["membership.deleted", "after Bob left"])
    clerk.tick().addMember(bob, acme)
    clerk.tick().updateOrganization(acme, { name: "Bob is back" })
    await b.ingest(pending())
    await waitFor(() => onB.delivered.length === 5, "bob back", 15_000)
    assert.deepStrictEqual(names(onB).slice(3), ["membership.created", "Bob is back"])
  })

  it("many events ingested on both nodes at once: every client gets each of its own once, in seq order", async () => {
    const [fromA, fromB] = [onA.delivered.at(-1)!.seq, onB.delivered.at(-1)!.seq]
    const [skipA, skipB] = [onA.delivered.length, onB.delivered.length]
    const globex = clerk.createOrganization({ name: "Globex" })
    clerk.addMember(alice, globex)
    await a.ingest(pending())
    const batches: Array<Array<{ svixId: string; body: string }>> = []
    for (let i = 0; i < 40; i++) {
      for (let j = 0; j < 5; j++) clerk.tick().updateOrganization(j % 2 === 0 ? acme : globex, { name: `${i}.${j}` })
      batches.push(pending())
    }
    // Concurrent ingests deliver some updates after newer ones: those are stale and notify nobody.
    // The admin stream (everything) is the reference.
    await Promise.all(batches.map((events, i) => (i % 2 === 0 ? a : b).ingest(events)))
    await settled([a, b], [adminOnA, adminOnB])
    const all = adminOnA.delivered
    assert.deepStrictEqual(adminOnB.delivered.map((d) => d.seq), all.map((d) => d.seq), "both admins see the same stream")
    const inOrg = (d: Notification.Delivered, org: string) => d.name === "organization.updated" && d.organization.clerkOrgId === org
    const expectAlice = all.filter((d) => d.seq > fromA && (inOrg(d, acme) || inOrg(d, globex) || (d.name === "membership.created" && d.membership.user.clerkUserId === alice)))
    const expectBob = all.filter((d) => d.seq > fromB && inOrg(d, acme))
    await waitFor(() => onA.delivered.length >= skipA + expectAlice.length && onB.delivered.length >= skipB + expectBob.length, "members", 20_000)
    await sleep(200)
    for (const [r, expected, skip] of [[onA, expectAlice, skipA], [onB, expectBob, skipB]] as const) {
      const got = r.delivered.slice(skip).map((d) => d.seq)
      assert.deepStrictEqual(got, expected.map((d) => d.seq))
    }
  }, 60_000)

  it("a client that resumes on the other node gets what it missed, then live", async () => {
    const lastSeq = onB.delivered.at(-1)!.seq
    onB.close()
    clerk.tick().updateOrganization(acme, { name: "while Bob was away" })
    await a.ingest(pending())
    await waitFor(() => names(adminOnA).includes("while Bob was away"), "admin", 15_000)
    const bobOnA = await connect(a, bob, lastSeq)
    assert.deepStrictEqual(names(bobOnA), ["while Bob was away"])
    clerk.tick().updateOrganization(acme, { name: "live again" })
    await b.ingest(pending())
    await waitFor(() => bobOnA.delivered.length === 2, "live", 15_000)
    assert.deepStrictEqual(names(bobOnA), ["while Bob was away", "live again"])
  })

  it("when a node dies, the other takes over the relay and its clients miss nothing", async () => {
    // Whichever node leads the relay, stopping A leaves B alone: B leads, its clients keep going.
    const bob2 = await connect(b, bob)
    await a.stop()
    clerk.tick().updateOrganization(acme, { name: "A is gone 1" })
    clerk.tick().updateOrganization(acme, { name: "A is gone 2" })
    await b.ingest(pending())
    await waitFor(() => bob2.delivered.length === 2, "after failover", 20_000)
    assert.isTrue(bob2.socket.connected, "stopping one node does not disconnect the other's clients")
    assert.deepStrictEqual(names(bob2), ["A is gone 1", "A is gone 2"])
  }, 60_000)
})
