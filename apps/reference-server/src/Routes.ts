/**
 * The reference server's own routes: health, readiness, Prometheus metrics, and the sync dashboard
 * behind `ADMIN_TOKEN`.
 */
import { Auth } from "@clerk-sync/adapter-socketio"
import { Ingest, SyncStore } from "@clerk-sync/core"
import { Effect, Layer, Redacted } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { browserBundlePath } from "@clerk-sync/client/browser-bundle"
import { createHmac, timingSafeEqual } from "node:crypto"
import { readFileSync } from "node:fs"
import * as Dashboard from "./Dashboard.ts"
import { Metrics } from "./Metrics.ts"
import { Realtime } from "./Realtime.ts"
import { ServerSettings } from "./Settings.ts"

const COOKIE = "clerk_sync_admin"
const NO_STORE = { "cache-control": "no-store" }

/** The dashboard cookie holds a value derived from the admin token, never the token itself. */
const cookieValue = (adminToken: string) => createHmac("sha256", adminToken).update("clerk-sync dashboard cookie v1").digest("base64url")

const same = (a: string, b: string) => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

type Admission = "admin" | { readonly login: string } | "denied"

/** Admits a request carrying the admin token (`Authorization: Bearer`, `?token=`) or the dashboard cookie. */
const admit = (request: HttpServerRequest.HttpServerRequest, adminToken: string): Admission => {
  const auth = request.headers["authorization"]
  if (typeof auth === "string" && auth.startsWith("Bearer ") && same(auth.slice(7).trim(), adminToken)) return "admin"
  const cookie = request.cookies[COOKIE]
  if (cookie !== undefined && same(cookie, cookieValue(adminToken))) return "admin"
  const token = new URL(request.url, "http://localhost").searchParams.get("token")
  if (token !== null && same(token, adminToken)) return { login: token }
  return "denied"
}

const denied = HttpServerResponse.text(
  "The dashboard needs the admin token: open /dashboard/test-sync?token=<ADMIN_TOKEN> (development: the token is in .clerk-sync/admin-token).\n",
  { status: 401, headers: { ...NO_STORE, "www-authenticate": "Bearer" } }
)

/** Where the dashboard page gets a fresh admin session token for its realtime connection. */
const TOKEN_PATH = "/dashboard/api/token"

/**
 * Whether a browser says the request comes from another origin. The dashboard's cookie is
 * SameSite=Strict, which still sends it from sibling subdomains (same site, other origin): the
 * dashboard's state-changing and token routes answer only its own page. Callers that are not
 * browsers send no `Sec-Fetch-Site` and are judged by their credentials alone.
 */
const crossOrigin = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const site = request.headers["sec-fetch-site"]
  return site !== undefined && site !== "same-origin"
}

const crossOriginRefused = HttpServerResponse.text("cross-origin dashboard requests are refused\n", { status: 403, headers: NO_STORE })

const sessionToken = (adminToken: string, ttlSeconds: number) =>
  Effect.promise(() => Auth.createAdminSessionToken({ adminToken, ttlSeconds }))

const readData = Effect.gen(function*() {
  const store = yield* SyncStore.SyncStore
  return {
    counts: yield* store.counts,
    inbox: yield* store.listInbox({ limit: 50 }),
    users: yield* store.listUsers(100),
    organizations: yield* store.listOrganizations(100),
    memberships: yield* store.listMemberships(200)
  } satisfies Dashboard.DashboardData
})

const unavailable = (e: { readonly message: string }) =>
  Effect.as(Effect.logWarning(e.message), HttpServerResponse.text("storage unavailable\n", { status: 503, headers: { ...NO_STORE, "retry-after": "5" } }))

/** The realtime client as an ES module, for the dashboard page (public code, no secret in it). */
const clientBundle = Effect.sync(() => readFileSync(browserBundlePath, "utf8")).pipe(Effect.cached, Effect.runSync)

export const layer = Layer.mergeAll(
  HttpRouter.add("GET", "/dashboard/client.js", Effect.map(clientBundle, (js) =>
    HttpServerResponse.text(js, { headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=300" } }))),

  HttpRouter.add("GET", "/healthz", HttpServerResponse.text("ok\n", { headers: NO_STORE })),

  HttpRouter.add("GET", "/readyz", Effect.gen(function*() {
    const store = yield* SyncStore.SyncStore
    // The store layer is built only once its migrations are done, so reaching it means both.
    yield* store.outboxFloor
    return HttpServerResponse.text("ready\n", { headers: NO_STORE })
  }).pipe(Effect.catchTag("StorageUnavailable", unavailable))),

  HttpRouter.add("GET", "/metrics", Effect.gen(function*() {
    const metrics = yield* Metrics
    const realtime = yield* Realtime
    const counts = yield* (yield* SyncStore.SyncStore).counts
    const body = metrics.render({
      inboxBacklog: counts.inbox.received,
      inboxFailed: counts.inbox.failed,
      outboxLag: counts.outboxPending,
      connectedClients: realtime.connectedClients()
    })
    return HttpServerResponse.text(body, { headers: { ...NO_STORE, "content-type": "text/plain; version=0.0.4; charset=utf-8" } })
  }).pipe(Effect.catchTag("StorageUnavailable", unavailable))),

  HttpRouter.add("GET", "/dashboard/test-sync", (request) =>
    Effect.gen(function*() {
      const settings = yield* ServerSettings
      const adminToken = Redacted.value(settings.adminToken)
      const admission = admit(request, adminToken)
      if (admission === "denied") return denied
      if (admission !== "admin") {
        // Trade the token in the URL for a cookie, and drop it from the address bar and history.
        return HttpServerResponse.redirect("/dashboard/test-sync", { status: 303, headers: NO_STORE }).pipe(
          HttpServerResponse.setCookieUnsafe(COOKIE, cookieValue(adminToken), { httpOnly: true, sameSite: "strict", path: "/dashboard", maxAge: "12 hours" })
        )
      }
      const realtime = yield* Realtime
      // The page's token only opens its first connection; the script renews it from TOKEN_PATH,
      // so it may be as short-lived as the ones it renews with.
      const live = realtime.socketIo
        ? { clientScript: "/dashboard/client.js", tokenUrl: TOKEN_PATH, token: yield* sessionToken(adminToken, settings.dashboardTokenTtlSeconds) }
        : null
      return HttpServerResponse.html(Dashboard.page(yield* readData, live)).pipe(HttpServerResponse.setHeaders(NO_STORE))
    }).pipe(Effect.catchTag("StorageUnavailable", unavailable))),

  HttpRouter.add("POST", TOKEN_PATH, (request) =>
    Effect.gen(function*() {
      const settings = yield* ServerSettings
      const adminToken = Redacted.value(settings.adminToken)
      // The page's cookie (or a bearer admin token, for scripts); never `?token=`, which would put
      // the admin token in URLs and logs for every renewal.
      if (admit(request, adminToken) !== "admin") return denied
      if (crossOrigin(request)) return crossOriginRefused
      const ttlSeconds = settings.dashboardTokenTtlSeconds
      return yield* HttpServerResponse.json({ token: yield* sessionToken(adminToken, ttlSeconds), ttlSeconds }, { headers: NO_STORE })
    }).pipe(Effect.orDie)),

  HttpRouter.add("GET", "/dashboard/fragment", (request) =>
    Effect.gen(function*() {
      const settings = yield* ServerSettings
      if (admit(request, Redacted.value(settings.adminToken)) !== "admin") return denied
      return HttpServerResponse.html(Dashboard.sections(yield* readData)).pipe(HttpServerResponse.setHeaders(NO_STORE))
    }).pipe(Effect.catchTag("StorageUnavailable", unavailable))),

  HttpRouter.add("GET", "/dashboard/api/state", (request) =>
    Effect.gen(function*() {
      const settings = yield* ServerSettings
      if (admit(request, Redacted.value(settings.adminToken)) !== "admin") return denied
      return yield* HttpServerResponse.json(Dashboard.toJson(yield* readData), { headers: NO_STORE })
    }).pipe(Effect.catchTag("StorageUnavailable", unavailable), Effect.orDie)),

  HttpRouter.add("POST", "/dashboard/api/reprocess", (request) =>
    Effect.gen(function*() {
      const settings = yield* ServerSettings
      if (admit(request, Redacted.value(settings.adminToken)) !== "admin") return denied
      if (crossOrigin(request)) return crossOriginRefused
      const results = yield* Ingest.reprocess({ receivedBefore: Date.now() - 60_000, limit: 500 })
      const summary = { reprocessed: results.length, processed: results.filter((r) => r.status === "processed").length, failed: results.filter((r) => r.status === "failed").length }
      yield* Effect.logInfo(`dashboard: reprocessed ${summary.reprocessed} events (${summary.processed} processed, ${summary.failed} still failing)`)
      const accept = request.headers["accept"] ?? ""
      return accept.includes("application/json")
        ? yield* HttpServerResponse.json(summary, { headers: NO_STORE })
        : HttpServerResponse.redirect("/dashboard/test-sync", { status: 303, headers: NO_STORE })
    }).pipe(Effect.catchTag("StorageUnavailable", unavailable), Effect.orDie))
)
