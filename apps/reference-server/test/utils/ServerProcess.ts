/**
 * Starts the reference server as a real child process (the way `npm start` runs it) on a free
 * port, with a data directory and environment of the test's choosing, and stops it (SIGTERM, or
 * SIGKILL for crash tests).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"

const APP_DIR = resolve(import.meta.dirname, "../..")
// One process, as the Dockerfile runs it (the tsx CLI would start a second one, and a SIGKILL would
// then kill only the wrapper).
const TSX_LOADER = pathToFileURL(resolve(APP_DIR, "../../node_modules/tsx/dist/loader.mjs")).href

export const freePort = (): Promise<number> =>
  new Promise((ok, fail) => {
    const server = createServer()
    server.once("error", fail)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address ? address.port : 0
      server.close(() => ok(port))
    })
  })

export interface ServerProcess {
  readonly url: string
  readonly port: number
  readonly dataDir: string
  readonly env: Readonly<Record<string, string>>
  /** Everything the process printed so far. */
  readonly output: () => string
  /** The development secret the server created (or was given). */
  readonly webhookSecret: () => string
  readonly adminToken: () => string
  /** SIGTERM and wait for exit (graceful shutdown); resolves with the exit code. */
  readonly stop: () => Promise<number | null>
  /** SIGKILL: a crash. */
  readonly kill: () => Promise<void>
  readonly child: ChildProcess
}

export interface StartOptions {
  readonly dataDir?: string
  readonly port?: number
  readonly env?: Readonly<Record<string, string>>
  /** How long to wait for /readyz (default 60 s). */
  readonly timeoutMs?: number
}

export const startServer = async (options: StartOptions = {}): Promise<ServerProcess> => {
  const port = options.port ?? (await freePort())
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "clerk-sync-server-"))
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    NODE_ENV: "development",
    HOST: "127.0.0.1",
    PORT: String(port),
    CLERK_SYNC_DATA_DIR: dataDir,
    ...options.env
  }
  const child = spawn(process.execPath, ["--import", TSX_LOADER, "src/main.ts"], { cwd: APP_DIR, env, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout!.on("data", (b: Buffer) => (output += b.toString()))
  child.stderr!.on("data", (b: Buffer) => (output += b.toString()))
  const exited = new Promise<number | null>((ok) => child.once("exit", (code) => ok(code)))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  while (true) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}) before it was ready:\n${output}`)
    try {
      const res = await fetch(`${url}/readyz`)
      if (res.ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL")
      throw new Error(`the server was not ready in time:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  const secretFile = (name: string, envName: string) => () => env[envName] ?? readFileSync(join(dataDir, name), "utf8").trim()
  return {
    url,
    port,
    dataDir,
    env,
    output: () => output,
    webhookSecret: () => (env.CLERK_WEBHOOK_SIGNING_SECRET ?? readFileSync(join(dataDir, "webhook-secret"), "utf8").trim()).split(/[\s,]+/)[0]!,
    adminToken: secretFile("admin-token", "ADMIN_TOKEN"),
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM")
      return exited
    },
    kill: async () => {
      if (child.exitCode === null) child.kill("SIGKILL")
      await exited
    },
    child
  }
}
