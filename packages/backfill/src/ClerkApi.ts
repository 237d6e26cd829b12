/**
 * A small client for the parts of Clerk's Backend API that backfill, reconcile and revalidation
 * read: users, organizations and organization memberships, listed by offset pages or fetched by id.
 *
 * It is plain HTTP (`effect/http` over `fetch`), not `@clerk/backend`: every request goes through
 * one {@link RateLimiter} shared by all callers, a `429` pauses all of them for its `Retry-After`,
 * server errors and network failures are retried with capped exponential backoff (on `Clock`, so
 * tests drive it), and objects are kept as the raw JSON Clerk sent, which is exactly what a
 * webhook's `data` holds and what the core decoder reads.
 *
 * Endpoints (base `https://api.clerk.com/v1`, `Authorization: Bearer sk_…`):
 * - `GET /users?order_by=+created_at&limit=&offset=` — a JSON array (also accepted: `{ data }`);
 *   `GET /users?user_id=…&user_id=…` (up to 100 ids); `GET /users/{id}` (404 when absent).
 * - `GET /organizations?order_by=+created_at&limit=&offset=` — `{ data, total_count }`;
 *   `GET /organizations?organization_id=…` (up to 100 ids); `GET /organizations/{id}`.
 * - `GET /organization_memberships?order_by=+created_at&limit=&offset=` — every membership of the
 *   instance (`{ data, total_count }`); `GET /organizations/{id}/memberships` — one organization's.
 *
 * @example
 * import { Effect } from "effect"
 * import { ClerkApi } from "@clerk-sync/backfill"
 * const firstPage = ClerkApi.ClerkApi.use((api) => api.list("users", { offset: 0, limit: 500 })).pipe(
 *   Effect.provide(ClerkApi.layer({ secretKey: process.env.CLERK_SECRET_KEY! }))
 * )
 *
 * @since 0.1.0
 */
import { Clock, Config, Context, Data, Effect, Layer, Option, Redacted, Ref } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import * as RateLimiter from "./RateLimiter.ts"

/** Clerk's production Backend API. @category constants */
export const DEFAULT_API_URL = "https://api.clerk.com/v1"

/** The largest page Clerk serves. @category constants */
export const MAX_PAGE_SIZE = 500

/** The most ids one `user_id` / `organization_id` filter accepts. @category constants */
export const MAX_IDS_PER_FILTER = 100

/** A listable collection. @category models */
export type Collection = "users" | "organizations" | "organization_memberships"

/** An object as the API returned it: its JSON, with the fields backfill orders and versions by. @category models */
export interface ApiObject {
  readonly id: string
  /** `created_at` (ms; 0 when absent): the order pages are walked in. */
  readonly createdAt: number
  /** `updated_at` (ms; null when absent: the core decoder will then record the object as failed). */
  readonly updatedAt: number | null
  /** The object exactly as Clerk sent it: a webhook's `data`. */
  readonly json: { readonly [key: string]: unknown }
}

/** @category models */
export interface Page {
  readonly offset: number
  readonly limit: number
}

/** Why a request failed for good. @category models */
export type FailureReason =
  /** 401/403: the secret key is wrong, revoked, or for another instance. Never retried. */
  | "Unauthorized"
  /** Still `429` after `maxRateLimitWaits` pauses. */
  | "RateLimited"
  /** 5xx or a network failure, still failing after `maxRetries`. */
  | "Unavailable"
  /** Another 4xx (bad parameters). */
  | "Rejected"
  /** A 2xx whose body is not what the endpoint documents. */
  | "Malformed"

/**
 * A Backend API request failed for good. The message names the path and status, and Clerk's
 * error code when there is one; never the secret key nor object data.
 *
 * @category errors
 */
export class ClerkApiError extends Data.TaggedError("ClerkApiError")<{
  readonly reason: FailureReason
  readonly path: string
  readonly status: number | null
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `Clerk Backend API ${this.reason}: GET ${this.path}${this.status === null ? "" : ` (${this.status})`}${this.detail ? `: ${this.detail}` : ""}`
  }
}

/** Counters of what the client did, for progress lines and tests. @category models */
export interface Stats {
  readonly requests: number
  readonly rateLimited: number
  readonly retries: number
}

/** @category models */
export interface ClerkApiShape {
  /** One page of a collection, oldest first (`order_by=+created_at`). */
  readonly list: (collection: Collection, page: Page) => Effect.Effect<ReadonlyArray<ApiObject>, ClerkApiError>
  /** The users or organizations among `ids` (at most {@link MAX_IDS_PER_FILTER}) that exist. */
  readonly listByIds: (
    entity: "user" | "organization",
    ids: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<ApiObject>, ClerkApiError>
  /** One user or organization; `None` on 404 (deleted, or never existed). */
  readonly get: (entity: "user" | "organization", id: string) => Effect.Effect<Option.Option<ApiObject>, ClerkApiError>
  /** One page of an organization's memberships, oldest first; `None` when the organization is gone. */
  readonly listOrganizationMemberships: (
    clerkOrgId: string,
    page: Page
  ) => Effect.Effect<Option.Option<ReadonlyArray<ApiObject>>, ClerkApiError>
  readonly stats: Effect.Effect<Stats>
  readonly limiter: RateLimiter.RateLimiter
}

/**
 * The Backend API client service.
 *
 * @category services
 */
export class ClerkApi extends Context.Service<ClerkApi, ClerkApiShape>()("@clerk-sync/backfill/ClerkApi") {}

/** @category models */
export interface Options {
  /** The instance's secret key (`sk_live_…` / `sk_test_…`). */
  readonly secretKey: string | Redacted.Redacted<string>
  /** The API base URL (default {@link DEFAULT_API_URL}). */
  readonly apiUrl?: string
  /** The request rate (default 100 per 10 s; production instances allow 1,000 per 10 s). */
  readonly rate?: RateLimiter.Options
  /** Retries of 5xx answers and network failures (default 6), with exponential backoff. */
  readonly maxRetries?: number
  /** The first backoff (ms, default 500), doubled each retry, capped at `maxBackoff` (default 30 s). */
  readonly backoff?: number
  readonly maxBackoff?: number
  /** How many `429` pauses one request may wait through (default 20). */
  readonly maxRateLimitWaits?: number
  /** How long to pause after a `429` without `Retry-After` (ms; default the limiter's window). */
  readonly defaultRetryAfter?: number
}

/**
 * Reads `Retry-After`: delta-seconds or an HTTP date (relative to `now`). Returns milliseconds.
 *
 * @category parsing
 */
export const parseRetryAfter = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000)
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

const isRecord = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const millis = (u: unknown): number | null =>
  typeof u === "number" && Number.isFinite(u) ? (u < 1e12 ? u * 1000 : u) : null

/** Reads an API object (`null` when it has no string `id`). @category parsing */
export const toApiObject = (json: unknown): ApiObject | null => {
  if (!isRecord(json) || typeof json.id !== "string" || json.id.length === 0) return null
  return { id: json.id, createdAt: millis(json.created_at) ?? 0, updatedAt: millis(json.updated_at), json }
}

/** Reads a list answer: a bare array (`GET /users`) or `{ data: [...] }` (the others). */
const toList = (body: unknown): ReadonlyArray<ApiObject> | null => {
  const items = Array.isArray(body) ? body : isRecord(body) && Array.isArray(body.data) ? body.data : null
  if (items === null) return null
  const objects: Array<ApiObject> = []
  for (const item of items) {
    const object = toApiObject(item)
    if (object === null) return null
    objects.push(object)
  }
  return objects
}

const clerkErrorDetail = (body: unknown): string => {
  if (!isRecord(body) || !Array.isArray(body.errors)) return ""
  const first: unknown = body.errors[0]
  if (!isRecord(first)) return ""
  const code = typeof first.code === "string" ? first.code : ""
  const message = typeof first.message === "string" ? first.message : ""
  return [code, message].filter((s) => s.length > 0).join(": ").slice(0, 200)
}

const parseJson = (text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false } => {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

type Answer =
  | { readonly _tag: "Ok"; readonly body: unknown }
  | { readonly _tag: "NotFound" }

/**
 * Makes the client (requires an `HttpClient`; {@link layer} provides the `fetch` one).
 *
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<ClerkApiShape, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const limiter = yield* RateLimiter.make(options.rate)
    const base = (options.apiUrl ?? DEFAULT_API_URL).replace(/\/+$/, "")
    const secret = typeof options.secretKey === "string" ? Redacted.make(options.secretKey) : options.secretKey
    const maxRetries = options.maxRetries ?? 6
    const backoff = options.backoff ?? 500
    const maxBackoff = options.maxBackoff ?? 30_000
    const maxRateLimitWaits = options.maxRateLimitWaits ?? 20
    const defaultRetryAfter = options.defaultRetryAfter ?? limiter.settings.window
    const stats = yield* Ref.make<Stats>({ requests: 0, rateLimited: 0, retries: 0 })

    const fail = (reason: FailureReason, path: string, status: number | null, detail = "", cause?: unknown) =>
      Effect.fail(new ClerkApiError({ reason, path, status, detail, ...(cause === undefined ? {} : { cause }) }))

    const send = (path: string, urlParams: ReadonlyArray<readonly [string, string]>): Effect.Effect<Answer, ClerkApiError> =>
      Effect.gen(function*() {
        const request = HttpClientRequest.get(`${base}${path}`, {
          urlParams,
          headers: { authorization: `Bearer ${Redacted.value(secret)}` },
          acceptJson: true
        })
        let failures = 0
        let waits = 0
        for (;;) {
          yield* limiter.take
          yield* Ref.update(stats, (s) => ({ ...s, requests: s.requests + 1 }))
          const outcome = yield* http.execute(request).pipe(
            Effect.flatMap((response) =>
              Effect.map(
                // The body is read whatever the status, so the connection is released.
                Effect.orElseSucceed(response.text, () => ""),
                (text) => ({ status: response.status, headers: response.headers, text })
              )
            ),
            Effect.result
          )
          let retryIn: number
          if (outcome._tag === "Failure") {
            if (failures >= maxRetries) return yield* fail("Unavailable", path, null, "network failure", outcome.failure)
            retryIn = Math.min(maxBackoff, backoff * 2 ** failures++)
          } else {
            const { headers, status, text } = outcome.success
            const parsed = parseJson(text)
            if (status >= 200 && status < 300) {
              return parsed.ok ? { _tag: "Ok", body: parsed.value } : yield* fail("Malformed", path, status, "body is not JSON")
            }
            const body = parsed.ok ? parsed.value : null
            if (status === 404) return { _tag: "NotFound" }
            if (status === 401 || status === 403) return yield* fail("Unauthorized", path, status, clerkErrorDetail(body))
            if (status === 429) {
              yield* Ref.update(stats, (s) => ({ ...s, rateLimited: s.rateLimited + 1 }))
              if (waits >= maxRateLimitWaits) return yield* fail("RateLimited", path, status, clerkErrorDetail(body))
              waits++
              const now = yield* Clock.currentTimeMillis
              const pause = parseRetryAfter(headers["retry-after"], now) ?? defaultRetryAfter
              yield* limiter.pauseFor(pause)
              continue
            }
            if (status < 500) return yield* fail("Rejected", path, status, clerkErrorDetail(body))
            if (failures >= maxRetries) return yield* fail("Unavailable", path, status, clerkErrorDetail(body))
            retryIn = Math.min(maxBackoff, backoff * 2 ** failures++)
          }
          yield* Ref.update(stats, (s) => ({ ...s, retries: s.retries + 1 }))
          yield* Effect.sleep(retryIn)
        }
      })

    const pageParams = (page: Page): ReadonlyArray<readonly [string, string]> => [
      ["order_by", "+created_at"],
      ["limit", String(Math.max(1, Math.min(MAX_PAGE_SIZE, Math.floor(page.limit))))],
      ["offset", String(Math.max(0, Math.floor(page.offset)))]
    ]

    const listAt = (path: string, params: ReadonlyArray<readonly [string, string]>) =>
      Effect.flatMap(send(path, params), (answer): Effect.Effect<Option.Option<ReadonlyArray<ApiObject>>, ClerkApiError> => {
        if (answer._tag === "NotFound") return Effect.succeed(Option.none())
        const list = toList(answer.body)
        return list === null ? fail("Malformed", path, 200, "expected a list of objects with ids") : Effect.succeed(Option.some(list))
      })

    const collectionPath = (entity: "user" | "organization") => (entity === "user" ? "/users" : "/organizations")

    const list = (collection: Collection, page: Page) =>
      Effect.flatMap(listAt(`/${collection}`, pageParams(page)), (found) =>
        Option.isSome(found) ? Effect.succeed(found.value) : fail("Rejected", `/${collection}`, 404, "collection not found"))

    const listByIds = (entity: "user" | "organization", ids: ReadonlyArray<string>) => {
      if (ids.length === 0) return Effect.succeed([])
      if (ids.length > MAX_IDS_PER_FILTER) {
        return Effect.die(new RangeError(`listByIds: at most ${MAX_IDS_PER_FILTER} ids per request`))
      }
      const key = entity === "user" ? "user_id" : "organization_id"
      const params: Array<readonly [string, string]> = [["limit", String(MAX_IDS_PER_FILTER)], ...ids.map((id) => [key, id] as const)]
      return Effect.flatMap(listAt(collectionPath(entity), params), (found) =>
        Option.isSome(found) ? Effect.succeed(found.value) : fail("Rejected", collectionPath(entity), 404, "collection not found"))
    }

    const get = (entity: "user" | "organization", id: string) => {
      const path = `${collectionPath(entity)}/${encodeURIComponent(id)}`
      return Effect.flatMap(send(path, []), (answer): Effect.Effect<Option.Option<ApiObject>, ClerkApiError> => {
        if (answer._tag === "NotFound") return Effect.succeed(Option.none())
        const object = toApiObject(answer.body)
        return object === null ? fail("Malformed", path, 200, "expected an object with an id") : Effect.succeed(Option.some(object))
      })
    }

    const listOrganizationMemberships = (clerkOrgId: string, page: Page) =>
      listAt(`/organizations/${encodeURIComponent(clerkOrgId)}/memberships`, pageParams(page))

    return { list, listByIds, get, listOrganizationMemberships, stats: Ref.get(stats), limiter }
  })

/**
 * The client over `fetch`.
 *
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<ClerkApi> =>
  Layer.effect(ClerkApi, make(options)).pipe(Layer.provide(FetchHttpClient.layer))

/**
 * The client configured from the environment: `CLERK_SECRET_KEY` (required), `CLERK_API_URL`
 * (default {@link DEFAULT_API_URL}).
 *
 * @category layers
 */
export const layerConfig = (overrides: Omit<Options, "secretKey" | "apiUrl"> = {}) =>
  Layer.unwrap(Effect.gen(function*() {
    const secretKey = yield* Config.Redacted("CLERK_SECRET_KEY")
    const apiUrl = yield* Config.String("CLERK_API_URL").pipe(Config.withDefault(DEFAULT_API_URL))
    return layer({ ...overrides, secretKey, apiUrl })
  }))
