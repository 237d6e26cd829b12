/**
 * The servers under test as real processes: the clerk-sync reference server (what `npm start`
 * runs) and the baseline, each a single Node process (`node --import tsx`, no wrapper process, so
 * SIGKILL is a real crash and /proc shows the server's own memory), on a port of our choosing,
 * logging to a file.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..")
export const REFERENCE_SERVER_DIR = join(ROOT, "apps/reference-server")
const BASELINE = join(ROOT, "bench/baseline/server.ts")
const TSX = import.meta.resolve("tsx")

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export const newWebhookSecret = () => `whsec_${randomBytes(24).toString("base64")}`

export interface Memory {
  /** Resident set now (bytes). */
  readonly rss: number
  /** Peak resident set since start (bytes; VmHWM). */
  readonly peak: number
}

/** Reads a process's memory from /proc. */
export const memoryOf = (pid: number): Memory | undefined => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024
    return { rss: kb("VmRSS"), peak: kb("VmHWM") }
  } catch {
    return undefined
  }
}

export interface ServerHandle {
  readonly name: string
  readonly url: string
  readonly port: number
  readonly pid: number
  readonly secret: string
  readonly adminToken: string
  readonly env: Readonly<Record<string, string>>
  readonly logFile: string
  readonly memory: () => Memory | undefined
  readonly log: () => string
  /**
   * SIGTERM, and wait for the exit (resolves with the exit code); past `timeoutMs` (default 20 s)
   * SIGKILL, and resolve with `"timeout"`.
   */
  readonly stop: (timeoutMs?: number) => Promise<number | null | "timeout">
  /** SIGKILL, wait for exit. */
  readonly kill: () => Promise<void>
  readonly child: ChildProcess
}

interface SpawnOptions {
  readonly name: string
  readonly cwd: string
  readonly script: string
  readonly env: Record<string, string>
  readonly port: number
  readonly readyPath: string
  readonly secret: string
  readonly adminToken: string
  readonly timeoutMs?: number
  readonly nodeArgs?: ReadonlyArray<string>
  readonly logDir?: string
}

const spawnServer = async (o: SpawnOptions): Promise<ServerHandle> => {
  const logDir = o.logDir ?? mkdtempSync(join(tmpdir(), `clerk-sync-${o.name}-log-`))
  const logFile = join(logDir, `${o.name}-${o.port}-${Date.now()}.log`)
  const fd = openSync(logFile, "a")
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), "--import", TSX, o.script], {
    cwd: o.cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...o.env },
    stdio: ["ignore", fd, fd]
  })
  closeSync(fd)
  const exited = new Promise<number | null>((ok) => child.once("exit", (code) => ok(code)))
  const url = `http://127.0.0.1:${o.port}`
  const log = () => {
    try {
      return readFileSync(logFile, "utf8")
    } catch {
      return ""
    }
  }
  const deadline = Date.now() + (o.timeoutMs ?? 90_000)
  while (true) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${o.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${log().slice(-4000)}`)
    try {
      const res = await fetch(`${url}${o.readyPath}`)
      if (res.ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL")
      throw new Error(`${o.name} was not ready in time:\n${log().slice(-4000)}`)
    }
    await sleep(100)
  }
  return {
    name: o.name,
    url,
    port: o.port,
    pid: child.pid!,
    secret: o.secret,
    adminToken: o.adminToken,
    env: o.env,
    logFile,
    memory: () => memoryOf(child.pid!),
    log,
    stop: async (timeoutMs = 20_000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      let timer: NodeJS.Timeout | undefined
      const outcome = await Promise.race([exited, new Promise<"timeout">((ok) => (timer = setTimeout(() => ok("timeout"), timeoutMs)))])
      clearTimeout(timer)
      if (outcome === "timeout") {
        child.kill("SIGKILL")
        await exited
      }
      return outcome
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      await exited
    },
    child
  }
}

export interface ClerkSyncOptions {
  readonly databaseUrl: string
  readonly port?: number
  readonly secret?: string
  readonly adminToken?: string
  readonly dataDir?: string
  /** More environment (e.g. `WEBHOOK_MAX_IN_FLIGHT`, `REALTIME`). */
  readonly env?: Readonly<Record<string, string>>
  readonly timeoutMs?: number
  readonly nodeArgs?: ReadonlyArray<string>
  readonly logDir?: string
}

/** Starts the reference server (`apps/reference-server/src/main.ts`) on PostgreSQL. */
export const startClerkSync = async (options: ClerkSyncOptions): Promise<ServerHandle> => {
  const port = options.port ?? (await freePort())
  const secret = options.secret ?? newWebhookSecret()
  const adminToken = options.adminToken ?? randomBytes(24).toString("base64url")
  const env: Record<string, string> = {
    NODE_ENV: "development",
    HOST: "127.0.0.1",
    PORT: String(port),
    CLERK_SYNC_DATA_DIR: options.dataDir ?? mkdtempSync(join(tmpdir(), "clerk-sync-server-")),
    DATABASE_URL: options.databaseUrl,
    CLERK_WEBHOOK_SIGNING_SECRET: secret,
    ADMIN_TOKEN: adminToken,
    ENCRYPTION_KEY: randomBytes(32).toString("base64url"),
    ...options.env
  }
  return spawnServer({
    name: "clerk-sync",
    cwd: REFERENCE_SERVER_DIR,
    script: "src/main.ts",
    env,
    port,
    readyPath: "/readyz",
    secret,
    adminToken,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.nodeArgs === undefined ? {} : { nodeArgs: options.nodeArgs }),
    ...(options.logDir === undefined ? {} : { logDir: options.logDir })
  })
}

/** Starts the baseline server (`bench/baseline/server.ts`). */
export const startBaseline = async (options: { readonly databaseUrl: string; readonly port?: number; readonly secret?: string; readonly poolSize?: number; readonly logDir?: string; readonly nodeArgs?: ReadonlyArray<string> }): Promise<ServerHandle> => {
  const port = options.port ?? (await freePort())
  const secret = options.secret ?? newWebhookSecret()
  const env: Record<string, string> = {
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: options.databaseUrl,
    CLERK_WEBHOOK_SIGNING_SECRET: secret,
    DATABASE_POOL_SIZE: String(options.poolSize ?? 10)
  }
  return spawnServer({
    name: "baseline",
    cwd: ROOT,
    script: BASELINE,
    env,
    port,
    readyPath: "/healthz",
    secret,
    adminToken: "",
    ...(options.nodeArgs === undefined ? {} : { nodeArgs: options.nodeArgs }),
    ...(options.logDir === undefined ? {} : { logDir: options.logDir })
  })
}
