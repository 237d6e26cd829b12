/**
 * The load generator's sender: signs each delivery the way Svix does and posts it over keep-alive
 * HTTP at a given concurrency (closed loop) or rate (open loop), with optional duplicates and
 * out-of-order windows, retrying every non-2xx answer (and every connection error) the way Svix
 * does: same `svix-id`, a fresh timestamp and signature on each attempt, a bounded number of
 * attempts on a (compressed) back-off schedule.
 */
import { signWebhook } from "@clerk-sync/adapter-http"
import { Agent, request } from "node:http"
import { Random } from "./Random.ts"

export interface Delivery {
  readonly svixId: string
  readonly body: string
}

/** What Svix does with a delivery that failed, compressed in time for benchmarks and tests. */
export interface RetryPolicy {
  /** Delay before attempt 2, 3, … (ms); the last one repeats. Svix: 0 s, 5 s, 5 min, 30 min, 2 h, … */
  readonly delays: ReadonlyArray<number>
  /** Attempts in all, the first included. */
  readonly maxAttempts: number
}

/** The default: immediately, then 50 ms, 250 ms, 1 s, 2 s, 2 s… up to 8 attempts. */
export const svixLike: RetryPolicy = { delays: [0, 50, 250, 1000, 2000], maxAttempts: 8 }

/** Enough patience to ride out a database or server restart of several seconds. */
export const patient: RetryPolicy = { delays: [0, 100, 250, 500, 1000, 1000], maxAttempts: 120 }

/** No retries. */
export const once: RetryPolicy = { delays: [0], maxAttempts: 1 }

export interface Schedule {
  /** Probability that a delivery is sent a second time (the same svix-id), a little later. */
  readonly duplicates?: number
  /** Shuffle within consecutive windows of this many deliveries (1 or absent: in order). */
  readonly window?: number
  readonly seed?: number
}

/**
 * The order deliveries are sent in: duplicates inserted a few places later, then every window of
 * `window` consecutive deliveries shuffled.
 */
export const schedule = <A>(events: ReadonlyArray<A>, options: Schedule = {}): Array<A> => {
  const random = new Random(options.seed ?? 11)
  const out: Array<A> = []
  const later: Array<{ readonly at: number; readonly event: A }> = []
  events.forEach((event, i) => {
    out.push(event)
    if (options.duplicates && random.chance(options.duplicates)) later.push({ at: i + random.between(1, Math.max(2, (options.window ?? 1) * 2)), event })
    for (let j = later.length - 1; j >= 0; j--) {
      if (later[j]!.at <= i) {
        out.push(later[j]!.event)
        later.splice(j, 1)
      }
    }
  })
  for (const l of later) out.push(l.event)
  const w = options.window ?? 1
  if (w > 1) for (let from = 0; from < out.length; from += w) random.shuffle(out, from, Math.min(out.length, from + w))
  return out
}

/** One HTTP attempt. */
export interface Attempt {
  readonly svixId: string
  readonly attempt: number
  /** performance.now() at send and at answer. */
  readonly start: number
  readonly end: number
  /** HTTP status, or 0 for a connection error or timeout. */
  readonly status: number
  readonly retryAfter: string | null
  /** For status 0: the error (`ECONNRESET`, `timeout`, …). */
  readonly error?: string
}

export interface SendOptions {
  /** Base URL of the server; deliveries go to `${url}${path}`. */
  readonly url: string
  readonly path?: string
  readonly secret: string
  readonly concurrency: number
  readonly retry?: RetryPolicy
  /** Stop taking new deliveries after this long (ms); those in flight finish, pending retries are dropped. */
  readonly durationMs?: number
  /** Per-attempt timeout (ms; Svix: 15 s). */
  readonly timeoutMs?: number
  /** Called after each attempt. */
  readonly onAttempt?: (attempt: Attempt) => void
  /** Keep every attempt in the result (default true; false for long runs). */
  readonly keepAttempts?: boolean
}

export interface SendResult {
  readonly attempts: ReadonlyArray<Attempt>
  /** Deliveries (of the schedule) answered 2xx in the end. */
  readonly accepted: number
  /** Deliveries given up after `maxAttempts`. */
  readonly givenUp: ReadonlyArray<string>
  /** Deliveries not sent because `durationMs` ran out. */
  readonly notSent: number
  readonly statuses: Readonly<Record<string, number>>
  readonly startedAt: number
  readonly endedAt: number
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface PostResult {
  readonly status: number
  readonly retryAfter: string | null
  readonly body: string
  readonly error?: string
}

/** A keep-alive connection pool of `sockets` connections, and one POST over it. */
export const makePoster = (sockets: number) => {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets })
  const post = (url: URL, headers: Record<string, string>, body: string | Uint8Array, timeoutMs: number, method = "POST") =>
    new Promise<PostResult>((resolve) => {
      let done = false
      // Svix's timeout runs from the moment it sends, whether or not a connection was free.
      const timer = setTimeout(() => req.destroy(Object.assign(new Error("timeout"), { code: "timeout" })), timeoutMs)
      const finish = (r: PostResult) => {
        clearTimeout(timer)
        if (done) return
        done = true
        resolve(r)
      }
      const req = request(url, { method, agent, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } }, (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          const ra = res.headers["retry-after"]
          finish({ status: res.statusCode ?? 0, retryAfter: typeof ra === "string" ? ra : null, body: Buffer.concat(chunks).toString("utf8") })
        })
        res.on("error", (e: NodeJS.ErrnoException) => finish({ status: 0, retryAfter: null, body: "", error: e.code ?? e.message }))
      })
      req.on("error", (e: NodeJS.ErrnoException) => finish({ status: 0, retryAfter: null, body: "", error: e.code ?? e.message }))
      req.end(body)
    })
  return { agent, post, close: () => agent.destroy() }
}

/**
 * Sends `deliveries` (in the given order) at a concurrency, retrying non-2xx like Svix.
 *
 * @example
 * const result = await send(schedule(history.events, { duplicates: 0.1, window: 50 }), { url, secret, concurrency: 16 })
 */
export const send = async (deliveries: ReadonlyArray<Delivery>, options: SendOptions): Promise<SendResult> => {
  const retry = options.retry ?? svixLike
  const target = new URL(options.path ?? "/api/webhooks/clerk", options.url)
  const poster = makePoster(options.concurrency)
  const keep = options.keepAttempts ?? true
  const attempts: Array<Attempt> = []
  const statuses: Record<string, number> = {}
  const givenUp: Array<string> = []
  const ready: Array<{ readonly d: Delivery; readonly attempt: number }> = []
  let nextIndex = 0
  let timers = 0
  let inFlight = 0
  let accepted = 0
  let stopped = false
  const startedAt = performance.now()
  const deadline = options.durationMs === undefined ? Infinity : startedAt + options.durationMs
  let wake: (() => void) | undefined
  const signal = () => {
    const w = wake
    wake = undefined
    w?.()
  }

  const take = (): { readonly d: Delivery; readonly attempt: number } | undefined => {
    if (performance.now() >= deadline) stopped = true
    if (stopped) return undefined
    const r = ready.shift()
    if (r) return r
    if (nextIndex < deliveries.length) return { d: deliveries[nextIndex++]!, attempt: 1 }
    return undefined
  }

  const worker = async () => {
    while (true) {
      const job = take()
      if (!job) {
        if (stopped || (timers === 0 && inFlight === 0 && ready.length === 0 && nextIndex >= deliveries.length)) {
          signal()
          return
        }
        await new Promise<void>((resolve) => {
          const previous = wake
          wake = () => {
            previous?.()
            resolve()
          }
        })
        continue
      }
      inFlight++
      const headers = { "content-type": "application/json", ...signWebhook({ secret: options.secret, svixId: job.d.svixId, body: job.d.body }) }
      const start = performance.now()
      const res = await poster.post(target, headers, job.d.body, options.timeoutMs ?? 15_000)
      const end = performance.now()
      inFlight--
      const a: Attempt = { svixId: job.d.svixId, attempt: job.attempt, start, end, status: res.status, retryAfter: res.retryAfter, ...(res.error ? { error: res.error } : {}) }
      if (keep) attempts.push(a)
      statuses[res.status] = (statuses[res.status] ?? 0) + 1
      options.onAttempt?.(a)
      if (res.status >= 200 && res.status < 300) {
        accepted++
      } else if (job.attempt >= retry.maxAttempts) {
        givenUp.push(job.d.svixId)
      } else {
        const delay = retry.delays[Math.min(job.attempt - 1, retry.delays.length - 1)]!
        timers++
        void sleep(delay).then(() => {
          timers--
          ready.push({ d: job.d, attempt: job.attempt + 1 })
          signal()
        })
      }
      signal()
    }
  }

  await Promise.all(Array.from({ length: options.concurrency }, worker))
  poster.close()
  return {
    attempts,
    accepted,
    givenUp,
    notSent: deliveries.length - nextIndex,
    statuses,
    startedAt,
    endedAt: performance.now()
  }
}

/**
 * Open loop: delivery `i` is sent at `start + i / rate` seconds whatever the answers (like Clerk's
 * traffic, which does not wait for the server), retried like Svix on non-2xx.
 */
export const sendAtRate = async (
  deliveries: ReadonlyArray<Delivery>,
  options: Omit<SendOptions, "concurrency" | "durationMs"> & { readonly rate: number; readonly maxInFlight?: number }
): Promise<SendResult & { readonly sentAt: ReadonlyArray<number> }> => {
  const retry = options.retry ?? svixLike
  const target = new URL(options.path ?? "/api/webhooks/clerk", options.url)
  const poster = makePoster(options.maxInFlight ?? 512)
  const attempts: Array<Attempt> = []
  const statuses: Record<string, number> = {}
  const givenUp: Array<string> = []
  const sentAt: Array<number> = []
  let accepted = 0
  const startedAt = performance.now()
  const one = async (d: Delivery, index: number) => {
    for (let attempt = 1; ; attempt++) {
      const headers = { "content-type": "application/json", ...signWebhook({ secret: options.secret, svixId: d.svixId, body: d.body }) }
      const start = performance.now()
      if (attempt === 1) sentAt[index] = start
      const res = await poster.post(target, headers, d.body, options.timeoutMs ?? 15_000)
      const a: Attempt = { svixId: d.svixId, attempt, start, end: performance.now(), status: res.status, retryAfter: res.retryAfter, ...(res.error ? { error: res.error } : {}) }
      attempts.push(a)
      statuses[res.status] = (statuses[res.status] ?? 0) + 1
      options.onAttempt?.(a)
      if (res.status >= 200 && res.status < 300) return void accepted++
      if (attempt >= retry.maxAttempts) return void givenUp.push(d.svixId)
      await sleep(retry.delays[Math.min(attempt - 1, retry.delays.length - 1)]!)
    }
  }
  const running: Array<Promise<void>> = []
  for (let i = 0; i < deliveries.length; i++) {
    const due = startedAt + (i * 1000) / options.rate
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    running.push(one(deliveries[i]!, i))
  }
  await Promise.all(running)
  poster.close()
  return { attempts, accepted, givenUp, notSent: 0, statuses, startedAt, endedAt: performance.now(), sentAt }
}

/** The p-th percentile (0..100) of numbers (nearest rank). */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}
