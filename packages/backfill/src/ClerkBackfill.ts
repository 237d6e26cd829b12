/**
 * The Promise surface, for apps that do not use Effect: backfill, reconcile and a revalidating
 * ingest as plain async functions, against the app's store.
 *
 * @example
 * import { ClerkSync, MemoryStore } from "@clerk-sync/core"
 * import { ClerkBackfill } from "@clerk-sync/backfill"
 * const backfill = ClerkBackfill.make({ store: MemoryStore.layer, secretKey: process.env.CLERK_SECRET_KEY! })
 * const summary = await backfill.backfill()                    // resumable; call again to resume
 * const report = await backfill.reconcile({ dryRun: true })   // what was deleted in Clerk
 * await backfill.dispose()
 *
 * @since 0.1.0
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { type ClerkSync, Ingest, type Planner, type SyncStore } from "@clerk-sync/core"
import * as Backfill from "./Backfill.ts"
import * as ClerkApi from "./ClerkApi.ts"
import * as Reconcile from "./Reconcile.ts"
import * as Revalidate from "./Revalidate.ts"

/** Where the store comes from: a layer, or an existing `ClerkSync` instance (and its planner settings). @category models */
export type StoreSource =
  | { readonly store: Layer.Layer<SyncStore.SyncStore, unknown>; readonly clerkSync?: never }
  | { readonly clerkSync: Pick<ClerkSync.ClerkSync<unknown>, "run">; readonly store?: never }

/** @category models */
export type Options = StoreSource & ClerkApi.Options & {
  /** Planner settings (with `{ store }`: pass the webhook handler's; a `ClerkSync` instance brings its own). */
  readonly planner?: Partial<Planner.Settings>
}

/** @category models */
export interface ClerkBackfill {
  readonly backfill: (options?: Backfill.Options) => Promise<Backfill.Summary>
  readonly reconcile: (options?: Reconcile.Options) => Promise<Reconcile.Report>
  /**
   * A revalidating ingest: give `{ ingest }` to `createWebhookHandler({ clerkSync: … })` in place of
   * the `ClerkSync` instance.
   */
  readonly ingest: (delivery: Ingest.Delivery) => Promise<Ingest.IngestResult>
  /** Releases the runtime (and the store layer given as `{ store }`; a `ClerkSync` instance stays open). */
  readonly dispose: () => Promise<void>
}

/**
 * Makes the Promise surface. One instance shares one rate limiter across all its calls.
 *
 * @category constructors
 */
export const make = (options: Options & { readonly revalidate?: Revalidate.Options }): ClerkBackfill => {
  const apiLayer = ClerkApi.layer(options)
  const planner = options.planner
  const withPlanner = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    planner === undefined ? effect : Effect.updateService(effect, Ingest.PlannerSettings, (s) => ({ ...s, ...planner }))
  let run: <A, E>(effect: Effect.Effect<A, E, SyncStore.SyncStore | ClerkApi.ClerkApi>) => Promise<A>
  let dispose: () => Promise<void>
  if (options.clerkSync !== undefined) {
    const clerkSync = options.clerkSync
    const apiRuntime = ManagedRuntime.make(apiLayer)
    const api = apiRuntime.runPromise(ClerkApi.ClerkApi.useSync((service) => service))
    run = (effect) => api.then((service) => clerkSync.run(withPlanner(Effect.provideService(effect, ClerkApi.ClerkApi, service))))
    dispose = () => apiRuntime.dispose()
  } else {
    const runtime = ManagedRuntime.make(Layer.merge(options.store, apiLayer))
    run = (effect) => runtime.runPromise(withPlanner(effect))
    dispose = () => runtime.dispose()
  }
  const revalidate = options.revalidate ?? {}
  return {
    backfill: (o) => run(Backfill.run(o)),
    reconcile: (o) => run(Reconcile.run(o)),
    ingest: (delivery) => run(Revalidate.ingest(delivery, revalidate)),
    dispose
  }
}
