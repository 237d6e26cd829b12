/**
 * The core's publisher contract, run against the Socket.IO publisher: subscribers are real
 * socket.io-client connections with verified tokens; their rooms are decided by the server (here
 * from a fixed membership table instead of the store, since the contract's notifications are not in
 * the store's outbox).
 */
import { MemoryStore } from "@clerk-sync/core"
import { publisherContract } from "@clerk-sync/core/testing"
import { Effect } from "effect"
import { ADMIN_TOKEN, connectReady, startServer } from "./utils/harness.ts"
import { makeIssuer } from "./utils/keys.ts"

publisherContract("socket.io", async () => {
  const issuer = await makeIssuer()
  const memberships = new Map<string, ReadonlyArray<string>>()
  const server = await startServer(await Effect.runPromise(MemoryStore.make), {
    issuer,
    organizationsOf: async (userId) => memberships.get(userId) ?? []
  })
  const clients: Array<{ close: () => void }> = []
  let anonymous = 0
  return {
    publisher: server.realtime.publisher,
    subscribe: async (audiences) => {
      let token: string
      if (audiences.length === 1 && audiences[0] === "admin") {
        token = ADMIN_TOKEN
      } else {
        const own = audiences.find((a) => a.startsWith("user:"))
        const userId = own ? own.slice(5) : `user_contract_${++anonymous}`
        memberships.set(userId, audiences.filter((a) => a.startsWith("org:")).map((a) => a.slice(4)))
        token = await issuer.sign({ sub: userId, expiresIn: 600 })
      }
      const r = await connectReady(server.url, { token })
      clients.push(r)
      return { received: () => r.delivered, close: async () => r.close() }
    },
    close: async () => {
      for (const c of clients) c.close()
      await server.close()
    }
  }
})
