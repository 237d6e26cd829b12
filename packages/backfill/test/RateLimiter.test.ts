import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { RateLimiter } from "@clerk-sync/backfill"

/** The most of `times` within any `window` ms. */
const maxInWindow = (times: ReadonlyArray<number>, window: number): number => {
  const sorted = [...times].sort((a, b) => a - b)
  let best = 0
  let lo = 0
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= window) lo++
    best = Math.max(best, hi - lo + 1)
  }
  return best
}

/** Runs `n` takes on `concurrency` fibers, moving the test clock, and returns when each passed. */
const drive = (limiter: RateLimiter.RateLimiter, n: number, concurrency: number, horizon: number) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    const fiber = yield* Effect.forkChild(
      Effect.forEach(
        Array.from({ length: n }),
        () => Effect.flatMap(limiter.take, () => Effect.map(Clock.currentTimeMillis, (t) => void times.push(t))),
        { concurrency }
      )
    )
    for (let t = 0; t < horizon && times.length < n; t += 10) yield* TestClock.adjust(10)
    yield* Fiber.join(fiber)
    return times
  })

describe("RateLimiter", () => {
  it.effect("never lets more than `limit` requests through in any window (Clerk: 100 per 10 s)", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ limit: 100, window: 10_000 })
      assert.deepStrictEqual(limiter.settings, { limit: 100, window: 10_000, burst: 10 })
      const times = yield* drive(limiter, 400, 16, 60_000)
      assert.strictEqual(times.length, 400)
      assert.isAtMost(maxInWindow(times, 10_000), 100)
      // 10 at once, then 90 per 10 s: the 400th goes out at about 390 / 9 per second = 43.3 s.
      assert.strictEqual(times.filter((t) => t === 0).length, 10)
      const last = Math.max(...times)
      assert.isAtLeast(last, 43_000)
      assert.isAtMost(last, 43_400)
    }))

  it.effect("keeps the steady rate for a single caller too", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ limit: 20, window: 1_000, burst: 5 })
      const times = yield* drive(limiter, 100, 1, 20_000)
      assert.isAtMost(maxInWindow(times, 1_000), 20)
      assert.isAtLeast(maxInWindow(times, 1_000), 18, "and uses most of it")
    }))

  it.effect("a pause (429 Retry-After) holds every caller, including one already waiting", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ limit: 10, window: 1_000, burst: 1 })
      yield* limiter.take // the burst
      const waiting = yield* Effect.forkChild(Effect.flatMap(limiter.take, () => Clock.currentTimeMillis))
      yield* TestClock.adjust(50)
      yield* limiter.pauseFor(5_000)
      const later = yield* Effect.forkChild(Effect.flatMap(limiter.take, () => Clock.currentTimeMillis))
      for (let t = 0; t < 7_000; t += 50) yield* TestClock.adjust(50)
      const first = yield* Fiber.join(waiting)
      const second = yield* Fiber.join(later)
      assert.isAtLeast(first, 5_050)
      assert.isAtLeast(second, 5_050)
      assert.isAbove(second, first, "callers keep their order after the pause")
    }))

  it("parses CLI rates", () => {
    assert.deepStrictEqual(RateLimiter.parse("100/10s"), { limit: 100, window: 10_000 })
    assert.deepStrictEqual(RateLimiter.parse("1000/10s"), { limit: 1_000, window: 10_000 })
    assert.deepStrictEqual(RateLimiter.parse("20/500ms"), { limit: 20, window: 500 })
    assert.deepStrictEqual(RateLimiter.parse("5/1m"), { limit: 5, window: 60_000 })
    assert.isUndefined(RateLimiter.parse("fast"))
    assert.isUndefined(RateLimiter.parse("0/10s"))
    assert.throws(() => RateLimiter.settingsOf({ limit: -1 }))
  })
})
