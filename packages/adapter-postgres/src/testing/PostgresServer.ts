/**
 * A throwaway PostgreSQL server for tests and benchmarks: `initdb` into a temporary directory,
 * `postgres` on a free port, stopped (and its directory removed) when done.
 *
 * The server runs as an unprivileged OS user (PostgreSQL refuses to run as root: when the caller
 * is root, the `postgres` user, or `nobody`, owns the data directory and the process). It is
 * started with the parent-death signal set (`setpriv --pdeathsig`), so a test run that crashes
 * cannot leave an orphan server behind. `fsync` stays on unless asked otherwise, so what the tests
 * and benchmarks measure is what production gets.
 *
 * @example
 * import { startPostgresServer } from "@clerk-sync/adapter-postgres/testing"
 * const server = await startPostgresServer()
 * // server.url === "postgres://postgres@127.0.0.1:41234/postgres"
 * await server.destroy()
 *
 * @since 0.1.0
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, openSync, closeSync, readFileSync } from "node:fs"
import { chown, mkdtemp, readdir, rm, stat } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"

/** Where the PostgreSQL 15 server binaries are looked for, unless `CLERK_SYNC_PG_BIN` says otherwise. @category constants */
export const DEFAULT_BIN_DIR = "/usr/lib/postgresql/15/bin"

/** @category models */
export interface ServerOptions {
  /** Directory of `postgres` and `initdb` (default `CLERK_SYNC_PG_BIN`, then {@link DEFAULT_BIN_DIR}). */
  readonly binDir?: string
  /** Keep `fsync` on (default true). Turning it off makes a server that loses data on a crash. */
  readonly fsync?: boolean
  /** Extra `postgres -c name=value` settings. */
  readonly settings?: Readonly<Record<string, string | number>>
  /** A label for the temporary directory (shows in `ps` and in error messages). */
  readonly name?: string
}

/** A running (or stopped) throwaway server. @category models */
export interface PostgresServer {
  /** Connection URL of the `postgres` database (superuser `postgres`, trust authentication). */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly dataDir: string
  /** URL of another database on the same server. */
  readonly urlFor: (database: string) => string
  /** Whether the server process is running. */
  readonly running: () => boolean
  /**
   * Stops the server: `fast` disconnects clients and shuts down cleanly; `immediate` is a crash
   * (no checkpoint: the next start replays the WAL).
   */
  readonly stop: (mode?: "fast" | "immediate") => Promise<void>
  /** Starts it again on the same data directory and port. */
  readonly start: () => Promise<void>
  /** Stops it and removes its directory. */
  readonly destroy: () => Promise<void>
}

const binDirOf = (options: ServerOptions): string => {
  const dir = options.binDir ?? process.env["CLERK_SYNC_PG_BIN"] ?? DEFAULT_BIN_DIR
  for (const bin of ["postgres", "initdb"]) {
    if (!existsSync(join(dir, bin))) {
      throw new Error(
        `PostgreSQL server binaries not found: ${join(dir, bin)} is missing. ` +
          `The tests start a real PostgreSQL 15 server of their own. Install it ` +
          `(Debian/Ubuntu: \`apt-get install -y postgresql-15\`, which puts it in ${DEFAULT_BIN_DIR}), ` +
          `or set CLERK_SYNC_PG_BIN to a directory holding \`postgres\` and \`initdb\`.`
      )
    }
  }
  return dir
}

interface RunAs {
  readonly uid: number
  readonly gid: number
}

/** PostgreSQL refuses root: as root, run it as `postgres` (or `nobody`). */
const runAs = (): RunAs | undefined => {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return undefined
  for (const user of ["postgres", "nobody"]) {
    try {
      const uid = Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim())
      const gid = Number(execFileSync("id", ["-g", user], { encoding: "utf8" }).trim())
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid }
    } catch {
      // no such user: try the next
    }
  }
  throw new Error("Running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as. Create one: `useradd --system postgres`.")
}

const hasSetpriv = (): boolean => {
  try {
    execFileSync("setpriv", ["--help"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

/**
 * Spawns a command as `user`, with the parent-death signal set when `setpriv` is available (so the
 * child dies with the process that started it).
 */
const spawnAs = (
  user: RunAs | undefined,
  command: string,
  args: ReadonlyArray<string>,
  stdio: "ignore" | number,
  pdeathsig: string | undefined
): ChildProcess => {
  if (hasSetpriv()) {
    const prefix = [
      ...(user ? [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups"] : []),
      ...(pdeathsig ? [`--pdeathsig=${pdeathsig}`] : [])
    ]
    return spawn("setpriv", [...prefix, "--", command, ...args], { stdio: ["ignore", stdio, stdio] })
  }
  return spawn(command, [...args], { stdio: ["ignore", stdio, stdio], ...(user ? { uid: user.uid, gid: user.gid } : {}) })
}

const exitOf = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once("exit", (code) => resolve(code)))

const run = async (user: RunAs | undefined, command: string, args: ReadonlyArray<string>, log: string): Promise<void> => {
  const fd = openSync(log, "a")
  try {
    const code = await exitOf(spawnAs(user, command, args, fd, undefined))
    if (code !== 0) throw new Error(`${command} failed (exit ${code}):\n${tail(log)}`)
  } finally {
    closeSync(fd)
  }
}

const tail = (file: string): string => {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-30).join("\n")
  } catch {
    return "(no log)"
  }
}

/** A port nobody listens on right now. @category utils */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Every server this process started and has not stopped: killed on exit, whatever happens. */
const live = new Set<ChildProcess>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGQUIT")
      } catch {
        // already gone
      }
    }
  })
}

/**
 * Removes directories left by runs that were killed (their server died with them, by the
 * parent-death signal): older than an hour and with no `postmaster.pid`.
 */
const sweepStale = async (): Promise<void> => {
  const entries = await readdir(tmpdir()).catch(() => [] as Array<string>)
  await Promise.all(entries.filter((e) => e.startsWith("clerk-sync-")).map(async (entry) => {
    const dir = join(tmpdir(), entry)
    try {
      const info = await stat(dir)
      if (Date.now() - info.mtimeMs < 3_600_000 || existsSync(join(dir, "data", "postmaster.pid"))) return
      await rm(dir, { recursive: true, force: true })
    } catch {
      // raced with another sweeper, or not ours to remove
    }
  }))
}

/**
 * Creates a data directory, starts a server on it and waits until it accepts connections.
 *
 * @category constructors
 */
export const startPostgresServer = async (options: ServerOptions = {}): Promise<PostgresServer> => {
  const binDir = binDirOf(options)
  const user = runAs()
  await sweepStale()
  const root = await mkdtemp(join(tmpdir(), `clerk-sync-${options.name ?? "pg"}-`))
  if (user) await chown(root, user.uid, user.gid)
  const dataDir = join(root, "data")
  const log = join(root, "postgres.log")
  const host = "127.0.0.1"
  try {
    await run(user, join(binDir, "initdb"), ["-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"], join(root, "initdb.log"))
  } catch (error) {
    await rm(root, { recursive: true, force: true })
    throw error
  }
  let port = 0
  let child: ChildProcess | undefined
  installExitHook()

  const settings: Record<string, string | number> = {
    listen_addresses: host,
    unix_socket_directories: "",
    fsync: options.fsync === false ? "off" : "on",
    max_connections: 300,
    // The shared server hosts many test databases at once; keep each one's footprint small.
    shared_buffers: "64MB",
    log_min_messages: "warning",
    ...options.settings
  }

  const url = (database: string) => `postgres://postgres@${host}:${port}/${database}`

  const waitReady = async (proc: ChildProcess): Promise<void> => {
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`postgres exited (${proc.exitCode ?? proc.signalCode}) while starting:\n${tail(log)}`)
      }
      const client = new pg.Client({ connectionString: url("postgres"), connectionTimeoutMillis: 1000 })
      client.on("error", () => {})
      try {
        await client.connect()
        await client.query("SELECT 1")
        await client.end()
        return
      } catch {
        await client.end().catch(() => {})
        await sleep(50)
      }
    }
    throw new Error(`postgres did not accept connections within 30 s:\n${tail(log)}`)
  }

  const start = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) return
    const args = ["-D", dataDir, "-p", String(port), ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])]
    const fd = openSync(log, "a")
    try {
      child = spawnAs(user, join(binDir, "postgres"), args, fd, "INT")
    } finally {
      closeSync(fd)
    }
    const proc = child
    live.add(proc)
    proc.once("exit", () => live.delete(proc))
    await waitReady(proc)
  }

  const stop = async (mode: "fast" | "immediate" = "fast"): Promise<void> => {
    const proc = child
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = exitOf(proc)
    proc.kill(mode === "fast" ? "SIGINT" : "SIGQUIT")
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), 20_000)
    })
    const outcome = await Promise.race([exited, timeout])
    clearTimeout(timer)
    if (outcome === "timeout") {
      proc.kill("SIGKILL")
      await exited
    }
  }

  // A free port can be taken between probing and binding: retry with another.
  for (let attempt = 0;; attempt++) {
    port = options.settings?.["port"] !== undefined ? Number(options.settings["port"]) : await freePort()
    try {
      await start()
      break
    } catch (error) {
      if (attempt >= 3 || !/could not bind|Address already in use/i.test(String(error))) {
        await rm(root, { recursive: true, force: true })
        throw error
      }
    }
  }

  return {
    get url() {
      return url("postgres")
    },
    host,
    port,
    dataDir,
    urlFor: url,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    stop,
    start,
    destroy: async () => {
      await stop("fast")
      await rm(root, { recursive: true, force: true })
    }
  }
}
