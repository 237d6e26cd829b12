import { defineConfig } from "vitest/config"

// One run for the whole monorepo: each package's tests sit beside it in `test/`.
export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ["packages/adapter-postgres/test/utils/global-setup.ts"]
  }
})
