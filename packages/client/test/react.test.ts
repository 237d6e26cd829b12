/**
 * The hook in a real React renderer (react-test-renderer), against a real clerk-sync server.
 */
import { assert, describe, it } from "@effect/vitest"
import { createElement, useEffect } from "react"
import { act, create, type ReactTestRenderer } from "react-test-renderer"
import { type RoleChange } from "../src/index.ts"
import { useClerkSync, type UseClerkSyncResult } from "../src/react.ts"
import { startServer, waitFor } from "./utils/server.ts"

;(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true
// react-test-renderer still works with React 19 and needs no DOM; it says it is deprecated, once.
const consoleError = console.error
console.error = (...args: Array<unknown>) => {
  if (typeof args[0] === "string" && args[0].startsWith("react-test-renderer is deprecated")) return
  consoleError(...args)
}

describe("useClerkSync", () => {
  it("gives the signed-in user's organizations, roles and status, live; role changes surface", async () => {
    const server = await startServer()
    const { clerk } = server
    const alice = clerk.createUser({ firstName: "Alice" })
    const acme = clerk.createOrganization({ name: "Acme" })
    const zeta = clerk.createOrganization({ name: "Zeta" })
    clerk.addMember(alice, zeta, "org:admin")
    await server.flush()
    let latest: UseClerkSyncResult | null = null
    const renders: Array<string> = []
    const roleChanges: Array<RoleChange> = []
    const App = () => {
      const sync = useClerkSync({
        url: server.url,
        storage: null,
        getToken: () => server.issuer.sign(alice),
        onRoleChange: (c) => roleChanges.push(c)
      })
      latest = sync
      useEffect(() => void renders.push(`${sync.status}:${sync.organizations.map((o) => `${o.organization.name}=${o.role}`).join(",")}`))
      return null
    }
    let renderer: ReactTestRenderer | undefined
    try {
      await act(async () => {
        renderer = create(createElement(App))
      })
      await act(async () => {
        await waitFor(() => latest?.status === "live", "live")
      })
      assert.deepStrictEqual(latest!.organizations.map((o) => [o.organization.name, o.role]), [["Zeta", "org:admin"]])
      assert.strictEqual(latest!.roleIn(zeta), "org:admin")
      assert.strictEqual(latest!.user?.firstName, "Alice")

      clerk.tick().addMember(alice, acme)
      clerk.tick().setRole(alice, zeta, "org:member")
      clerk.tick().updateOrganization(acme, { name: "Acme Inc" })
      await act(async () => {
        await server.flush()
        await waitFor(() => latest!.organizations.length === 2 && latest!.organizations[0]!.organization.name === "Acme Inc")
      })
      assert.deepStrictEqual(latest!.organizations.map((o) => [o.organization.name, o.role]), [["Acme Inc", "org:member"], ["Zeta", "org:member"]])
      assert.deepStrictEqual(roleChanges.map((c) => [c.organizationId, c.previousRole, c.role]), [
        [zeta, null, "org:admin"],
        [acme, null, "org:member"],
        [zeta, "org:admin", "org:member"]
      ])
      clerk.tick().removeMember(alice, acme)
      await act(async () => {
        await server.flush()
        await waitFor(() => latest!.organizations.length === 1)
      })
      assert.strictEqual(latest!.roleIn(acme), null)
      assert.deepStrictEqual(roleChanges.at(-1), { organizationId: acme, organizationName: "Acme Inc", previousRole: "org:member", role: null })
      assert.include(renders, "live:Zeta=org:admin")
    } finally {
      await act(async () => renderer?.unmount())
      assert.strictEqual(latest!.client?.status, "closed", "unmounting closes the connection")
      await server.close()
    }
  })
})
