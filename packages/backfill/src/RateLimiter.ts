/**
 * A token bucket for Clerk's Backend API rate limit, driven by Effect's `Clock` (so tests move it
 * with `TestClock`), plus a shared pause for `429 Retry-After`.
 *
 * Clerk allows 100 requests per 10 seconds on a development instance (1,000 on a production one),
 * counted per instance. A bucket of capacity `limit` refilled at `limit / window` would allow
 * `2 × limit` requests in the first window (a full bucket, then the refill), which a window
 * counter rejects. So the bucket here holds a small `burst` (default a tenth of the limit) and
 * refills at `(limit − burst) / window`: no window of length `window`, sliding or fixed, ever sees
 * more than `burst + (limit − burst) = limit` requests.
 *
 * Callers reserve tokens in order (a reservation may drive the balance below zero, and the caller
 * sleeps until its token has accrued), so concurrent fibers are served first come, first served,
 * without polling.
 *
 * @example
 * import { Effect } from "effect"
 * import { RateLimiter } from "@clerk-sync/backfill"
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({ limit: 100, window: 10_000 })
 *   yield* limiter.take // resolves at once while the burst lasts, then every 100 ms
 * })
 *
 * @since 0.1.0
 */
import { Clock, Effect, Ref } from "effect"

/** @category models */
export interface Options {
  /** Requests allowed per window (default 100: Clerk's development-instance limit). */
  readonly limit?: number
  /** The window, in milliseconds (default 10,000). */
  readonly window?: number
  /** Requests that may go out back to back (default `ceil(limit / 10)`, at least 1, at most `limit`). */
  readonly burst?: number
}

/** @category models */
export interface RateLimiter {
  /** Waits for a token (and for any pause set by {@link RateLimiter.pauseFor} to end). */
  readonly take: Effect.Effect<void>
  /**
   * Stops every caller for `millis` (a `429` answer's `Retry-After`) and empties the bucket, so
   * the requests after the pause start again at the steady rate.
   */
  readonly pauseFor: (millis: number) => Effect.Effect<void>
  /** The resolved settings. */
  readonly settings: { readonly limit: number; readonly window: number; readonly burst: number }
}

interface State {
  /** Tokens at `at` (negative: reserved ahead). */
  readonly tokens: number
  readonly at: number
  readonly pausedUntil: number
}

/** Clerk's Backend API limit for development instances. @category constants */
export const CLERK_DEVELOPMENT = { limit: 100, window: 10_000 } as const
/** Clerk's Backend API limit for production instances. @category constants */
export const CLERK_PRODUCTION = { limit: 1_000, window: 10_000 } as const

const positive = (name: string, n: number): number => {
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`RateLimiter: ${name} must be a positive number`)
  return n
}

/** Resolves and validates options (throws a `RangeError` on nonsense). @category constructors */
export const settingsOf = (options: Options = {}): RateLimiter["settings"] => {
  const limit = Math.floor(positive("limit", options.limit ?? CLERK_DEVELOPMENT.limit))
  const window = positive("window", options.window ?? CLERK_DEVELOPMENT.window)
  const burst = Math.min(limit, Math.max(1, Math.floor(positive("burst", options.burst ?? Math.ceil(limit / 10)))))
  return { limit: Math.max(1, limit), window, burst }
}

/**
 * Makes a rate limiter. The bucket starts full (`burst` tokens).
 *
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<RateLimiter> =>
  Effect.gen(function*() {
    const settings = settingsOf(options)
    const { burst, limit, window } = settings
    // With limit === burst there is nothing left to refill within a window: refill one window's
    // worth over the window anyway (a burst-only bucket would never refill).
    const perMilli = (limit === burst ? limit : limit - burst) / window
    const now0 = yield* Clock.currentTimeMillis
    const state = yield* Ref.make<State>({ tokens: burst, at: now0, pausedUntil: 0 })

    const refill = (s: State, now: number): number => Math.min(burst, s.tokens + Math.max(0, now - s.at) * perMilli)

    const take = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const wait = yield* Ref.modify(state, (s): readonly [number, State] => {
        // Tokens only start to count from the end of a pause.
        const from = Math.max(now, s.pausedUntil)
        const tokens = refill(s, from) - 1
        const ready = tokens >= 0 ? from : from + Math.ceil(-tokens / perMilli)
        return [ready - now, { ...s, tokens, at: from }]
      })
      if (wait > 0) yield* Effect.sleep(wait)
      // A pause set while this caller slept (a 429 answered someone else) holds it too.
      for (;;) {
        const after = yield* Clock.currentTimeMillis
        const { pausedUntil } = yield* Ref.get(state)
        if (pausedUntil <= after) return
        yield* Effect.sleep(pausedUntil - after)
      }
    })

    const pauseFor = (millis: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.update(state, (s) => {
          const until = Math.max(s.pausedUntil, now + Math.max(0, millis))
          // Empty the bucket at the end of the pause, keeping reservations already made.
          return { tokens: Math.min(0, refill(s, now)), at: until, pausedUntil: until }
        }))

    return { take, pauseFor, settings }
  })

/**
 * Parses a rate written `100/10s`, `1000/10s`, `5/1s`, `20/500ms` (CLI flag syntax).
 *
 * @category parsing
 */
export const parse = (text: string): { readonly limit: number; readonly window: number } | undefined => {
  const m = /^\s*(\d+)\s*\/\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(text)
  if (!m) return undefined
  const limit = Number(m[1])
  const unit = m[3] ?? "s"
  const window = Number(m[2]) * (unit === "ms" ? 1 : unit === "s" ? 1000 : 60_000)
  return limit > 0 && window > 0 ? { limit, window } : undefined
}
