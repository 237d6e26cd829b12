/**
 * A fake of the Clerk Backend API endpoints backfill uses: a real `node:http` server on
 * 127.0.0.1 serving the live state of a {@link ClerkSimulator} (so objects have Clerk's shapes,
 * and the webhooks of the same history can be delivered while it serves).
 *
 * - `GET /v1/users` (a JSON array), `/v1/users/:id`, `/v1/organizations` (`{ data, total_count }`),
 *   `/v1/organizations/:id`, `/v1/organizations/:id/memberships`, `/v1/organization_memberships`;
 * - `limit` (1–500, default 10), `offset`, `order_by` (`±created_at`, default `-created_at`),
 *   `user_id` / `organization_id` filters (up to 100);
 * - `Authorization: Bearer <secretKey>` or 401; 404 for deleted or unknown objects;
 * - 429 with `Retry-After`: injected (`inject429`) or enforced (`enforce: { limit, window }`);
 * - failures on demand (`failNext`, `failFrom`), lists that lag (`hiddenFromLists`), a hook before
 *   each request (to change the simulator mid-walk), and a log of every request with how many
 *   objects it returned.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { ClerkSimulator } from "@clerk-sync/core"

type Sim = ClerkSimulator.ClerkSimulator

export interface FakeOptions {
  readonly secretKey?: string
  /** Answer 429 when more than `limit` requests arrive within `window` ms (sliding window). */
  readonly enforce?: { readonly limit: number; readonly window: number; readonly retryAfterSeconds?: number }
}

export interface LoggedRequest {
  /** Arrival, `performance.now()` ms. */
  readonly at: number
  readonly path: string
  readonly query: string
  readonly status: number
  /** Objects returned (lists), 1 for a single object. */
  readonly returned: number
}

// The API's JSON is exactly what the simulator's webhooks carry in `data`: one encoder for both.
export const { membershipJson, organizationJson, userJson } = ClerkSimulator

interface Listed {
  readonly id: string
  readonly createdAt: number
}

const order = <A extends Listed>(items: Array<A>, orderBy: string | null): Array<A> => {
  const descending = orderBy === null || orderBy.startsWith("-")
  const sign = descending ? -1 : 1
  return items.sort((a, b) => sign * (a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)))
}

export class FakeClerkApi {
  readonly log: Array<LoggedRequest> = []
  /** How many times each object (`user:<id>`, `organization:<id>`, `membership:<id>`) was returned by a list. */
  readonly served = new Map<string, number>()
  readonly secretKey: string
  /** Ids left out of list answers, as a lagging replica would (single-object GETs still see them). */
  readonly hiddenFromLists = new Set<string>()
  url = ""
  #server: Server
  #queued429: Array<number> = []
  #failNext = 0
  #failStatus = 503
  #failFrom: number | null = null
  #hook: ((path: string) => void) | null = null
  readonly #enforce: FakeOptions["enforce"]
  #recent: Array<number> = []

  private constructor(readonly simulator: Sim, options: FakeOptions) {
    this.secretKey = options.secretKey ?? "sk_test_fake"
    this.#enforce = options.enforce
    this.#server = createServer((req, res) => this.#handle(req, res))
  }

  static async start(simulator: Sim, options: FakeOptions = {}): Promise<FakeClerkApi> {
    const fake = new FakeClerkApi(simulator, options)
    await new Promise<void>((resolve) => fake.#server.listen(0, "127.0.0.1", resolve))
    const { port } = fake.#server.address() as AddressInfo
    fake.url = `http://127.0.0.1:${port}/v1`
    return fake
  }

  close(): Promise<void> {
    this.#server.closeAllConnections()
    return new Promise((resolve, reject) => this.#server.close((e) => (e ? reject(e) : resolve())))
  }

  /** The next `count` requests answer 429 with `Retry-After: retryAfterSeconds`. */
  inject429(count: number, retryAfterSeconds = 1): void {
    for (let i = 0; i < count; i++) this.#queued429.push(retryAfterSeconds)
  }

  /** The next `count` requests answer `status` (default 503). */
  failNext(count: number, status = 503): void {
    this.#failNext = count
    this.#failStatus = status
  }

  /** Every request from the `n`-th (1-based, counted from now) answers `status` until {@link heal}. */
  failFrom(n: number, status = 503): void {
    this.#failFrom = this.log.length + n
    this.#failStatus = status
  }

  heal(): void {
    this.#failFrom = null
    this.#failNext = 0
  }

  /** Called before each authorized request is answered (change the simulator mid-walk). */
  onRequest(hook: ((path: string) => void) | null): void {
    this.#hook = hook
  }

  get requests(): number {
    return this.log.length
  }

  /** Objects returned by list requests. */
  objectsServed(prefix = ""): number {
    let n = 0
    for (const [key, count] of this.served) if (key.startsWith(prefix)) n += count
    return n
  }

  /** The most requests that arrived within any `window` ms. */
  maxInWindow(window: number, filter: (r: LoggedRequest) => boolean = () => true): number {
    const times = this.log.filter(filter).map((r) => r.at).sort((a, b) => a - b)
    let best = 0
    let lo = 0
    for (let hi = 0; hi < times.length; hi++) {
      while (times[hi]! - times[lo]! >= window) lo++
      best = Math.max(best, hi - lo + 1)
    }
    return best
  }

  #send(res: ServerResponse, entry: Omit<LoggedRequest, "status" | "returned">, status: number, body: unknown, returned = 0, headers: Record<string, string> = {}) {
    this.log.push({ ...entry, status, returned })
    const text = JSON.stringify(body)
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers })
    res.end(text)
  }

  #error(code: string, message: string) {
    return { errors: [{ code, message, long_message: message }] }
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const at = performance.now()
    const url = new URL(req.url ?? "/", "http://fake")
    const entry = { at, path: url.pathname, query: url.search }
    if (req.method !== "GET") return this.#send(res, entry, 405, this.#error("method_not_allowed", "GET only"))
    if (req.headers.authorization !== `Bearer ${this.secretKey}`) {
      return this.#send(res, entry, 401, this.#error("authentication_invalid", "Invalid secret key"))
    }
    const queued = this.#queued429.shift()
    if (queued !== undefined) {
      return this.#send(res, entry, 429, this.#error("too_many_requests", "Too many requests"), 0, { "retry-after": String(queued) })
    }
    if (this.#enforce) {
      const { limit, window } = this.#enforce
      this.#recent = this.#recent.filter((t) => at - t < window)
      if (this.#recent.length >= limit) {
        const retryAfter = this.#enforce.retryAfterSeconds ?? Math.ceil(window / 1000)
        return this.#send(res, entry, 429, this.#error("too_many_requests", "Too many requests"), 0, { "retry-after": String(retryAfter) })
      }
      this.#recent.push(at)
    }
    if (this.#failNext > 0) {
      this.#failNext--
      return this.#send(res, entry, this.#failStatus, this.#error("internal_error", "injected failure"))
    }
    if (this.#failFrom !== null && this.log.length + 1 >= this.#failFrom) {
      return this.#send(res, entry, this.#failStatus, this.#error("internal_error", "injected failure"))
    }
    this.#hook?.(url.pathname)
    this.#route(url, entry, res)
  }

  #page(url: URL): { readonly limit: number; readonly offset: number } | string {
    const limit = url.searchParams.has("limit") ? Number(url.searchParams.get("limit")) : 10
    const offset = url.searchParams.has("offset") ? Number(url.searchParams.get("offset")) : 0
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) return "limit must be between 1 and 500"
    if (!Number.isInteger(offset) || offset < 0) return "offset must be a non-negative integer"
    return { limit, offset }
  }

  #list<A extends Listed>(
    url: URL,
    entry: Omit<LoggedRequest, "status" | "returned">,
    res: ServerResponse,
    kind: string,
    items: Array<A>,
    json: (a: A) => unknown,
    shape: "array" | "paginated",
    filterKey?: string
  ) {
    const page = this.#page(url)
    if (typeof page === "string") return this.#send(res, entry, 422, this.#error("form_param_value_invalid", page))
    let selected = this.hiddenFromLists.size === 0 ? items : items.filter((i) => !this.hiddenFromLists.has(i.id))
    if (filterKey !== undefined && url.searchParams.has(filterKey)) {
      const ids = url.searchParams.getAll(filterKey)
      if (ids.length > 100) return this.#send(res, entry, 422, this.#error("form_param_value_invalid", `at most 100 ${filterKey}`))
      const wanted = new Set(ids)
      selected = selected.filter((i) => wanted.has(i.id))
    }
    const ordered = order(selected, url.searchParams.get("order_by"))
    const slice = ordered.slice(page.offset, page.offset + page.limit)
    for (const item of slice) this.served.set(`${kind}:${item.id}`, (this.served.get(`${kind}:${item.id}`) ?? 0) + 1)
    const data = slice.map(json)
    return this.#send(res, entry, 200, shape === "array" ? data : { data, total_count: ordered.length }, data.length)
  }

  #route(url: URL, entry: Omit<LoggedRequest, "status" | "returned">, res: ServerResponse): void {
    const sim = this.simulator
    const parts = url.pathname.split("/").filter((p) => p.length > 0).map(decodeURIComponent)
    if (parts[0] !== "v1") return this.#send(res, entry, 404, this.#error("resource_not_found", "not found"))
    const [, collection, id, sub] = parts
    const liveUsers = () => [...sim.users.values()].filter((u) => !u.deleted)
    const liveOrgs = () => [...sim.organizations.values()].filter((o) => !o.deleted)
    const notFound = () => this.#send(res, entry, 404, this.#error("resource_not_found", "not found"))
    if (collection === "users" && id === undefined) {
      return this.#list(url, entry, res, "user", liveUsers(), userJson, "array", "user_id")
    }
    if (collection === "users" && sub === undefined) {
      const u = sim.users.get(id!)
      return u && !u.deleted ? this.#send(res, entry, 200, userJson(u), 1) : notFound()
    }
    if (collection === "organizations" && id === undefined) {
      return this.#list(url, entry, res, "organization", liveOrgs(), organizationJson, "paginated", "organization_id")
    }
    if (collection === "organizations" && sub === undefined) {
      const o = sim.organizations.get(id!)
      return o && !o.deleted ? this.#send(res, entry, 200, organizationJson(o), 1) : notFound()
    }
    if (collection === "organizations" && sub === "memberships" && parts.length === 4) {
      const o = sim.organizations.get(id!)
      if (!o || o.deleted) return notFound()
      const members = sim.liveMemberships().filter((m) => m.organizationId === o.id)
      return this.#list(url, entry, res, "membership", members, (m) => membershipJson(sim, m), "paginated")
    }
    if (collection === "organization_memberships" && id === undefined) {
      return this.#list(url, entry, res, "membership", [...sim.liveMemberships()], (m) => membershipJson(sim, m), "paginated")
    }
    return notFound()
  }
}
