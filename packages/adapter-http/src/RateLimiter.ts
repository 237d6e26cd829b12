/**
 * A token bucket per source key, for the webhook route.
 *
 * Each key (by default the client address) owns a bucket of `burst` tokens refilled at `perSecond`
 * tokens a second; a request takes one token or is refused with the seconds to wait. Memory is
 * bounded: beyond `maxKeys` buckets the least recently used one is dropped (a dropped bucket
 * restarts full, which only ever errs on the side of letting a request through).
 *
 * Time is passed in (milliseconds), so the caller reads it from `Clock` and tests control it.
 *
 * @example
 * import { RateLimiter } from "@clerk-sync/adapter-http"
 * const limiter = RateLimiter.make({ perSecond: 50, burst: 100 })
 * RateLimiter.take(limiter, "203.0.113.7", Date.now()) // { allowed: true } or { allowed: false, retryAfterSeconds }
 *
 * @since 0.1.0
 */

/** @category models */
export interface Options {
  /** Tokens added per second (sustained rate). */
  readonly perSecond: number
  /** Bucket size (the burst a fresh key may send at once). */
  readonly burst: number
  /** Buckets kept at most (default 10 000). */
  readonly maxKeys?: number
}

interface Bucket {
  tokens: number
  updatedAt: number
}

/** @category models */
export interface RateLimiter {
  readonly perSecond: number
  readonly burst: number
  readonly maxKeys: number
  readonly buckets: Map<string, Bucket>
}

/** @category models */
export type Decision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number }

/**
 * Makes a limiter. Throws a `RangeError` when a setting is not a positive number.
 *
 * @category constructors
 */
export const make = (options: Options): RateLimiter => {
  const maxKeys = options.maxKeys ?? 10_000
  for (const [name, value] of [["perSecond", options.perSecond], ["burst", options.burst], ["maxKeys", maxKeys]] as const) {
    if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`rateLimit.${name} must be a positive number`)
  }
  return { perSecond: options.perSecond, burst: options.burst, maxKeys, buckets: new Map() }
}

/**
 * Takes a token for `key` at time `now` (ms).
 *
 * @category operations
 */
export const take = (limiter: RateLimiter, key: string, now: number): Decision => {
  const existing = limiter.buckets.get(key)
  let bucket: Bucket
  if (existing === undefined) {
    if (limiter.buckets.size >= limiter.maxKeys) {
      const oldest = limiter.buckets.keys().next()
      if (!oldest.done) limiter.buckets.delete(oldest.value)
    }
    bucket = { tokens: limiter.burst, updatedAt: now }
  } else {
    limiter.buckets.delete(key) // re-inserted below: the Map's order is least recently used first
    const elapsed = Math.max(0, now - existing.updatedAt)
    bucket = { tokens: Math.min(limiter.burst, existing.tokens + (elapsed / 1000) * limiter.perSecond), updatedAt: now }
  }
  limiter.buckets.set(key, bucket)
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1
    return { allowed: true }
  }
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / limiter.perSecond)) }
}
