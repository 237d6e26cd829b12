import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fc from "fast-check"
import * as Walk from "../src/internal/Walk.ts"

interface Item {
  readonly id: string
  readonly createdAt: number
}

const item = (n: number, createdAt: number): Item => ({ id: `o${String(n).padStart(6, "0")}`, createdAt })

describe("Walk.step", () => {
  const list = [item(1, 10), item(2, 10), item(3, 11), item(4, 12), item(5, 13), item(6, 14)]

  it("hands out everything after the anchor", () => {
    const cursor: Walk.Cursor = { offset: 3, anchor: { id: "o000003", createdAt: 11 } }
    const step = Walk.step(cursor, 1, list.slice(1, 5), 4)
    assert.deepStrictEqual(step, {
      _tag: "Page",
      fresh: [list[3]!, list[4]!],
      next: { offset: 5, anchor: { id: "o000005", createdAt: 13 } },
      done: false
    })
  })

  it("absorbs a deleted anchor when the page starts before it", () => {
    const cursor: Walk.Cursor = { offset: 3, anchor: { id: "o000003", createdAt: 11 } }
    const without = list.filter((i) => i.id !== "o000003")
    const step = Walk.step(cursor, 1, without.slice(1, 5), 4)
    assert.strictEqual(step._tag, "Page")
    if (step._tag === "Page") assert.deepStrictEqual(step.fresh.map((i) => i.id), ["o000004", "o000005", "o000006"])
  })

  it("reports a gap when deletions moved the anchor before the page", () => {
    const cursor: Walk.Cursor = { offset: 4, anchor: { id: "o000004", createdAt: 12 } }
    const shifted = list.filter((i) => i.id !== "o000001" && i.id !== "o000002" && i.id !== "o000003")
    assert.deepStrictEqual(Walk.step(cursor, 3, shifted.slice(3, 6), 3), { _tag: "Gap" })
  })

  it("a short page ends the walk", () => {
    const step = Walk.step(Walk.initial, 0, list, 10)
    assert.isTrue(step._tag === "Page" && step.done)
  })
})

describe("Walk.readStep over a list that changes between requests", () => {
  it("hands out every object that exists throughout, whatever is deleted or appended meanwhile", () =>
    fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(0, 0, 1, 1, 2), { minLength: 0, maxLength: 250 }),
        fc.integer({ min: 2, max: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.record({ deletes: fc.array(fc.nat(), { maxLength: 20 }), appends: fc.nat({ max: 5 }) }), { maxLength: 60 }),
        (gaps, limit, overlap, changes) =>
          Effect.runPromise(Effect.gen(function*() {
            let counter = 0
            let t = 1000
            let current: Array<Item> = gaps.map((g) => item(++counter, (t += g)))
            const initial = current.slice()
            const deleted = new Set<string>()
            const handed = new Set<string>()
            let requests = 0
            let walked = 0
            const read = (start: number) =>
              Effect.sync(() => {
                // Clerk changes between any two requests; half of the deletions hit the part
                // already walked, where they shift the pages still to come.
                const change = changes[requests % Math.max(1, changes.length)]
                if (change && requests < changes.length) {
                  for (const d of change.deletes) {
                    if (current.length === 0) break
                    const region = d % 2 === 0 ? Math.max(1, Math.min(walked, current.length)) : current.length
                    const [gone] = current.splice(Math.floor(d / 2) % region, 1)
                    deleted.add(gone!.id)
                  }
                  for (let i = 0; i < change.appends; i++) current.push(item(++counter, (t += 1)))
                }
                requests++
                walked = start + limit
                return current.slice(start, start + limit)
              })
            let cursor = Walk.initial
            for (;;) {
              const step = yield* Walk.readStep(read, cursor, overlap, limit)
              for (const i of step.fresh) handed.add(i.id)
              if (step.done) break
              cursor = step.next
              assert.isBelow(requests, 5_000, "the walk terminates")
            }
            for (const i of initial) if (!deleted.has(i.id)) assert.isTrue(handed.has(i.id), `${i.id} was handed out`)
          }))
      ),
      { numRuns: 1000 }
    ))

  it("without changes, hands out each object exactly once, re-reading only the overlap", () =>
    Effect.runPromise(Effect.gen(function*() {
      const items = Array.from({ length: 1_003 }, (_, i) => item(i, 1000 + Math.floor(i / 3)))
      let requests = 0
      let served = 0
      const read = (start: number) =>
        Effect.sync(() => {
          requests++
          const page = items.slice(start, start + 100)
          served += page.length
          return page
        })
      const handed: Array<string> = []
      let cursor = Walk.initial
      for (;;) {
        const step = yield* Walk.readStep(read, cursor, 5, 100)
        handed.push(...step.fresh.map((i) => i.id))
        if (step.done) break
        cursor = step.next
      }
      assert.deepStrictEqual(handed, items.map((i) => i.id))
      assert.strictEqual(requests, 11) // 100 new, then 95 new per request
      assert.strictEqual(served, 1_003 + 5 * (requests - 1))
    })))
})
