/**
 * Runs TypeScript scripts of `test/utils/` in separate Node processes (through tsx), for tests that
 * need several processes: each one's stdout, parsed as JSON, or the failure with its stderr.
 *
 * With {@link runTogether}, the scripts start their work at the same moment: each prints `ready`
 * once set up (connected, say) and waits for `go` on stdin, which all get when all are ready, so
 * process start-up times cannot keep them from overlapping.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

interface Running {
  readonly child: ChildProcess
  readonly ready: Promise<void>
  readonly result: Promise<unknown>
}

const start = (script: string, args: ReadonlyArray<string>, timeoutMs: number): Running => {
  const path = fileURLToPath(new URL(`./${script}`, import.meta.url))
  const child = spawn(process.execPath, ["--import", "tsx", path, ...args], { stdio: ["pipe", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  let markReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => (markReady = resolve))
  child.stdout!.on("data", (d) => {
    stdout += d
    if (/^ready$/m.test(stdout)) markReady()
  })
  child.stderr!.on("data", (d) => (stderr += d))
  const result = new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("exit", (code) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`${script} exited ${code}: ${stderr}`))
      try {
        resolve(JSON.parse(stdout.trim().split("\n").pop() ?? "null"))
      } catch {
        reject(new Error(`${script} printed no JSON: ${stdout} ${stderr}`))
      }
    })
  })
  return { child, ready, result }
}

/** Runs one script to completion. */
export const runScript = (script: string, args: ReadonlyArray<string>, options: { readonly timeoutMs?: number } = {}): Promise<unknown> => {
  const running = start(script, args, options.timeoutMs ?? 60_000)
  running.child.stdin!.end()
  return running.result
}

/** Runs scripts that print `ready` and wait for `go`, and lets them go together. */
export const runTogether = async (
  runs: ReadonlyArray<{ readonly script: string; readonly args: ReadonlyArray<string> }>,
  options: { readonly timeoutMs?: number } = {}
): Promise<ReadonlyArray<unknown>> => {
  const running = runs.map((r) => start(r.script, r.args, options.timeoutMs ?? 60_000))
  const failed = Promise.all(running.map((r) => r.result)).then(() => new Promise<never>(() => {}))
  await Promise.race([Promise.all(running.map((r) => r.ready)), failed])
  for (const r of running) r.child.stdin!.end("go\n")
  return Promise.all(running.map((r) => r.result))
}

/** In a script: says `ready`, then waits for `go`. */
export const awaitGo = (): Promise<void> =>
  new Promise((resolve) => {
    process.stdout.write("ready\n")
    process.stdin.once("data", () => resolve())
  })
