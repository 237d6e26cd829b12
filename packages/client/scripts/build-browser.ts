/**
 * Builds the browser bundles of the client (socket.io-client included), for pages that load it
 * without a bundler — the reference server's dashboard among them:
 * - `browser/clerk-sync-client.mjs`: ES module (`import { connect } from "/…/clerk-sync-client.mjs"`);
 * - `browser/clerk-sync-client.iife.js`: a classic script defining `window.ClerkSync`.
 *
 * Run `npm run build:browser -w @clerk-sync/client` after changing `src/` (a test fails while the
 * committed bundles are stale).
 */
import { build, type BuildOptions } from "esbuild"
import { writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))

const formats: ReadonlyArray<{ readonly file: string; readonly options: BuildOptions }> = [
  { file: "browser/clerk-sync-client.mjs", options: { format: "esm" } },
  { file: "browser/clerk-sync-client.iife.js", options: { format: "iife", globalName: "ClerkSync" } }
]

export const bundles: ReadonlyArray<{ readonly file: string; readonly options: BuildOptions }> = formats.map(({ file, options }) => ({
  file,
  options: {
    ...options,
    entryPoints: [`${root}src/index.ts`],
    bundle: true,
    minify: true,
    platform: "browser",
    target: ["es2020"],
    legalComments: "none",
    banner: { js: "/* @clerk-sync/client browser bundle (includes socket.io-client, MIT). Built by scripts/build-browser.ts. */" },
    write: false
  }
}))

/** The bundles' contents as built from the sources now. */
export const buildAll = async (): Promise<ReadonlyArray<{ readonly file: string; readonly text: string }>> =>
  Promise.all(bundles.map(async ({ file, options }) => {
    const result = await build(options)
    return { file, text: result.outputFiles![0]!.text }
  }))

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const { file, text } of await buildAll()) {
    writeFileSync(`${root}${file}`, text)
    console.log(`${file}: ${(text.length / 1024).toFixed(1)} KiB`)
  }
}
