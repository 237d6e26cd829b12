import { ClerkSimulator, MemoryStore, Notification } from "@clerk-sync/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { createAdminSessionToken } from "../src/Auth.ts"
import { REFRESH, type RefreshResult } from "../src/Protocol.ts"
import type { Options } from "../src/SocketIoRealtime.ts"
import { ADMIN_TOKEN, connectReady, type Recorder, record, sleep, startServer, waitFor } from "./utils/harness.ts"
import { makeIssuer } from "./utils/keys.ts"

const T0 = Date.UTC(2026, 0, 1)
const newStore = () => Effect.runPromise(MemoryStore.make)
const names = (ds: ReadonlyArray<Notification.Delivered>) => ds.map((d) => d.name)
const seqsIncrease = (ds: ReadonlyArray<Notification.Delivered>) => ds.every((d, i) => i === 0 || d.seq > ds[i - 1]!.seq)

describe("SocketIoRealtime: authentication", () => {
  it("refuses missing, malformed, expired, foreign and not-yet-valid tokens with a clear connect_error", async () => {
    const server = await startServer(await newStore())
    try {
      const { makeIssuer } = await import("./utils/keys.ts")
      const foreign = await makeIssuer("other_instance")
      const cases: Array<[string | undefined, string]> = [
        [undefined, "missing_token"],
        ["not-a-jwt", "malformed_token"],
        [await server.issuer.sign({ sub: "user_a", expiresIn: -60 }), "expired_token"],
        [await foreign.sign({ sub: "user_a" }), "invalid_signature"],
        [await server.issuer.sign({ sub: "user_a", notBefore: 120, expiresIn: 600 }), "token_not_yet_valid"],
        ["wrong-admin-token", "malformed_token"]
      ]
      for (const [token, code] of cases) {
        const r = record(server.url, { token })
        const error = await r.connected
        r.close()
        assert.isNotNull(error, `${code}: refused`)
        assert.strictEqual(error!.code, code)
        assert.isAbove(error!.message.length, 10, "with a message that says why")
      }
    } finally {
      await server.close()
    }
  })

  it("accepts a Clerk session token, the admin token and an admin session token", async () => {
    const server = await startServer(await newStore())
    try {
      const user = await connectReady(server.url, { token: await server.issuer.sign({ sub: "user_alice" }) })
      assert.deepStrictEqual(user.hellos[0]!.identity, { kind: "user", userId: "user_alice" })
      const admin = await connectReady(server.url, { token: ADMIN_TOKEN })
      assert.deepStrictEqual(admin.hellos[0]!.identity, { kind: "admin" })
      const dashboard = await connectReady(server.url, { token: await createAdminSessionToken({ adminToken: ADMIN_TOKEN, ttlSeconds: 60 }) })
      assert.deepStrictEqual(dashboard.hellos[0]!.identity, { kind: "admin" })
      for (const r of [user, admin, dashboard]) r.close()
    } finally {
      await server.close()
    }
  })

  it("refuses a deleted user", async () => {
    const server = await startServer(await newStore())
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const gone = clerk.createUser({ firstName: "Gone" })
      clerk.tick().deleteUser(gone)
      await server.send(clerk.events)
      const r = record(server.url, { token: await server.issuer.sign({ sub: gone }) })
      assert.strictEqual((await r.connected)?.code, "user_deleted")
      r.close()
    } finally {
      await server.close()
    }
  })
})

describe("SocketIoRealtime: rooms decided by the server", () => {
  it("delivers each user its own and its organizations' events only; admin everything", async () => {
    const server = await startServer(await newStore())
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice", email: "alice@acme.test" })
      const bob = clerk.createUser({ firstName: "Bob", email: "bob@globex.test" })
      const acme = clerk.createOrganization({ name: "Acme" })
      const globex = clerk.createOrganization({ name: "Globex" })
      clerk.tick().addMember(alice, acme)
      clerk.addMember(bob, globex)
      await server.send(clerk.events)

      const a = await connectReady(server.url, { token: await server.issuer.sign({ sub: alice }) })
      const b = await connectReady(server.url, { token: await server.issuer.sign({ sub: bob }) })
      const admin = await connectReady(server.url, { token: ADMIN_TOKEN })
      const start = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "Acme Inc" })
      clerk.updateOrganization(globex, { name: "Globex Corp" })
      clerk.updateUser(bob, { firstName: "Robert" })
      clerk.setRole(alice, acme, "org:admin")
      await server.send(clerk.events.slice(start))

      await waitFor(() => admin.delivered.length === 4 && a.delivered.length === 2 && b.delivered.length === 2)
      await sleep(50)
      assert.deepStrictEqual(names(a.delivered), ["organization.updated", "membership.updated"])
      assert.deepStrictEqual(names(b.delivered), ["organization.updated", "user.updated"])
      assert.isFalse(JSON.stringify(a.delivered).includes("bob@globex.test"), "never another organization's member's email")
      assert.isFalse(JSON.stringify(b.delivered).includes("Acme"), "nothing of an organization one is not in")
      assert.deepStrictEqual(names(admin.delivered), ["organization.updated", "organization.updated", "user.updated", "membership.updated"])
      assert.isTrue(seqsIncrease(admin.delivered))
      const roleChange = a.delivered[1]!
      assert.strictEqual(roleChange.name, "membership.updated")
      if (roleChange.name === "membership.updated") assert.deepStrictEqual([roleChange.previousRole, roleChange.role], ["org:member", "org:admin"])
      for (const r of [a, b, admin]) r.close()
    } finally {
      await server.close()
    }
  })

  it("a client cannot join a room by asking", async () => {
    const server = await startServer(await newStore())
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const mallory = clerk.createUser({ firstName: "Mallory" })
      const acme = clerk.createOrganization({ name: "Acme" })
      await server.send(clerk.events)
      const m = await connectReady(server.url, { token: await server.issuer.sign({ sub: mallory }) })
      for (const ev of ["join", "subscribe", "clerk-sync:join"]) m.socket.emit(ev, `org:${acme}`)
      m.socket.emit("join", "admin")
      await sleep(50)
      const start = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "Secret plans" })
      await server.send(clerk.events.slice(start))
      await sleep(100)
      assert.deepStrictEqual(m.delivered, [])
      const sockets = await server.realtime.namespace.fetchSockets()
      assert.deepStrictEqual([...sockets[0]!.rooms].filter((r) => r !== sockets[0]!.id), [`user:${mallory}`])
      m.close()
    } finally {
      await server.close()
    }
  })

  it("joins the org room with the membership.created, leaves it after the membership.deleted, before the next org event", async () => {
    const server = await startServer(await newStore())
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice" })
      const owner = clerk.createUser({ firstName: "Owner" })
      const acme = clerk.createOrganization({ name: "Acme" })
      clerk.addMember(owner, acme, "org:admin")
      await server.send(clerk.events)
      const a = await connectReady(server.url, { token: await server.issuer.sign({ sub: alice }) })
      const start = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "Before" }) // not a member yet
      clerk.tick().addMember(alice, acme) // joins
      clerk.tick().updateOrganization(acme, { name: "During" })
      clerk.tick().removeMember(alice, acme) // leaves
      clerk.tick().updateOrganization(acme, { name: "After" }) // in the SAME batch as the leave
      await server.send(clerk.events.slice(start))
      await waitFor(() => a.delivered.length >= 3)
      await sleep(100)
      assert.deepStrictEqual(names(a.delivered), ["membership.created", "organization.updated", "membership.deleted"])
      const during = a.delivered[1]!
      assert.strictEqual(during.name === "organization.updated" ? during.organization.name : null, "During")
      a.close()
    } finally {
      await server.close()
    }
  })

  it("an organization's deletion takes its members out of the room; a user's deletion closes their connections", async () => {
    const server = await startServer(await newStore())
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice" })
      const bob = clerk.createUser({ firstName: "Bob" })
      const acme = clerk.createOrganization({ name: "Acme" })
      clerk.addMember(alice, acme)
      clerk.addMember(bob, acme)
      await server.send(clerk.events)
      const a = await connectReady(server.url, { token: await server.issuer.sign({ sub: alice }) })
      const b = await connectReady(server.url, { token: await server.issuer.sign({ sub: bob }) })
      const start = clerk.events.length
      clerk.tick().deleteUser(bob)
      clerk.tick().deleteOrganization(acme)
      await server.send(clerk.events.slice(start))
      await waitFor(() => b.closings.length === 1 && a.delivered.length >= 3, "closing")
      await waitFor(() => b.socket.disconnected, "bob disconnected")
      assert.deepStrictEqual(names(b.delivered), ["membership.deleted", "user.deleted"])
      assert.deepStrictEqual(names(a.delivered), ["membership.deleted", "organization.deleted", "membership.deleted"])
      const sockets = await server.realtime.namespace.fetchSockets()
      assert.deepStrictEqual(sockets.flatMap((s) => [...s.rooms]).filter((r) => r.startsWith("org:")), [])
      a.close()
    } finally {
      await server.close()
    }
  })
})

describe("SocketIoRealtime: resume", () => {
  it("replays what a client missed, in order, then goes live; nothing twice", async () => {
    const server = await startServer(await newStore())
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice" })
      const acme = clerk.createOrganization({ name: "Acme" })
      clerk.addMember(alice, acme)
      await server.send(clerk.events)
      const token = await server.issuer.sign({ sub: alice })
      const first = await connectReady(server.url, { token })
      let mark = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "One" })
      await server.send(clerk.events.slice(mark))
      await waitFor(() => first.delivered.length === 1)
      const lastSeq = first.lastSeq()
      first.close()
      mark = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "Two" })
      clerk.tick().updateUser(alice, { firstName: "Alicia" })
      clerk.tick().setRole(alice, acme, "org:admin")
      await server.send(clerk.events.slice(mark))

      const again = await connectReady(server.url, { token, lastSeq })
      assert.deepStrictEqual(again.hellos[0]!.seq, lastSeq)
      assert.isFalse(again.hellos[0]!.resync)
      assert.deepStrictEqual(names(again.delivered), ["organization.updated", "user.updated", "membership.updated"])
      mark = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "Three" })
      await server.send(clerk.events.slice(mark))
      await waitFor(() => again.delivered.length === 4)
      assert.isTrue(seqsIncrease(again.delivered))
      assert.isTrue(again.delivered[0]!.seq > lastSeq)
      const snapshot = again.readies[0]!.snapshot!
      assert.deepStrictEqual(snapshot.organizations.map((o) => [o.organization.name, o.membership.role]), [["Two", "org:admin"]])
      assert.strictEqual(snapshot.user?.firstName, "Alicia")
      again.close()
    } finally {
      await server.close()
    }
  })

  it("replays with the rooms the client had at its cursor: joined and left while away", async () => {
    const server = await startServer(await newStore())
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice" })
      const acme = clerk.createOrganization({ name: "Acme" })
      const globex = clerk.createOrganization({ name: "Globex" })
      clerk.addMember(alice, globex)
      await server.send(clerk.events)
      const token = await server.issuer.sign({ sub: alice })
      const first = await connectReady(server.url, { token })
      const lastSeq = first.readies[0]!.seq
      first.close()
      const mark = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "Acme before" }) // not a member then: not replayed
      clerk.tick().updateOrganization(globex, { name: "Globex while member" }) // replayed
      clerk.tick().addMember(alice, acme)
      clerk.tick().updateOrganization(acme, { name: "Acme while member" }) // replayed
      clerk.tick().removeMember(alice, globex)
      clerk.tick().updateOrganization(globex, { name: "Globex after" }) // left: not replayed
      await server.send(clerk.events.slice(mark))
      const again = await connectReady(server.url, { token, lastSeq })
      await sleep(50)
      assert.deepStrictEqual(
        again.delivered.map((d) => d.name === "organization.updated" ? d.organization.name : d.name),
        ["Globex while member", "membership.created", "Acme while member", "membership.deleted"]
      )
      again.close()
    } finally {
      await server.close()
    }
  })

  it("tells a client beyond the retention window to resync, and continues from now", async () => {
    const store = await newStore()
    const server = await startServer(store)
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice" })
      const acme = clerk.createOrganization({ name: "Acme" })
      clerk.addMember(alice, acme)
      for (let i = 0; i < 5; i++) clerk.tick().updateOrganization(acme, { name: `v${i}` })
      await server.send(clerk.events)
      await Effect.runPromise(store.prune({ inboxBefore: 0, outboxBefore: Number.MAX_SAFE_INTEGER }))
      const again = await connectReady(server.url, { token: await server.issuer.sign({ sub: alice }), lastSeq: 1 })
      assert.isTrue(again.hellos[0]!.resync)
      assert.deepStrictEqual(again.delivered, [])
      assert.strictEqual(again.readies[0]!.snapshot!.organizations[0]!.organization.name, "v4")
      const mark = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "live" })
      await server.send(clerk.events.slice(mark))
      await waitFor(() => again.delivered.length === 1)
      again.close()
    } finally {
      await server.close()
    }
  })

  it("tells a client whose lastSeq is ahead of the whole outbox (a reset database) to resync", async () => {
    const server = await startServer(await newStore())
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice" })
      await server.send(clerk.events)
      const again = await connectReady(server.url, { token: await server.issuer.sign({ sub: alice }), lastSeq: 5_000 })
      assert.isTrue(again.hellos[0]!.resync)
      assert.strictEqual(again.hellos[0]!.seq, 1)
      const mark = clerk.events.length
      clerk.tick().updateUser(alice, { firstName: "Alicia" })
      await server.send(clerk.events.slice(mark))
      await waitFor(() => again.delivered.length === 1, "live again, not waiting for seq 5,001")
      again.close()
    } finally {
      await server.close()
    }
  })

  it("resumes across 1,000 events with the client offline for part of them: nothing missed, nothing twice", async () => {
    const server = await startServer(await newStore(), { readBatchSize: 128 })
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice" })
      const acme = clerk.createOrganization({ name: "Acme" })
      const other = clerk.createOrganization({ name: "Other" })
      clerk.addMember(alice, acme)
      await server.send(clerk.events)
      const token = await server.issuer.sign({ sub: alice })
      const received: Array<Notification.Delivered> = []
      let client = await connectReady(server.url, { token })
      const expected: Array<number> = []
      const admin = await connectReady(server.url, { token: ADMIN_TOKEN })
      let mark = clerk.events.length
      for (let i = 0; i < 1_000; i++) {
        // One event in three is another organization's: never for Alice.
        if (i % 3 === 2) clerk.tick().updateOrganization(other, { name: `o${i}` })
        else clerk.tick().updateOrganization(acme, { name: `a${i}` })
        if (i % 50 === 49) {
          await server.send(clerk.events.slice(mark))
          mark = clerk.events.length
        }
        if (i === 300) {
          // goes offline for events 300..699, while they keep coming
          await waitFor(() => client.delivered.length > 0 && client.delivered.at(-1)!.name === "organization.updated")
          received.push(...client.delivered)
          client.close()
        }
        if (i === 700) {
          client = await connectReady(server.url, { token, lastSeq: received.at(-1)!.seq })
        }
      }
      await server.send(clerk.events.slice(mark))
      await waitFor(() => admin.delivered.length === 1_000, "admin got all")
      for (const d of admin.delivered) if (d.name === "organization.updated" && d.organization.name.startsWith("a")) expected.push(d.seq)
      await waitFor(() => received.length + client.delivered.length >= expected.length, "alice caught up")
      await sleep(100)
      received.push(...client.delivered)
      const seqs = received.map((d) => d.seq)
      assert.strictEqual(new Set(seqs).size, seqs.length, "nothing twice")
      assert.deepStrictEqual(seqs, expected, "nothing missed, in order, nothing of the other organization")
      client.close()
      admin.close()
    } finally {
      await server.close()
    }
  }, 60_000)
})

describe("SocketIoRealtime: Effect layer", () => {
  it("provides the core's Publisher over the store in context, and closes with its scope", async () => {
    const { Layer, ManagedRuntime } = await import("effect")
    const { createServer } = await import("node:http")
    const { Publisher, Relay, SyncStore, MemoryStore: Memory } = await import("@clerk-sync/core")
    const { SocketIo, layer } = await import("../src/SocketIoRealtime.ts")
    const http = createServer()
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve))
    const url = `http://127.0.0.1:${(http.address() as { port: number }).port}`
    const runtime = ManagedRuntime.make(layer({ httpServer: http, auth: { adminToken: ADMIN_TOKEN }, pollIntervalMs: 0 }).pipe(Layer.provideMerge(Memory.layer)))
    try {
      const realtime = await runtime.runPromise(SocketIo.use((r) => Effect.succeed(r)))
      await realtime.ready
      const admin = await connectReady(url, { token: ADMIN_TOKEN })
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      clerk.createOrganization({ name: "Acme" })
      const { Ingest } = await import("@clerk-sync/core")
      await runtime.runPromise(Effect.forEach(clerk.events, (e) => Ingest.ingest(e)).pipe(Effect.andThen(Relay.drain())))
      await waitFor(() => admin.delivered.length === 1)
      assert.strictEqual((await runtime.runPromise(Publisher.Publisher.use((p) => Effect.succeed(p)))).name, "socket.io")
      assert.isDefined(await runtime.runPromise(SyncStore.SyncStore.use((s) => Effect.succeed(s))))
      await runtime.dispose()
      await waitFor(() => admin.socket.disconnected, "disconnected when the scope closes")
    } finally {
      await runtime.dispose()
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    }
  })
})

describe("SocketIoRealtime: shutdown", () => {
  it("closing the HTTP server tells the clients `shutdown` and disconnects them, so the close completes", async () => {
    const server = await startServer(await newStore())
    try {
      const admin = await connectReady(server.url, { token: ADMIN_TOKEN })
      const user = await connectReady(server.url, { token: await server.issuer.sign({ sub: "user_alice" }) })
      // A WebSocket holds `server.close()` open until it ends: without the realtime's part, this never resolves.
      const closed = new Promise<"closed">((resolve) => server.http.close(() => resolve("closed")))
      assert.strictEqual(await closed, "closed")
      for (const r of [admin, user]) {
        assert.deepStrictEqual(r.closings, [{ code: "shutdown", message: "the server is shutting down; reconnect with your lastSeq" }])
        assert.isFalse(r.socket.connected)
      }
    } finally {
      await server.realtime.close()
    }
  })
})

describe("SocketIoRealtime: token expiry and refresh", () => {
  // The server's clock runs 58 s ahead and tolerates no skew: a token signed for 60 s (just after a
  // second begins, `exp` being in whole seconds) expires about 2 s later; one for 600 s lasts the test.
  const startSkewed = async (options: Partial<Options> = {}) => {
    const issuer = await makeIssuer()
    const server = await startServer(await newStore(), {
      issuer,
      auth: { jwtKey: issuer.publicPem, adminToken: ADMIN_TOKEN, clockToleranceSeconds: 0, now: () => Date.now() + 58_000 },
      ...options
    })
    const short = async (sub: string) => {
      await sleep(1_000 - (Date.now() % 1_000))
      return issuer.sign({ sub, expiresIn: 60 })
    }
    const shortAdmin = async () => {
      await sleep(1_000 - (Date.now() % 1_000))
      return createAdminSessionToken({ adminToken: ADMIN_TOKEN, ttlSeconds: 60 })
    }
    return { server, short, shortAdmin, long: (sub: string) => issuer.sign({ sub, expiresIn: 600 }) }
  }
  const refresh = (r: Recorder, token: unknown): Promise<RefreshResult> => r.socket.timeout(5_000).emitWithAck(REFRESH, { token })
  const expired = (r: Recorder) => r.closings.some((c) => (c as { code?: string }).code === "auth_expired") && r.socket.disconnected
  const orgNames = (r: Recorder) => r.delivered.flatMap((d) => (d.name === "organization.updated" ? [d.organization.name] : []))

  it("closes a connection when its token expires, saying auth_expired: it hears nothing more", async () => {
    const { server, short } = await startSkewed()
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice" })
      const acme = clerk.createOrganization({ name: "Acme" })
      clerk.tick().addMember(alice, acme)
      await server.send(clerk.events)
      const a = await connectReady(server.url, { token: await short(alice) })
      const admin = await connectReady(server.url, { token: ADMIN_TOKEN })
      const expiresIn = a.hellos[0]!.expiresIn
      assert.isNotNull(expiresIn, "the client is told how long its connection lasts")
      assert.isAtMost(expiresIn!, 2_000)
      assert.isNull(admin.hellos[0]!.expiresIn, "the raw admin token does not expire")

      await waitFor(() => expired(a), "the expired connection closed")
      assert.deepStrictEqual(a.closings, [{
        code: "auth_expired",
        message: "the session token expired; reconnect with a fresh token and your lastSeq (or refresh it before it expires)"
      }])
      const start = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "Acme Inc" })
      await server.send(clerk.events.slice(start))
      await waitFor(() => admin.delivered.length === 1, "the admin hears the update")
      await sleep(50)
      assert.deepStrictEqual(a.delivered, [], "nothing reaches an expired connection")
      assert.isTrue(admin.socket.connected)
      assert.deepStrictEqual(admin.closings, [])
      admin.close()
    } finally {
      await server.close()
    }
  })

  it("admin session tokens expire the same way", async () => {
    const { server, shortAdmin } = await startSkewed()
    try {
      const dashboard = await connectReady(server.url, { token: await shortAdmin() })
      assert.isNotNull(dashboard.hellos[0]!.expiresIn)
      await waitFor(() => expired(dashboard), "the expired admin connection closed")
    } finally {
      await server.close()
    }
  })

  it("a refresh before expiry keeps the connection for as long as the new token, receiving without a gap", async () => {
    const { server, short, long } = await startSkewed()
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice" })
      const acme = clerk.createOrganization({ name: "Acme" })
      clerk.tick().addMember(alice, acme)
      await server.send(clerk.events)
      const fresh = await long(alice)
      const token = await short(alice)
      const refreshed = await connectReady(server.url, { token })
      const control = await connectReady(server.url, { token }) // the same token, not refreshed
      const result = await refresh(refreshed, fresh)
      assert.isTrue(result.ok, JSON.stringify(result))
      if (result.ok) assert.isAbove(result.expiresIn!, 500_000, "it now lasts as long as the new token")

      await waitFor(() => expired(control), "the control connection expired")
      const start = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "Acme Inc" })
      clerk.tick().updateUser(alice, { firstName: "Alicia" })
      await server.send(clerk.events.slice(start))
      await waitFor(() => refreshed.delivered.length === 2, "the refreshed connection hears both")
      assert.isTrue(refreshed.socket.connected)
      assert.deepStrictEqual(refreshed.closings, [])
      assert.deepStrictEqual(names(refreshed.delivered), ["organization.updated", "user.updated"])
      refreshed.close()
    } finally {
      await server.close()
    }
  })

  it("refuses another user's token, another kind and a bad one: the connection keeps its first expiry", async () => {
    const { server, short, shortAdmin, long } = await startSkewed()
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice" })
      const bob = clerk.createUser({ firstName: "Bob" })
      await server.send(clerk.events)
      const bobs = await long(bob)
      const a = await connectReady(server.url, { token: await short(alice) })
      const codes = async (r: Recorder, tokens: ReadonlyArray<unknown>) => {
        const out: Array<string> = []
        for (const t of tokens) {
          const result = await refresh(r, t)
          out.push(result.ok ? "ok" : result.code)
        }
        return out
      }
      assert.deepStrictEqual(
        await codes(a, [bobs, ADMIN_TOKEN, "not-a-jwt", undefined]),
        ["identity_mismatch", "identity_mismatch", "malformed_token", "missing_token"]
      )
      await waitFor(() => expired(a), "alice's connection expired all the same")

      const dashboard = await connectReady(server.url, { token: await shortAdmin() })
      assert.deepStrictEqual(await codes(dashboard, [await long(alice)]), ["identity_mismatch"], "an admin connection does not become a user's")
      const renewed = await refresh(dashboard, await createAdminSessionToken({ adminToken: ADMIN_TOKEN, ttlSeconds: 600 }))
      assert.isTrue(renewed.ok, "an admin connection is renewed with a new admin session token")
      dashboard.close()
    } finally {
      await server.close()
    }
  })

  it("a refresh decides the rooms again, and the connection misses nothing and gets nothing twice meanwhile", async () => {
    const memberOf = new Map<string, ReadonlyArray<string>>()
    const { server, long } = await startSkewed({ organizationsOf: async (user) => memberOf.get(user) ?? [] })
    try {
      const clerk = new ClerkSimulator.ClerkSimulator({ startAt: T0 })
      const alice = clerk.createUser({ firstName: "Alice" })
      const acme = clerk.createOrganization({ name: "Acme" })
      const globex = clerk.createOrganization({ name: "Globex" })
      await server.send(clerk.events)
      memberOf.set(alice, [acme]) // what the app lets alice hear, outside of Clerk's memberships
      const a = await connectReady(server.url, { token: await long(alice) })

      let start = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "Acme 1" })
      clerk.updateOrganization(globex, { name: "Globex 1" })
      await server.send(clerk.events.slice(start))
      await waitFor(() => a.delivered.length === 1, "acme's update")

      memberOf.set(alice, [globex])
      start = clerk.events.length
      for (let i = 0; i < 20; i++) clerk.tick().updateUser(alice, { firstName: `Alice ${i}` })
      const refreshing = refresh(a, await long(alice))
      await server.send(clerk.events.slice(start)) // while the rooms are decided again
      assert.isTrue((await refreshing).ok)
      start = clerk.events.length
      clerk.tick().updateOrganization(acme, { name: "Acme 2" })
      clerk.updateOrganization(globex, { name: "Globex 2" })
      await server.send(clerk.events.slice(start))

      await waitFor(() => orgNames(a).length === 2, "globex's update")
      await sleep(50)
      assert.deepStrictEqual(orgNames(a), ["Acme 1", "Globex 2"], "acme before the refresh, globex after")
      const firstNames = a.delivered.flatMap((d) => (d.name === "user.updated" ? [d.user.firstName] : []))
      assert.deepStrictEqual(firstNames, Array.from({ length: 20 }, (_, i) => `Alice ${i}`), "each once, in order")
      assert.isTrue(seqsIncrease(a.delivered))
      assert.strictEqual(a.hellos.length, 1, "a refresh is not a new connection")
      assert.strictEqual(a.readies.length, 1)
      a.close()
    } finally {
      await server.close()
    }
  })
})
