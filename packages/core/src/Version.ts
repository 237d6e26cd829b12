/**
 * Versions: the total order in which clerk-sync decides which Clerk state is newest.
 *
 * A version is a string that sorts (by code unit, i.e. Postgres `COLLATE "C"`) in the order
 * `rank, at, timestamp, eventId`:
 * - `rank` 0 = placeholder built from data embedded in another event, 1 = a real event about the
 *   entity, 2 = a tombstone (users and organizations are never resurrected, so it outranks all);
 * - `at` = the Clerk state's own time (`data.updated_at`, or the envelope timestamp for deletions);
 * - `timestamp` = the envelope timestamp; `eventId` = the `svix-id`. These break ties between
 *   same-millisecond events deterministically, never by arrival order.
 *
 * Being a plain string, a version can be compared in SQL (`WHERE excluded.version > t.version`)
 * as well as in memory.
 *
 * @since 0.1.0
 */

/** @category models */
export type Rank = 0 | 1 | 2

/** @category models */
export type Version = string

/** The rank of placeholders built from embedded data. @category constants */
export const PLACEHOLDER: Rank = 0
/** The rank of real events. @category constants */
export const REAL: Rank = 1
/** The rank of tombstones. @category constants */
export const TOMBSTONE: Rank = 2

const WIDTH = 16

const pad = (n: number): string => {
  const clamped = Math.max(0, Math.min(Math.trunc(Number.isFinite(n) ? n : 0), 9_999_999_999_999_999))
  return clamped.toString().padStart(WIDTH, "0")
}

/**
 * Builds a version.
 *
 * @example
 * import { Version } from "@clerk-sync/core"
 * Version.make(Version.REAL, 1716883200000, 1716883200000, "msg_1") > Version.make(Version.PLACEHOLDER, 1716883200001, 0, "msg_0") // true
 *
 * @category constructors
 */
export const make = (rank: Rank, at: number, timestamp: number, eventId: string): Version =>
  `${rank}.${pad(at)}.${pad(timestamp)}.${eventId}`

/** The rank of a version. @category accessors */
export const rankOf = (version: Version): Rank => Number(version.charAt(0)) as Rank

/** The `at` milliseconds of a version. @category accessors */
export const atOf = (version: Version): number => Number(version.slice(2, 2 + WIDTH))

/** Whether `a` is strictly newer than `b` (a missing `b` is older than anything). @category ordering */
export const isNewer = (a: Version, b: Version | null | undefined): boolean => b == null || a > b

/** The same version at another rank (a tombstone or placeholder made by an event). @category constructors */
export const withRank = (version: Version, rank: Rank): Version => `${rank}${version.slice(1)}`

/** The newer of two versions. @category ordering */
export const max = (a: Version, b: Version): Version => (a > b ? a : b)

/** The lowest possible version, below any real one. @category constants */
export const ZERO: Version = make(PLACEHOLDER, 0, 0, "")

/**
 * Clerk timestamps are documented as milliseconds, but Clerk's own examples also carry seconds
 * (`1716883200`). Any value below 10^12 (September 2001 in ms) is taken as seconds and scaled.
 *
 * @category conversions
 */
export const toMillis = (value: number): number => (value < 1e12 ? value * 1000 : value)
