/**
 * The Promise surface, for teams that do not use Effect.
 *
 * Build one instance per process from a store layer (the in-memory store, or
 * `@clerk-sync/adapter-postgres`), then call plain async functions. Failures reject with the same
 * typed errors the Effect API fails with (`error._tag` tells them apart), never with a wrapper.
 *
 * @example
 * import { ClerkSync, MemoryStore } from "@clerk-sync/core"
 * const sync = ClerkSync.make(MemoryStore.layer)
 * await sync.ingest({ svixId: "msg_1", body })
 * const user = await sync.getCurrentUser({ userId: "user_123" })
 * await sync.dispose()
 *
 * @since 0.1.0
 */
import { Effect, type Layer, ManagedRuntime } from "effect"
import * as AuthHelpers from "./AuthHelpers.ts"
import type { UserRow } from "./Domain.ts"
import * as Ingest from "./Ingest.ts"
import { defaultSettings, type Settings } from "./Planner.ts"
import type { OrganizationMembership, SyncStore } from "./SyncStore.ts"

/** @category models */
export interface Options {
  /** Planner settings (personal data on deletion, id generation). */
  readonly planner?: Partial<Settings>
}

/** @category models */
export interface ClerkSync<E = never> {
  readonly ingest: (delivery: Ingest.Delivery) => Promise<Ingest.IngestResult>
  readonly reprocess: (options: { readonly receivedBefore: number; readonly limit: number }) => Promise<ReadonlyArray<Ingest.IngestResult>>
  readonly getCurrentUser: (session: AuthHelpers.SessionIds) => Promise<UserRow>
  readonly getCurrentOrganization: (session: AuthHelpers.SessionIds) => Promise<AuthHelpers.CurrentOrganization>
  readonly getAuthContext: (session: AuthHelpers.SessionIds) => Promise<AuthHelpers.AuthContext>
  readonly requireAuthContext: (
    session: AuthHelpers.SessionIds,
    required?: AuthHelpers.Requirement
  ) => Promise<{ readonly user: UserRow; readonly organization: AuthHelpers.CurrentOrganization }>
  readonly getUserOrganizations: (session: AuthHelpers.SessionIds) => Promise<ReadonlyArray<OrganizationMembership>>
  /** The runtime behind the functions, to run your own Effect programs against the same store. */
  readonly runtime: ManagedRuntime.ManagedRuntime<SyncStore, E>
  /** The planner settings this instance applies. */
  readonly settings: Settings
  /**
   * Runs an Effect program against the store with this instance's planner settings (what the other
   * functions do). Pass an `AbortSignal` to interrupt it.
   */
  readonly run: <A, X>(effect: Effect.Effect<A, X, SyncStore>, options?: { readonly signal?: AbortSignal }) => Promise<A>
  /** Releases the store (closes pools). */
  readonly dispose: () => Promise<void>
}

/**
 * Makes a Promise-based clerk-sync from a store layer.
 *
 * @category constructors
 */
export const make = <E>(store: Layer.Layer<SyncStore, E>, options: Options = {}): ClerkSync<E> => {
  const runtime = ManagedRuntime.make(store)
  const settings: Settings = { ...defaultSettings, ...options.planner }
  const run = <A, X>(effect: Effect.Effect<A, X, SyncStore>, runOptions?: { readonly signal?: AbortSignal }): Promise<A> =>
    runtime.runPromise(Effect.provideService(effect, Ingest.PlannerSettings, settings), runOptions)
  return {
    ingest: (delivery) => run(Ingest.ingest(delivery)),
    reprocess: (o) => run(Ingest.reprocess(o)),
    getCurrentUser: (s) => run(AuthHelpers.getCurrentUser(s)),
    getCurrentOrganization: (s) => run(AuthHelpers.getCurrentOrganization(s)),
    getAuthContext: (s) => run(AuthHelpers.getAuthContext(s)),
    requireAuthContext: (s, r) => run(AuthHelpers.requireAuthContext(s, r)),
    getUserOrganizations: (s) => run(AuthHelpers.getUserOrganizations(s)),
    runtime,
    settings,
    run,
    dispose: () => runtime.dispose()
  }
}
