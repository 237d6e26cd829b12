import { Notification as CoreNotification } from "@clerk-sync/core"
import { assert, describe, it } from "@effect/vitest"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Server } from "socket.io"
import { type ClerkSyncClient, connect, type ConnectOptions, memoryStorage, type Notification, type Status } from "../src/index.ts"
import { ADMIN_TOKEN, sleep, startServer, type TestServer, waitFor } from "./utils/server.ts"

// The client's wire types are the core's, structurally (checked at compile time, both ways).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const sameTypes: Same<Notification, CoreNotification.Delivered> = true
const sameNames: Same<Notification["name"], CoreNotification.Name> = true

const open = (server: TestServer, options: Partial<ConnectOptions> & Pick<ConnectOptions, "getToken">) => {
  const client = connect({ url: server.url, storage: null, transports: ["websocket"], ...options })
  const statuses: Array<Status> = []
  const received: Array<Notification> = []
  client.onStatus((s) => statuses.push(s))
  client.onAny((n) => received.push(n))
  return { client, statuses, received }
}

const track = (client: ClerkSyncClient) => {
  const received: Array<Notification> = []
  client.onAny((n) => received.push(n))
  return received
}

describe("client", () => {
  it("receives typed notifications in seq order, and says connecting → catching-up → live", async () => {
    assert.isTrue(sameTypes && sameNames)
    const server = await startServer()
    try {
      const { clerk } = server
      const alice = clerk.createUser({ firstName: "Alice" })
      const acme = clerk.createOrganization({ name: "Acme" })
      clerk.addMember(alice, acme)
      await server.flush()
      const { client, statuses, received } = open(server, { getToken: () => server.issuer.sign(alice) })
      const roles: Array<string> = []
      client.on("membership.updated", (n) => roles.push(`${n.previousRole}→${n.role}`))
      await client.live()
      assert.deepStrictEqual(statuses, ["connecting", "catching-up", "live"])
      assert.deepStrictEqual(client.identity, { kind: "user", userId: alice })
      assert.deepStrictEqual(client.snapshot?.organizations.map((o) => o.organization.name), ["Acme"])
      clerk.tick().setRole(alice, acme, "org:admin")
      clerk.tick().updateOrganization(acme, { name: "Acme Inc" })
      await server.flush()
      await waitFor(() => received.length === 2)
      assert.deepStrictEqual(received.map((n) => n.name), ["membership.updated", "organization.updated"])
      assert.deepStrictEqual(roles, ["org:member→org:admin"])
      assert.strictEqual(client.lastSeq, received[1]!.seq)
      client.close()
      assert.strictEqual(client.status, "closed")
    } finally {
      await server.close()
    }
  })

  it("resumes from the stored seq after a restart: nothing missed, nothing twice", async () => {
    const server = await startServer()
    try {
      const { clerk } = server
      const alice = clerk.createUser({ firstName: "Alice" })
      const acme = clerk.createOrganization({ name: "Acme" })
      clerk.addMember(alice, acme)
      await server.flush()
      const storage = memoryStorage()
      const getToken = () => server.issuer.sign(alice)
      const first = connect({ url: server.url, getToken, storage, transports: ["websocket"] })
      const got1 = track(first)
      await first.live()
      clerk.tick().updateOrganization(acme, { name: "one" })
      await server.flush()
      await waitFor(() => got1.length === 1)
      first.close() // the app quits
      for (const name of ["two", "three"]) clerk.tick().updateOrganization(acme, { name })
      await server.flush()
      const second = connect({ url: server.url, getToken, storage, transports: ["websocket"] }) // the app restarts
      const got2 = track(second)
      await second.live()
      clerk.tick().updateOrganization(acme, { name: "four" })
      await server.flush()
      await waitFor(() => got2.length === 3)
      const names = [...got1, ...got2].map((n) => (n.name === "organization.updated" ? n.organization.name : n.name))
      assert.deepStrictEqual(names, ["one", "two", "three", "four"])
      second.close()
    } finally {
      await server.close()
    }
  })

  it("keeps a resume point per user: signing in as someone else never resumes from theirs", async () => {
    const server = await startServer()
    try {
      const { clerk } = server
      const alice = clerk.createUser({ firstName: "Alice" })
      const bob = clerk.createUser({ firstName: "Bob" })
      await server.flush()
      const storage = memoryStorage()
      const a = connect({ url: server.url, getToken: () => server.issuer.sign(alice), storage, transports: ["websocket"] })
      await a.live()
      clerk.tick().updateUser(alice, { firstName: "Alicia" })
      await server.flush()
      await waitFor(() => a.lastSeq === 3)
      a.close()
      await sleep(20)
      clerk.tick().updateUser(bob, { firstName: "Robert" })
      await server.flush()
      const b = connect({ url: server.url, getToken: () => server.issuer.sign(bob), storage, transports: ["websocket"] })
      const got = track(b)
      await b.live()
      await sleep(50)
      assert.deepStrictEqual(got, [], "Bob starts fresh: he is not replayed from Alice's seq")
      assert.strictEqual(b.lastSeq, 4)
      b.close()
    } finally {
      await server.close()
    }
  })

  it("drops a seq it already has, whatever the server sends", async () => {
    const http = createServer()
    const io = new Server(http)
    io.of("/clerk-sync").on("connection", (socket) => {
      socket.emit("clerk-sync:hello", { version: 1, identity: { kind: "admin" }, seq: 0, resync: false })
      const org = { id: "o", clerkOrgId: "org_1", name: "Acme", slug: null, imageUrl: null, publicMetadata: {}, deleted: false }
      for (const seq of [1, 2, 2, 1, 3, 3]) socket.emit("organization.updated", { name: "organization.updated", seq, organization: org, changes: {} })
      socket.emit("clerk-sync:ready", { seq: 3, snapshot: null })
    })
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve))
    const client = connect({ url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, getToken: () => "x", storage: null })
    const got = track(client)
    await client.live()
    assert.deepStrictEqual(got.map((n) => n.seq), [1, 2, 3])
    client.close()
    io.close()
  })

  it("gets a fresh token at each connection: an expired one is retried with a new one", async () => {
    const server = await startServer()
    try {
      const alice = server.clerk.createUser({ firstName: "Alice" })
      await server.flush()
      let calls = 0
      const errors: Array<string> = []
      const client = connect({
        url: server.url,
        storage: null,
        transports: ["websocket"],
        getToken: async () => (++calls === 1 ? server.issuer.sign(alice, -60) : server.issuer.sign(alice))
      })
      client.onError((e) => errors.push(e.code))
      await client.live()
      assert.deepStrictEqual(errors, ["expired_token"])
      assert.strictEqual(calls, 2)
      // The server drops the connection: the client reconnects, with a fresh token again.
      server.realtime.namespace.local.disconnectSockets(true)
      await waitFor(() => calls === 3 && client.status === "live", "reconnected")
      client.close()
    } finally {
      await server.close()
    }
  })

  it("stops on a token that cannot be fixed by retrying, until reconnect()", async () => {
    const server = await startServer()
    try {
      const alice = server.clerk.createUser({ firstName: "Alice" })
      await server.flush()
      let token = "not-a-jwt"
      const client = connect({ url: server.url, storage: null, transports: ["websocket"], getToken: () => token })
      const refused = await client.live().then(() => null, (e: Error & { code?: string }) => e.code)
      assert.strictEqual(refused, "malformed_token", "live() rejects when refused")
      assert.strictEqual(client.error?.code, "malformed_token")
      await sleep(1_200)
      assert.strictEqual(client.status, "unauthorized", "no retry loop with a bad token")
      token = await server.issuer.sign(alice)
      client.reconnect()
      await client.live()
      client.close()
    } finally {
      await server.close()
    }
  })

  it("a deleted user is told so and not reconnected", async () => {
    const server = await startServer()
    try {
      const alice = server.clerk.createUser({ firstName: "Alice" })
      await server.flush()
      const { client, received } = open(server, { getToken: () => server.issuer.sign(alice) })
      await client.live()
      server.clerk.tick().deleteUser(alice)
      await server.flush()
      await waitFor(() => client.status === "unauthorized")
      assert.strictEqual(client.error?.code, "user_deleted")
      assert.deepStrictEqual(received.map((n) => n.name), ["user.deleted"])
      client.close()
    } finally {
      await server.close()
    }
  })

  it("tells the app to resync when it was away beyond the retention window", async () => {
    const server = await startServer()
    try {
      const alice = server.clerk.createUser({ firstName: "Alice" })
      for (let i = 0; i < 3; i++) server.clerk.tick().updateUser(alice, { firstName: `A${i}` })
      await server.flush()
      const { Effect } = await import("effect")
      await Effect.runPromise(server.store.prune({ inboxBefore: 0, outboxBefore: Number.MAX_SAFE_INTEGER }))
      const resyncs: Array<number> = []
      const client = connect({ url: server.url, storage: null, lastSeq: 1, transports: ["websocket"], getToken: () => server.issuer.sign(alice) })
      client.onResync((h) => resyncs.push(h.seq))
      await client.live()
      assert.deepStrictEqual(resyncs, [4])
      assert.strictEqual(client.lastSeq, 4)
      assert.strictEqual(client.snapshot?.user?.firstName, "A2")
      client.close()
    } finally {
      await server.close()
    }
  })

  it("connects an admin dashboard with the admin token", async () => {
    const server = await startServer()
    try {
      const client = connect({ url: server.url, storage: null, getToken: () => ADMIN_TOKEN })
      const got = track(client)
      await client.live()
      server.clerk.createUser({ firstName: "Zed" })
      await server.flush()
      await waitFor(() => got.length === 1)
      assert.strictEqual(got[0]!.name, "user.created")
      client.close()
    } finally {
      await server.close()
    }
  })
})

describe("client: token expiry", () => {
  // The server's clock runs 58 s ahead and tolerates no skew: a token signed for 60 s just after a
  // second begins (`exp` is in whole seconds) expires about 2 s later; one for 600 s lasts the test.
  const skewed = () => startServer(undefined, { now: () => Date.now() + 58_000, clockToleranceSeconds: 0 })
  const shortLived = async (server: TestServer, sub: string) => {
    await sleep(1_000 - (Date.now() % 1_000))
    const token = await server.issuer.sign(sub, 60)
    const exp = (JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { exp: number }).exp
    return { token, closesAt: exp * 1_000 - 58_000 } // when the server closes it, on this machine's clock
  }

  it("hands over a fresh token before the connection expires: the same connection stays live, nothing missed", async () => {
    const server = await skewed()
    try {
      const alice = server.clerk.createUser({ firstName: "Alice" })
      await server.flush()
      const first = await shortLived(server, alice)
      let calls = 0
      const errors: Array<string> = []
      const { client, statuses, received } = open(server, {
        getToken: () => (++calls === 1 ? first.token : server.issuer.sign(alice, 600))
      })
      client.onError((e) => errors.push(e.code))
      await client.live()
      const id = client.socket.id
      await waitFor(() => Date.now() > first.closesAt + 500, "the first token's end")
      server.clerk.tick().updateUser(alice, { firstName: "Alicia" })
      await server.flush()
      await waitFor(() => received.length === 1, "the update")
      assert.isAtLeast(calls, 2, "a fresh token was asked for")
      assert.strictEqual(client.socket.id, id, "on the same connection")
      assert.deepStrictEqual(statuses, ["connecting", "catching-up", "live"], "never disconnected")
      assert.deepStrictEqual(errors, [])
      client.close()
    } finally {
      await server.close()
    }
  })

  it("when the token expires anyway (auth_expired), reconnects with a fresh one and resumes by seq: nothing missed, nothing twice", async () => {
    const server = await skewed()
    try {
      const { clerk } = server
      const alice = clerk.createUser({ firstName: "Alice" })
      const acme = clerk.createOrganization({ name: "Acme" })
      clerk.addMember(alice, acme)
      await server.flush()
      const first = await shortLived(server, alice)
      // An app whose token cache renews only when told: it hands the same token back until the
      // server closes the connection, then a fresh one once the test has let events happen.
      let told = false
      let letIn!: () => void
      const gate = new Promise<void>((resolve) => (letIn = resolve))
      const { client, statuses, received } = open(server, {
        getToken: async () => {
          if (!told) return first.token
          await gate
          return server.issuer.sign(alice, 600)
        }
      })
      const errors: Array<string> = []
      client.onError((e) => {
        errors.push(e.code)
        if (e.code === "auth_expired") told = true
      })
      await client.live()
      clerk.tick().updateOrganization(acme, { name: "one" })
      await server.flush()
      await waitFor(() => told && client.status === "connecting", "the connection closed for expiry")
      for (const name of ["two", "three"]) clerk.tick().updateOrganization(acme, { name })
      await server.flush() // while the client is away
      letIn()
      await client.live()
      clerk.tick().updateOrganization(acme, { name: "four" })
      await server.flush()
      await waitFor(() => received.length === 4, "every update")
      await sleep(50)
      const names = received.map((n) => (n.name === "organization.updated" ? n.organization.name : n.name))
      assert.deepStrictEqual(names, ["one", "two", "three", "four"])
      assert.include(errors, "auth_expired")
      assert.deepStrictEqual(statuses.slice(-3), ["connecting", "catching-up", "live"])
      assert.notInclude(statuses, "unauthorized", "an expired token is not a refusal")
      client.close()
    } finally {
      await server.close()
    }
  })

  it("refresh() with another user's token reconnects as that user", async () => {
    const server = await startServer()
    try {
      const alice = server.clerk.createUser({ firstName: "Alice" })
      const bob = server.clerk.createUser({ firstName: "Bob" })
      await server.flush()
      let who = alice
      const { client } = open(server, { getToken: () => server.issuer.sign(who) })
      await client.live()
      await client.refresh()
      who = bob
      const refused = await client.refresh().then(() => null, (e: Error & { code?: string }) => e.code)
      assert.strictEqual(refused, "identity_mismatch")
      await waitFor(() => client.identity?.kind === "user" && client.identity.userId === bob && client.status === "live", "bob's connection")
      client.close()
    } finally {
      await server.close()
    }
  })

  it("a server shutting down is not a refusal: the client tries again", async () => {
    const server = await startServer()
    try {
      const { client } = open(server, { getToken: () => ADMIN_TOKEN })
      await client.live()
      await new Promise<void>((resolve) => server.http.close(() => resolve()))
      await waitFor(() => client.error?.code === "shutdown" && client.status === "connecting", "told shutdown")
      await sleep(100)
      assert.strictEqual(client.status, "connecting")
      client.close()
    } finally {
      await server.realtime.close()
    }
  })
})
