import { assert, describe, it } from "@effect/vitest"
import { RateLimiter } from "../src/index.ts"

describe("RateLimiter", () => {
  it("allows a burst, then the sustained rate, and says how long to wait", () => {
    const limiter = RateLimiter.make({ perSecond: 2, burst: 3 })
    const at = (ms: number) => RateLimiter.take(limiter, "a", ms)
    assert.isTrue(at(0).allowed && at(0).allowed && at(0).allowed)
    assert.deepStrictEqual(at(0), { allowed: false, retryAfterSeconds: 1 })
    assert.isTrue(at(500).allowed)
    assert.isFalse(at(500).allowed)
    assert.isTrue(RateLimiter.take(limiter, "b", 500).allowed)
  })

  it("a slow rate gives a longer Retry-After", () => {
    const limiter = RateLimiter.make({ perSecond: 0.1, burst: 1 })
    assert.isTrue(RateLimiter.take(limiter, "a", 0).allowed)
    assert.deepStrictEqual(RateLimiter.take(limiter, "a", 0), { allowed: false, retryAfterSeconds: 10 })
  })

  it("keeps at most maxKeys buckets, dropping the least recently used", () => {
    const limiter = RateLimiter.make({ perSecond: 1, burst: 1, maxKeys: 2 })
    RateLimiter.take(limiter, "a", 0)
    RateLimiter.take(limiter, "b", 0)
    RateLimiter.take(limiter, "a", 0)
    RateLimiter.take(limiter, "c", 0)
    assert.deepStrictEqual([...limiter.buckets.keys()], ["a", "c"])
  })

  it("refuses non-positive settings", () => {
    assert.throws(() => RateLimiter.make({ perSecond: 0, burst: 1 }), RangeError)
    assert.throws(() => RateLimiter.make({ perSecond: 1, burst: Number.NaN }), RangeError)
  })
})
