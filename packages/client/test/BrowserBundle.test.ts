import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { pathToFileURL } from "node:url"
import { buildAll } from "../scripts/build-browser.ts"
import { browserBundlePath, browserScriptPath } from "../src/BrowserBundle.ts"
import type * as Client from "../src/index.ts"
import { ADMIN_TOKEN, startServer, waitFor } from "./utils/server.ts"

describe("browser bundle", () => {
  it("is up to date with the sources (npm run build:browser -w @clerk-sync/client)", async () => {
    for (const { file, text } of await buildAll()) {
      const committed = readFileSync(file.endsWith(".mjs") ? browserBundlePath : browserScriptPath, "utf8")
      assert.isTrue(committed === text, `${file} is stale: run npm run build:browser -w @clerk-sync/client`)
    }
  }, 30_000)

  it("runs on its own (no bundler, only the platform's WebSocket) and receives live events", async () => {
    const bundle = (await import(pathToFileURL(browserBundlePath).href)) as typeof Client
    const server = await startServer()
    try {
      const sync = bundle.connect({ url: server.url, getToken: async () => ADMIN_TOKEN, storage: null, transports: ["websocket"] })
      const statuses: Array<string> = []
      sync.onStatus((s) => statuses.push(s))
      const names: Array<string> = []
      sync.onAny((n) => names.push(n.name))
      await sync.live()
      server.clerk.createOrganization({ name: "Acme" })
      await server.flush()
      await waitFor(() => names.length === 1)
      assert.deepStrictEqual(names, ["organization.created"])
      assert.deepStrictEqual(statuses, ["connecting", "catching-up", "live"])
      sync.close()
    } finally {
      await server.close()
    }
  })
})
