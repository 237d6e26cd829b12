/**
 * The delivery property. Two organizations, four users, every user connected (reconnecting now and
 * then, while events keep coming); a random history of memberships created, changed and ended,
 * organizations and users updated or deleted. For every user, what it received over all its
 * connections is EXACTLY the notifications it was entitled to, once each, in `seq` order:
 * those addressed to itself, and those of an organization it was a live member of at that `seq`
 * (from the `membership.created` to the `membership.deleted`, both included).
 *
 * The oracle is independent of the server's room logic: membership intervals are read from the
 * outbox itself (what the planner decided), not from the rooms.
 *
 * `PROP_RUNS=500` runs more; `PROP_CASE='[…commands…]'` replays one counterexample; `PROP_DEBUG=1`
 * prints each command.
 */
import { ClerkSimulator, MemoryStore, type Notification } from "@clerk-sync/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fc from "fast-check"
import { ADMIN_TOKEN, connectReady, record, type Recorder, sleep, startServer, waitFor } from "./utils/harness.ts"
import { makeIssuer } from "./utils/keys.ts"

type Command =
  | { readonly k: "join"; readonly u: number; readonly o: number; readonly admin: boolean }
  | { readonly k: "leave"; readonly u: number; readonly o: number }
  | { readonly k: "role"; readonly u: number; readonly o: number; readonly admin: boolean }
  | { readonly k: "updateOrg"; readonly o: number }
  | { readonly k: "updateUser"; readonly u: number }
  | { readonly k: "deleteOrg"; readonly o: number }
  | { readonly k: "deleteUser"; readonly u: number }
  | { readonly k: "flush"; readonly wait: boolean }
  | { readonly k: "reconnect"; readonly u: number; readonly ready: boolean }

const U = 4
const O = 2
const user = fc.nat({ max: U - 1 })
const org = fc.nat({ max: O - 1 })
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant("join" as const), u: user, o: org, admin: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant("leave" as const), u: user, o: org }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("role" as const), u: user, o: org, admin: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant("updateOrg" as const), o: org }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("updateUser" as const), u: user }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("deleteOrg" as const), o: org }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("deleteUser" as const), u: user }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant("flush" as const), wait: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("reconnect" as const), u: user, ready: fc.boolean() }) }
)

/** The notifications `clerkUserId` is entitled to, from the full stream (seq order). */
export const entitled = (stream: ReadonlyArray<Notification.Stored>, clerkUserId: string): ReadonlyArray<number> => {
  const member = new Set<string>()
  const out: Array<number> = []
  for (const n of stream) {
    const p = n.payload
    const mine = (p.name === "membership.created" || p.name === "membership.updated" || p.name === "membership.deleted") &&
      p.membership.user.clerkUserId === clerkUserId
    if (mine && p.name === "membership.created") member.add(`org:${p.membership.organization.clerkOrgId}`)
    if (n.audiences.includes(`user:${clerkUserId}`) || n.audiences.some((a) => member.has(a))) out.push(n.seq)
    if (mine && p.name === "membership.deleted") member.delete(`org:${p.membership.organization.clerkOrgId}`)
    if (p.name === "organization.deleted") member.delete(`org:${p.organization.clerkOrgId}`)
  }
  return out
}

describe("delivery property", () => {
  it("each member receives exactly its entitled notifications, once, in seq order, across reconnections", async () => {
    const issuer = await makeIssuer()
    let run = 0
    await fc.assert(
      fc.asyncProperty(process.env.PROP_CASE ? fc.constant(JSON.parse(process.env.PROP_CASE) as Array<Command>) : fc.array(command, { minLength: 5, maxLength: 40 }), async (commands) => {
        run++
        if (process.env.PROP_DEBUG) console.error(`run ${run}`, JSON.stringify(commands))
        const store = await Effect.runPromise(MemoryStore.make)
        const server = await startServer(store, { issuer, readBatchSize: 3, logSize: 4 })
        const clients: Array<Recorder> = []
        try {
          const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: `p${run}_`, startAt: Date.UTC(2026, 0, 1) })
          const users = Array.from({ length: U }, (_, i) => clerk.createUser({ firstName: `U${i}`, email: `u${i}@example.com` }))
          const orgs = Array.from({ length: O }, (_, i) => clerk.createOrganization({ name: `Org${i}` }))
          clerk.addMember(users[0]!, orgs[0]!)
          clerk.addMember(users[1]!, orgs[1]!)
          await server.send(clerk.events)
          let sent = clerk.events.length
          const tokens = await Promise.all(users.map((u) => issuer.sign({ sub: u, expiresIn: 600 })))
          const sessions: Array<Array<Recorder>> = users.map(() => [])
          const deleted = new Set<number>()
          const connect = async (i: number, lastSeq: number | undefined, ready: boolean) => {
            const r = ready
              ? await connectReady(server.url, { token: tokens[i], lastSeq })
              : record(server.url, { token: tokens[i], lastSeq })
            if (!ready) await r.connected
            sessions[i]!.push(r)
            clients.push(r)
          }
          for (let i = 0; i < U; i++) await connect(i, undefined, true)
          const admin = await connectReady(server.url, { token: ADMIN_TOKEN })
          clients.push(admin)
          const firstSeq = admin.readies[0]!.seq

          const isMember = (u: number, o: number) =>
            clerk.liveMemberships().some((m) => m.userId === users[u] && m.organizationId === orgs[o])
          const orgLive = (o: number) => !clerk.organizations.get(orgs[o]!)!.deleted
          const userLive = (u: number) => !deleted.has(u)
          const flush = async () => {
            const batch = clerk.events.slice(sent)
            sent = clerk.events.length
            await server.send(batch)
          }
          const debug = (...args: Array<unknown>) => { if (process.env.PROP_DEBUG) console.error(...args) }
          for (const c of commands) {
            debug("cmd", JSON.stringify(c))
            clerk.tick()
            switch (c.k) {
              case "join":
                if (userLive(c.u) && orgLive(c.o) && !isMember(c.u, c.o)) clerk.addMember(users[c.u]!, orgs[c.o]!, c.admin ? "org:admin" : "org:member")
                break
              case "leave":
                if (isMember(c.u, c.o)) clerk.removeMember(users[c.u]!, orgs[c.o]!)
                break
              case "role":
                if (isMember(c.u, c.o)) clerk.setRole(users[c.u]!, orgs[c.o]!, c.admin ? "org:admin" : "org:member")
                break
              case "updateOrg":
                if (orgLive(c.o)) clerk.updateOrganization(orgs[c.o]!, { name: `Org${c.o} @${clerk.now}` })
                break
              case "updateUser":
                if (userLive(c.u)) clerk.updateUser(users[c.u]!, { firstName: `U${c.u} @${clerk.now}` })
                break
              case "deleteOrg":
                if (orgLive(c.o)) clerk.deleteOrganization(orgs[c.o]!)
                break
              case "deleteUser":
                if (userLive(c.u)) {
                  clerk.deleteUser(users[c.u]!)
                  deleted.add(c.u)
                }
                break
              case "flush":
                if (c.wait) await flush()
                else void flush()
                break
              case "reconnect": {
                if (!userLive(c.u)) break
                const last = sessions[c.u]!.at(-1)!
                last.close()
                const lastSeq = Math.max(last.delivered.at(-1)?.seq ?? 0, last.hellos.at(-1)?.seq ?? 0, last.readies.at(-1)?.seq ?? 0)
                await connect(c.u, lastSeq, c.ready)
                break
              }
            }
          }
          debug("final flush")
          await flush()
          await sleep(5)
          await flush()
          debug("flushed")
          const history = await Effect.runPromise(store.readOutbox(0, ["admin"], 1_000_000))
          const stream = history.filter((n) => n.seq > firstSeq)
          await waitFor(() => admin.delivered.length === stream.length, "admin receives everything")
          assert.deepStrictEqual(admin.delivered.map((d) => d.seq), stream.map((n) => n.seq))
          for (let i = 0; i < U; i++) {
            const expected = entitled(history, users[i]!).filter((seq) => seq > firstSeq)
            const got = () => sessions[i]!.flatMap((s) => s.delivered.map((d) => d.seq))
            await waitFor(() => got().length >= expected.length, `user ${i} catches up`, 5_000).catch(() => {})
            await sleep(2)
            assert.deepStrictEqual(got(), expected, `user ${i}: exactly its entitled notifications, in order, once`)
          }
        } finally {
          if (process.env.PROP_DEBUG) console.error("closing")
          for (const c of clients) c.close()
          await server.close()
          if (process.env.PROP_DEBUG) console.error("closed")
        }
      }),
      { numRuns: Number(process.env.PROP_RUNS ?? 60), endOnFailure: true }
    )
  }, 180_000)
})
