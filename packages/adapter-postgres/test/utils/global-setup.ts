/**
 * vitest global setup: ONE real PostgreSQL 15 server for the whole test run (temporary data
 * directory, free port, fsync on, unprivileged user), its URL provided to every test file as
 * `inject("clerkSyncPostgresUrl")`, stopped and removed at the end. Set
 * `CLERK_SYNC_TEST_DATABASE_URL` to use a server of your own instead.
 */
import type { TestProject } from "vitest/node"
import { startPostgresServer } from "../../src/testing/PostgresServer.ts"
import { URL_ENV } from "../../src/testing/TestDatabase.ts"

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const existing = process.env[URL_ENV]
  if (existing) {
    project.provide("clerkSyncPostgresUrl", existing)
    return async () => {}
  }
  const server = await startPostgresServer({ name: "vitest" })
  project.provide("clerkSyncPostgresUrl", server.url)
  return () => server.destroy()
}
