import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { MemoryStore, SyncStore } from "@clerk-sync/core"
import { runBackfillCli } from "@clerk-sync/backfill"
import { FakeClerkApi } from "./utils/FakeClerkApi.ts"
import { populate } from "./utils/Instance.ts"

const capture = (isTTY = false) => {
  let text = ""
  return { write: (chunk: string) => (text += chunk), isTTY, get text() { return text } }
}

/** One store shared by several CLI runs (each run builds its runtime from the layer it is given). */
const sharedStore = Effect.map(MemoryStore.make, (store) => ({ store, layer: Layer.succeed(SyncStore.SyncStore, store) }))

const withFake = <A, E, R>(instance: ReturnType<typeof populate>, f: (fake: FakeClerkApi) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => FakeClerkApi.start(instance.simulator)),
    f,
    (fake) => Effect.promise(() => fake.close())
  )

const FAST = ["--rate", "10000/1s"]

describe("clerk-sync backfill (CLI)", () => {
  it.live("usage errors exit 2 and say why; --help prints the usage", () =>
    Effect.promise(async () => {
      const err = capture()
      const out = capture()
      const context = { store: MemoryStore.layer, env: { CLERK_SECRET_KEY: "sk_test_x" }, stdout: out, stderr: err }
      assert.strictEqual(await runBackfillCli(["--bogus"], context), 2)
      assert.include(err.text, "--bogus")
      assert.include(err.text, "Usage: clerk-sync backfill")
      assert.strictEqual(await runBackfillCli(["--only", "users,sessions"], context), 2)
      assert.include(err.text, `unknown entity "sessions"`)
      assert.strictEqual(await runBackfillCli(["--apply"], context), 2)
      assert.include(err.text, "--reconcile")
      assert.strictEqual(await runBackfillCli(["--rate", "fast"], context), 2)
      assert.strictEqual(await runBackfillCli(["--page-size", "900"], context), 2)
      assert.strictEqual(await runBackfillCli(["--concurrency", "0"], context), 2)
      assert.include(err.text, "--concurrency: expected a positive integer")
      assert.strictEqual(await runBackfillCli([], { ...context, env: {} }), 2)
      assert.include(err.text, "CLERK_SECRET_KEY is not set")
      assert.strictEqual(await runBackfillCli(["--help"], context), 0)
      assert.include(out.text, "--reconcile")
      assert.include(out.text, "--concurrency <n>")
    }))

  it.live("backfills with progress and a summary; reconcile is a dry run until --apply", () => {
    const instance = populate({ users: 1_200, organizations: 30, memberships: 900 }, { idPrefix: "cli" })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const { layer, store } = yield* sharedStore
        const env = { CLERK_SECRET_KEY: fake.secretKey, CLERK_API_URL: fake.url }
        const out = capture(false)
        const code = yield* Effect.promise(() => runBackfillCli([...FAST], { store: layer, env, stdout: out, stderr: capture() }))
        assert.strictEqual(code, 0)
        assert.match(out.text, /(^|\n)users 1,200 \(\+1,200\) · organizations 30 \(\+30\) · memberships 900 \(\+900\) · [\d,]+\/s · \d+ requests · 0 × 429\n/)
        assert.include(out.text, "Backfill finished in")
        assert.match(out.text, /users\s+1,200 read · 1,200 changed/)
        assert.deepStrictEqual([(yield* store.counts).users, (yield* store.counts).memberships], [1_200, 900])

        instance.simulator.deleteUser(instance.users[10]!)
        const dry = capture()
        assert.strictEqual(yield* Effect.promise(() => runBackfillCli(["reconcile", ...FAST], { store: layer, env, stdout: dry })), 0)
        assert.include(dry.text, "dry run: nothing written; run with --apply to write")
        assert.match(dry.text, /users\s+1,200 checked · 1 gone from Clerk \(user_cli\d+\) · would end 1/)
        assert.strictEqual((yield* store.counts).users, 1_200)

        const applied = capture()
        assert.strictEqual(yield* Effect.promise(() => runBackfillCli(["--reconcile", "--apply", ...FAST], { store: layer, env, stdout: applied })), 0)
        assert.include(applied.text, "Backfill finished")
        assert.include(applied.text, "Reconcile (applied)")
        assert.match(applied.text, /users\s+1,200 checked · 1 gone from Clerk \(user_cli\d+\) · ended 1/)
        assert.strictEqual((yield* store.counts).users, 1_199)
      }))
  }, 30_000)

  it.live("on a terminal the progress line is rewritten in place; --json prints a machine-readable summary", () => {
    const instance = populate({ users: 100, organizations: 3, memberships: 20 }, { idPrefix: "tty" })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const { layer } = yield* sharedStore
        const env = { CLERK_SECRET_KEY: fake.secretKey, CLERK_API_URL: fake.url }
        const tty = capture(true)
        assert.strictEqual(yield* Effect.promise(() => runBackfillCli([...FAST], { store: layer, env, stdout: tty })), 0)
        assert.include(tty.text, "\r\u001b[2Kusers 100 (+100)")
        const json = capture()
        assert.strictEqual(yield* Effect.promise(() => runBackfillCli(["--json", "--reconcile", ...FAST], { store: layer, env, stdout: json })), 0)
        const parsed = JSON.parse(json.text.slice(json.text.indexOf("{")))
        assert.strictEqual(parsed.backfill.counts.user.unchanged, 100)
        assert.strictEqual(parsed.reconcile.dryRun, true)
      }))
  })

  it.live("a wrong key fails with exit 1 without printing the key; an interrupted run exits 130 and resumes", () => {
    const instance = populate({ users: 900, organizations: 3, memberships: 10 }, { idPrefix: "int" })
    return withFake(instance, (fake) =>
      Effect.gen(function*() {
        const { layer, store } = yield* sharedStore
        const err = capture()
        const wrong = { CLERK_SECRET_KEY: "sk_test_wrong_key", CLERK_API_URL: fake.url }
        assert.strictEqual(yield* Effect.promise(() => runBackfillCli([...FAST], { store: layer, env: wrong, stdout: capture(), stderr: err })), 1)
        assert.include(err.text, "Unauthorized")
        assert.notInclude(err.text, "sk_test_wrong_key")

        const env = { CLERK_SECRET_KEY: fake.secretKey, CLERK_API_URL: fake.url }
        const controller = new AbortController()
        fake.onRequest(() => {
          if (fake.requests >= 4) controller.abort()
        })
        const stopped = capture()
        const code = yield* Effect.promise(() =>
          runBackfillCli(["--page-size", "100", ...FAST], { store: layer, env, stdout: capture(), stderr: stopped, signal: controller.signal })
        )
        fake.onRequest(null)
        assert.strictEqual(code, 130)
        assert.include(stopped.text, "run the same command again to resume")
        const partial = (yield* store.counts).users
        assert.isBelow(partial, 900)
        const out = capture()
        assert.strictEqual(yield* Effect.promise(() => runBackfillCli(["--page-size", "100", "--concurrency", "4", ...FAST], { store: layer, env, stdout: out })), 0)
        assert.include(out.text, "Backfill resumed and finished")
        assert.strictEqual((yield* store.counts).users, 900)
      }))
  })
})
