/**
 * Where the prebuilt browser bundles are, for a server that serves them (Node only).
 *
 * @example
 * import { readFileSync } from "node:fs"
 * import { browserBundlePath } from "@clerk-sync/client/browser-bundle"
 * const js = readFileSync(browserBundlePath) // serve as text/javascript at /realtime/clerk-sync-client.mjs
 *
 * @since 0.1.0
 */
import { fileURLToPath } from "node:url"

/** The ES module bundle (`import { connect } from …`). @category constants */
export const browserBundlePath: string = fileURLToPath(new URL("../browser/clerk-sync-client.mjs", import.meta.url))

/** The classic-script bundle (defines `window.ClerkSync`). @category constants */
export const browserScriptPath: string = fileURLToPath(new URL("../browser/clerk-sync-client.iife.js", import.meta.url))
