/**
 * Test utilities: a throwaway real PostgreSQL server, and fresh databases on the test run's shared
 * server. Requires `vitest` (for `createTestDatabase`, which reads the URL the global setup provides).
 *
 * @since 0.1.0
 */
export { DEFAULT_BIN_DIR, freePort, type PostgresServer, type ServerOptions, startPostgresServer } from "./PostgresServer.ts"
export { createTestDatabase, sharedServerUrl, type TestDatabase, URL_ENV } from "./TestDatabase.ts"
