/**
 * The canonical state of a store for a set of Clerk ids: what two stores must agree on when they
 * have received the same events, in whatever order.
 *
 * Internal ids are left out (each store makes its own); ended memberships are left out (only
 * whether a pair is live, and how, is observable); tombstones keep their deletion time.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import type { ClerkSimulator } from "../ClerkSimulator.ts"
import { isLive } from "../Domain.ts"
import { type StorageUnavailable, SyncStore } from "../SyncStore.ts"

/** @category models */
export interface CanonicalState {
  readonly users: Readonly<Record<string, unknown>>
  readonly organizations: Readonly<Record<string, unknown>>
  readonly memberships: Readonly<Record<string, unknown>>
}

/**
 * Reads the canonical state of the given Clerk ids (every pair of them for memberships).
 *
 * @category reading
 */
export const read = (ids: { readonly users: Iterable<string>; readonly organizations: Iterable<string> }): Effect.Effect<CanonicalState, StorageUnavailable, SyncStore> =>
  Effect.gen(function*() {
    const store = yield* SyncStore
    const userIds = [...ids.users].sort()
    const orgIds = [...ids.organizations].sort()
    const users: Record<string, unknown> = {}
    const organizations: Record<string, unknown> = {}
    const memberships: Record<string, unknown> = {}
    for (const id of userIds) {
      const row = yield* store.findUser(id)
      if (Option.isSome(row)) {
        const { id: _, ...rest } = row.value
        users[id] = rest
      }
    }
    for (const id of orgIds) {
      const row = yield* store.findOrganization(id)
      if (Option.isSome(row)) {
        const { id: _, ...rest } = row.value
        organizations[id] = rest
      }
    }
    for (const u of userIds) {
      for (const o of orgIds) {
        const row = yield* store.findMembership(u, o)
        if (Option.isSome(row) && isLive(row.value)) {
          const m = row.value
          const { id: _, userId: __, organizationId: ___, ...rest } = m
          memberships[`${u}|${o}`] = rest
        }
      }
    }
    return { users, organizations, memberships }
  })

/** The canonical state of every id a simulator knows. @category reading */
export const ofSimulator = (simulator: ClerkSimulator) =>
  read({ users: simulator.users.keys(), organizations: simulator.organizations.keys() })
