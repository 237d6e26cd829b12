/**
 * React hooks for clerk-sync (react is a peer dependency): the seeds' `useClerkWebhookSync` (Expo)
 * and `useRealtimeSync` (Next.js), made one, typed and correct.
 *
 * @example
 * import { useAuth } from "@clerk/clerk-react" // or @clerk/nextjs, @clerk/clerk-expo
 * import { useClerkSync } from "@clerk-sync/client/react"
 * function Orgs() {
 *   const { getToken } = useAuth()
 *   const { status, organizations, roleIn } = useClerkSync({
 *     url: process.env.NEXT_PUBLIC_SERVER_URL!,
 *     getToken,
 *     onRoleChange: () => router.refresh() // permissions changed: refetch what depends on them
 *   })
 *   return <ul>{organizations.map((o) => <li key={o.organization.clerkOrgId}>{o.organization.name} ({o.role})</li>)}</ul>
 * }
 *
 * @since 0.1.0
 */
import { useEffect, useRef, useState, useSyncExternalStore } from "react"
import { type ClerkSyncClient, connect, type ConnectOptions } from "./Client.ts"
import type { Notification, NotificationName, NotificationOf } from "./Protocol.ts"
import { createSyncState, type RoleChange, type SyncState, type SyncStateValue } from "./State.ts"

/** @category models */
export interface UseClerkSyncOptions extends ConnectOptions {
  /** Connect only while true (e.g. while signed in). Default true. */
  readonly enabled?: boolean
  /** A role was gained, changed or lost: refresh permissions. */
  readonly onRoleChange?: (change: RoleChange) => void
  /** Every notification (after dedupe), e.g. to invalidate queries. */
  readonly onNotification?: (notification: Notification) => void
}

/** @category models */
export interface UseClerkSyncResult extends SyncStateValue {
  /** The role in an organization (null: not a member). */
  readonly roleIn: (clerkOrgId: string) => string | null
  /** The client (null while disabled). */
  readonly client: ClerkSyncClient | null
}

const idle: SyncStateValue = {
  status: "closed",
  error: null,
  user: null,
  organizations: [],
  memberships: [],
  lastNotification: null,
  lastSeq: null
}
const noop = () => () => {}

/**
 * Connects while mounted (and enabled), and gives the signed-in user's organizations, memberships
 * and roles, the connection status and the last error. The connection is kept across renders;
 * `getToken` and the callbacks may change freely.
 *
 * @category hooks
 */
export const useClerkSync = (options: UseClerkSyncOptions): UseClerkSyncResult => {
  const latest = useRef(options)
  latest.current = options
  const enabled = options.enabled ?? true
  const [pair, setPair] = useState<{ readonly client: ClerkSyncClient; readonly state: SyncState } | null>(null)

  useEffect(() => {
    if (!enabled) return
    const { enabled: _e, onRoleChange: _r, onNotification: _n, ...connectOptions } = latest.current
    const client = connect({ ...connectOptions, getToken: () => latest.current.getToken() })
    const state = createSyncState(client)
    const offRole = state.onRoleChange((c) => latest.current.onRoleChange?.(c))
    const offAny = client.onAny((n) => latest.current.onNotification?.(n))
    setPair({ client, state })
    return () => {
      offRole()
      offAny()
      state.dispose()
      client.close()
      setPair(null)
    }
  }, [enabled, options.url, options.namespace, options.path, options.storageKey])

  const value = useSyncExternalStore(
    pair ? pair.state.subscribe : noop,
    pair ? pair.state.get : () => idle,
    pair ? pair.state.get : () => idle
  )
  return { ...value, roleIn: pair ? pair.state.roleIn : () => null, client: pair?.client ?? null }
}

/**
 * Calls `handler` for one notification name while mounted.
 *
 * @example
 * useClerkSyncEvent(sync.client, "organization.updated", (n) => setName(n.organization.name))
 *
 * @category hooks
 */
export const useClerkSyncEvent = <N extends NotificationName>(
  client: ClerkSyncClient | null,
  name: N,
  handler: (notification: NotificationOf<N>) => void
): void => {
  const latest = useRef(handler)
  latest.current = handler
  useEffect(() => (client ? client.on(name, (n) => latest.current(n)) : undefined), [client, name])
}

/** The seeds' Expo hook name. @category hooks */
export const useClerkWebhookSync = useClerkSync
/** The seeds' Next.js hook name. @category hooks */
export const useRealtimeSync = useClerkSync
