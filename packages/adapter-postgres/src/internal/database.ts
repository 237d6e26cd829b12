/**
 * The connection to Postgres as the store sees it: a Kysely instance over `pg` (a pool, many
 * connections) or PGlite (one in-process connection), the schema, and Effect wrappers that turn
 * driver failures into a sanitized {@link DbError}.
 *
 * PGlite has a single connection and Kysely's PGlite driver does not serialize its users (a query
 * issued while a transaction is open would run inside it), so on PGlite every use of the database
 * holds one permit of a semaphore.
 */
import { Data, Effect, Exit, Option, Semaphore } from "effect"
import type { ControlledTransaction, Kysely } from "kysely"

/** A driver failure, stripped of anything that could carry data (`detail`, parameters, the URL). */
export class DbError extends Data.TaggedError("DbError")<{
  /** SQLSTATE, when the server sent one. */
  readonly code: string | undefined
  readonly message: string
}> {}

/** SQLSTATEs worth retrying the whole transaction for. */
const RETRYABLE = new Set([
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "23505" // unique_violation (a race the locks should prevent; harmless to retry)
])

export const isRetryable = (error: DbError): boolean => error.code !== undefined && RETRYABLE.has(error.code)

export const toDbError = (cause: unknown): DbError => {
  if (cause instanceof DbError) return cause
  const e = cause as { readonly code?: unknown; readonly message?: unknown; readonly name?: unknown } | null
  const code = e !== null && typeof e === "object" && typeof e.code === "string" ? e.code : undefined
  // pg's messages name constraints and relations, never values (those are in `detail`), but a
  // connection error may carry a URL: strip anything that looks like one.
  const raw = e !== null && typeof e === "object" && typeof e.message === "string" ? e.message : String(cause)
  const message = raw.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, "<url>").slice(0, 500)
  return new DbError({ code, message })
}

export type Dialect = "pg" | "pglite"

export interface Database {
  readonly kysely: Kysely<any>
  readonly dialect: Dialect
  readonly schema: string
  /** The NOTIFY channel of the outbox. */
  readonly channel: string
  /** Runs `effect` with the database to itself (PGlite); as is on a pool. */
  readonly exclusive: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Runs a query (or a few) outside any transaction. */
  readonly run: <A>(f: (db: Kysely<any>) => Promise<A>) => Effect.Effect<A, DbError>
  /** Runs `body` in one transaction: committed when it succeeds, rolled back otherwise. */
  readonly transaction: <A, E>(body: (trx: Transaction) => Effect.Effect<A, E>) => Effect.Effect<A, E | DbError>
}

/** A transaction in progress, and a way to run queries in it. */
export interface Transaction {
  readonly trx: ControlledTransaction<any>
  readonly run: <A>(f: (trx: ControlledTransaction<any>) => Promise<A>) => Effect.Effect<A, DbError>
}

const attempt = <A>(f: () => Promise<A>): Effect.Effect<A, DbError> => Effect.tryPromise({ try: f, catch: toDbError })

export const make = (kysely: Kysely<any>, dialect: Dialect, schema: string): Database => {
  const exclusive = dialect === "pglite" ? Option.some(Semaphore.makeUnsafe(1)) : Option.none<Semaphore.Semaphore>()
  const guard = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Option.isSome(exclusive) ? Semaphore.withPermit(exclusive.value, effect) : effect

  const transaction = <A, E>(body: (trx: Transaction) => Effect.Effect<A, E>): Effect.Effect<A, E | DbError> =>
    guard(Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(attempt(() => kysely.startTransaction().execute()), (trx) => {
        const tx: Transaction = { trx, run: (f) => attempt(() => f(trx)) }
        return restore(body(tx)).pipe(
          Effect.flatMap((a) => Effect.as(attempt(() => trx.commit().execute()), a)),
          Effect.onExit((exit) =>
            Exit.isSuccess(exit) || trx.isCommitted || trx.isRolledBack
              ? Effect.void
              : Effect.promise(() => trx.rollback().execute().catch(() => undefined))
          )
        )
      })
    ))

  return {
    kysely,
    dialect,
    schema,
    channel: `${schema}_outbox`.slice(0, 63),
    exclusive: guard,
    run: (f) => guard(attempt(() => f(kysely))),
    transaction
  }
}
