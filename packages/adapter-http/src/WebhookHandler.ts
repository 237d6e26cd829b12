/**
 * The webhook endpoint, once: every surface (the Fetch handler, the Node adapter, the `effect/http`
 * route) runs {@link handleWebhook}.
 *
 * Checks run cheapest and safest first, and nothing is written before the signature is verified:
 *
 * | step | check                                                | answer                       |
 * |------|------------------------------------------------------|------------------------------|
 * | 1    | method is POST                                       | 405 + `Allow: POST`          |
 * | 2    | declared `Content-Length` within `maxBodyBytes`      | 413                          |
 * | 3    | `svix-id`, `svix-timestamp`, `svix-signature` present and well formed | 400          |
 * | 4    | client address in the allow-list (when configured)   | 403                          |
 * | 5    | rate limit of the source (when configured)           | 429 + `Retry-After`          |
 * | 6    | body read, streamed, within `maxBodyBytes`; UTF-8    | 413 / 400                    |
 * | 7    | timestamp within 5 minutes; a signature matches      | 401                          |
 * | 8    | in-flight ingests below `maxInFlight`                | 503 + `Retry-After`          |
 * | 9    | ingest (timeout `ingestTimeout`)                     | 200, or 503 + `Retry-After`  |
 *
 * 200 covers every authentic delivery: `processed`, `duplicate` (the `svix-id` was seen before),
 * `ignored` (an event type clerk-sync does not sync) and `failed` (authentic but undecodable; a
 * retry cannot fix it, `reprocess` can after an upgrade). The body is always JSON
 * `{ status, eventId, error? }`; never a stack trace, a secret or the payload.
 *
 * Each request logs one structured line ({@link LogLine}): method, status, outcome, svix id, event
 * type, duration; the client address only with `logClientAddress: true`.
 *
 * @example
 * import { Effect } from "effect"
 * import { MemoryStore } from "@clerk-sync/core"
 * import { WebhookHandler } from "@clerk-sync/adapter-http"
 * const endpoint = WebhookHandler.make({ secret: process.env.CLERK_WEBHOOK_SIGNING_SECRET! })
 * const response = await Effect.runPromise(
 *   WebhookHandler.handleWebhook(request, endpoint).pipe(Effect.provide(MemoryStore.layer))
 * )
 *
 * @since 0.1.0
 */
import { Ingest, type SyncStore } from "@clerk-sync/core"
import { Clock, Data, Duration, Effect } from "effect"
import * as Cidr from "./Cidr.ts"
import * as ClientAddress from "./ClientAddress.ts"
import { isBodyConsumed, remoteAddressOf } from "./internal/connection.ts"
import { concatBytes, decodeUtf8 } from "./internal/utf8.ts"
import * as RateLimiter from "./RateLimiter.ts"
import * as Signature from "./Signature.ts"

/** The path the examples and the reference server mount the endpoint on. @category constants */
export const defaultPath = "/api/webhooks/clerk"

/** @category models */
export interface RateLimitOptions extends RateLimiter.Options {
  /** The bucket a request counts against (default: its client address; `"unknown"` without one). */
  readonly key?: (clientAddress: string | undefined, request: Request) => string
}

/** @category models */
export interface Options {
  /**
   * The signing secret(s) from the Clerk dashboard (`whsec_…`). Several (an array, or one string
   * separated by commas or spaces) during a rotation: a delivery signed by any of them is accepted.
   * Required: there is no way to turn verification off.
   */
  readonly secret: Signature.SecretInput
  /** Largest body accepted, in bytes (default 64 KiB; Clerk's payloads are a few KB). */
  readonly maxBodyBytes?: number
  /** Ingests running at once beyond which requests get 503 + `Retry-After` at once (default 64). */
  readonly maxInFlight?: number
  /** How long an ingest may take before the answer is 503 (default 10 seconds; Svix waits 15). */
  readonly ingestTimeout?: Duration.Input
  /** The `Retry-After` of 503 answers, in seconds (default 5). */
  readonly retryAfterSeconds?: number
  /**
   * Address ranges allowed to call (CIDR or single addresses, IPv4 and IPv6), e.g.
   * `SvixSourceAddresses.us`. When set, a request whose client address is unknown is refused too.
   * Default: any address (the signature is what authenticates).
   */
  readonly allow?: ReadonlyArray<string>
  /** A token bucket per source (default: off; Svix is the only legitimate sender and retries late). */
  readonly rateLimit?: RateLimitOptions | false
  /**
   * Where a request came from (default {@link ClientAddress.remoteAddress}: the socket address the
   * Node adapter or the Effect route attached; none in a bare Fetch runtime). Behind a proxy use
   * {@link ClientAddress.forwardedFor}.
   */
  readonly clientAddress?: (request: Request) => string | undefined
  /**
   * Receives the one log line of each request. Default: the Effect logger (info / warn / error by
   * status) for the Effect surfaces, one JSON line on the console for `createWebhookHandler`.
   * `false` logs nothing.
   */
  readonly log?: ((line: LogLine) => void) | false
  /** Include the client address in log lines (default false: it is personal data in some places). */
  readonly logClientAddress?: boolean
}

/** What happened to a request; the `outcome` of its log line. @category models */
export type Outcome =
  | Ingest.IngestStatus
  | "method_not_allowed"
  | "payload_too_large"
  | "missing_headers"
  | "invalid_headers"
  | "unreadable_body"
  | "body_already_parsed"
  | "forbidden"
  | "rate_limited"
  | "timestamp_out_of_tolerance"
  | "invalid_signature"
  | "overloaded"
  | "storage_unavailable"
  | "storage_timeout"
  | "internal_error"

/** The `status` field of the JSON answer. @category models */
export type ResponseStatus = Ingest.IngestStatus | "rejected" | "unavailable" | "error"

/** The JSON body of every answer. @category models */
export interface ResponseBody {
  readonly status: ResponseStatus
  /** The `svix-id` (when the request had a well-formed one). */
  readonly eventId: string | null
  /** A stable code when the delivery was not processed (the outcome, or `undecodable_payload`). */
  readonly error?: string
}

/** The structured log line written once per request. No secret, no payload, no headers. @category models */
export interface LogLine {
  readonly message: "clerk-sync webhook"
  readonly method: string
  readonly status: number
  readonly outcome: Outcome
  readonly svixId: string | null
  readonly eventType: string | null
  readonly durationMs: number
  /** Why, when useful: a decode error (paths, never values), the storage operation, a defect's name. */
  readonly detail?: string
  /** Only with `logClientAddress: true`. */
  readonly clientAddress?: string
}

const TypeId = "~@clerk-sync/adapter-http/WebhookHandler/Endpoint"

/**
 * A configured endpoint: verified secrets, parsed ranges, and the state shared by its requests
 * (rate-limit buckets, in-flight count). Build one per route with {@link make}.
 *
 * @category models
 */
export interface Endpoint {
  readonly [TypeId]: typeof TypeId
  readonly verifier: Signature.Verifier
  readonly maxBodyBytes: number
  readonly maxInFlight: number
  readonly ingestTimeout: Duration.Duration
  readonly retryAfterSeconds: number
  readonly allow: Cidr.RangeSet | undefined
  readonly limiter: RateLimiter.RateLimiter | undefined
  readonly rateKey: (clientAddress: string | undefined, request: Request) => string
  readonly clientAddress: (request: Request) => string | undefined
  readonly log: ((line: LogLine) => void) | false | undefined
  readonly logClientAddress: boolean
  readonly state: { inFlight: number }
}

/** An option out of range. @category errors */
export class InvalidOption extends Data.TaggedError("InvalidOption")<{ readonly reason: string }> {
  override get message(): string {
    return `invalid webhook option: ${this.reason}`
  }
}

/** What {@link make} throws: the endpoint is misconfigured and must not start. @category errors */
export type ConfigurationError = Signature.InvalidSecret | Cidr.InvalidRange | InvalidOption

const positiveInt = (name: string, value: number | undefined, fallback: number): number => {
  const n = value ?? fallback
  if (!(Number.isSafeInteger(n) && n > 0)) throw new InvalidOption({ reason: `${name} must be a positive integer` })
  return n
}

const limiterOf = (options: RateLimitOptions): RateLimiter.RateLimiter => {
  try {
    return RateLimiter.make(options)
  } catch (error) {
    throw new InvalidOption({ reason: error instanceof Error ? error.message : "rateLimit" })
  }
}

const durationOf = (input: Duration.Input): Duration.Duration => {
  try {
    return Duration.fromInputUnsafe(input)
  } catch {
    throw new InvalidOption({ reason: "ingestTimeout is not a duration" })
  }
}

const defaultRateKey = (address: string | undefined): string => address ?? "unknown"

/**
 * Builds an endpoint. Throws a {@link ConfigurationError} at once (no or malformed secret, bad
 * address range, non-positive limit): a misconfigured webhook must not start.
 *
 * @category constructors
 */
export const make = (options: Options): Endpoint => ({
  [TypeId]: TypeId,
  verifier: Signature.makeVerifier(options.secret),
  maxBodyBytes: positiveInt("maxBodyBytes", options.maxBodyBytes, 64 * 1024),
  maxInFlight: positiveInt("maxInFlight", options.maxInFlight, 64),
  ingestTimeout: durationOf(options.ingestTimeout ?? "10 seconds"),
  retryAfterSeconds: positiveInt("retryAfterSeconds", options.retryAfterSeconds, 5),
  allow: options.allow === undefined ? undefined : Cidr.make(options.allow),
  limiter: options.rateLimit ? limiterOf(options.rateLimit) : undefined,
  rateKey: (options.rateLimit && options.rateLimit.key) || defaultRateKey,
  clientAddress: options.clientAddress ?? ClientAddress.remoteAddress,
  log: options.log,
  logClientAddress: options.logClientAddress ?? false,
  state: { inFlight: 0 }
})

/**
 * {@link make} as an Effect that fails with the {@link ConfigurationError} instead of throwing.
 *
 * @category constructors
 */
export const makeEffect = (options: Options): Effect.Effect<Endpoint, ConfigurationError> =>
  Effect.try({
    try: () => make(options),
    catch: (error) =>
      error instanceof Signature.InvalidSecret || error instanceof Cidr.InvalidRange || error instanceof InvalidOption
        ? error
        : new InvalidOption({ reason: error instanceof Error ? error.message : "unknown" })
  })

/** @category guards */
export const isEndpoint = (u: Options | Endpoint): u is Endpoint => TypeId in u

const endpoints = new WeakMap<Options, Endpoint>()

/**
 * The endpoint of an options object: built on first use and kept for that same object, so the
 * rate limiter and the in-flight bound are shared by every request handled with it.
 *
 * @category constructors
 */
export const endpointOf = (options: Options | Endpoint): Endpoint => {
  if (isEndpoint(options)) return options
  let endpoint = endpoints.get(options)
  if (endpoint === undefined) {
    endpoint = make(options)
    endpoints.set(options, endpoint)
  }
  return endpoint
}

/**
 * A request as the handler reads it, whatever the server: what an adapter to another server
 * implements to run the handler without converting to a Fetch `Request` (the `effect/http` route
 * does so; {@link incomingOf} is the Fetch one).
 *
 * @category models
 */
export interface Incoming {
  readonly method: string
  /** A header's value (lower-case name), or null/undefined when absent. */
  readonly header: (name: string) => string | null | undefined
  /** A framework read the body already: the bytes Svix signed are gone. */
  readonly bodyConsumed: boolean
  /** The peer's address (the default client address). */
  readonly remoteAddress: string | undefined
  /** Reads the body as it streams in, stopping past `limit` bytes. */
  readonly readBody: (limit: number) => Effect.Effect<BodyRead>
  /** A Fetch `Request` (body not included) for the `clientAddress` and rate-limit `key` options. */
  readonly toRequest: () => Request
}

/** The body of a request, read within a limit. @category models */
export type BodyRead =
  | { readonly _tag: "Read"; readonly text: string }
  | { readonly _tag: "TooLarge" }
  | { readonly _tag: "Unreadable" }

/** The answer, for an adapter to write: JSON text and its headers (lower-case names). @category models */
export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** How the handler ingests an authentic delivery. @category models */
export type Ingester<R> = (delivery: Ingest.Delivery) => Effect.Effect<Ingest.IngestResult, SyncStore.StorageUnavailable, R>

interface Decision {
  readonly httpStatus: number
  readonly outcome: Outcome
  readonly status: ResponseStatus
  readonly retryAfterSeconds?: number
  readonly detail?: string
}

interface Trace {
  svixId: string | null
  eventType: string | null
  clientAddress: string | undefined
}

const reject = (httpStatus: number, outcome: Outcome, extra?: Partial<Decision>): Decision => ({
  httpStatus,
  outcome,
  status: httpStatus >= 500 ? (httpStatus === 503 ? "unavailable" : "error") : "rejected",
  ...extra
})

const SVIX_ID = /^[\x21-\x7e]{1,256}$/
const TIMESTAMP = /^\d{1,12}$/
const MAX_SIGNATURE_HEADER = 4096
const DIGITS = /^\d+$/

const unreadable: BodyRead = { _tag: "Unreadable" }

/** Reads the body as it streams in, stopping (and cancelling the stream) past `limit` bytes. */
const readBody = (request: Request, limit: number): Effect.Effect<BodyRead> => {
  const stream = request.body
  if (stream === null) return Effect.succeed({ _tag: "Read", text: "" })
  if (request.bodyUsed || stream.locked) return Effect.succeed(unreadable)
  return Effect.acquireUseRelease(
    Effect.sync(() => ({ reader: stream.getReader(), done: false })),
    (handle) =>
      Effect.gen(function*() {
        const chunks: Array<Uint8Array> = []
        let size = 0
        while (true) {
          const next = yield* Effect.tryPromise({ try: () => handle.reader.read(), catch: () => "unreadable" as const })
          if (next.done) break
          const chunk: unknown = next.value
          if (!(chunk instanceof Uint8Array)) return unreadable
          size += chunk.byteLength
          if (size > limit) return { _tag: "TooLarge" } as const
          chunks.push(chunk)
        }
        handle.done = true
        const text = decodeUtf8(concatBytes(chunks, size))
        return text === undefined ? unreadable : { _tag: "Read", text } as const
      }).pipe(Effect.catch(() => Effect.succeed(unreadable))),
    (handle) =>
      Effect.sync(() => {
        if (handle.done) handle.reader.releaseLock()
        else handle.reader.cancel().catch(() => undefined) // stop the upload; never await a stalled peer
      })
  )
}

type IngestRun =
  | { readonly _tag: "Done"; readonly result: Ingest.IngestResult }
  | { readonly _tag: "Unavailable"; readonly operation: string }
  | { readonly _tag: "Timeout" }

const decide = <R>(request: Incoming, endpoint: Endpoint, ingest: Ingester<R>, trace: Trace): Effect.Effect<Decision, never, R> =>
  Effect.gen(function*() {
    // 1. method
    if (request.method !== "POST") return reject(405, "method_not_allowed")
    if (request.bodyConsumed) return reject(500, "body_already_parsed")

    // 2. declared size
    const contentLength = request.header("content-length")
    if (contentLength != null && DIGITS.test(contentLength) && Number(contentLength) > endpoint.maxBodyBytes) {
      return reject(413, "payload_too_large")
    }

    // 3. headers
    const id = request.header("svix-id")
    const timestamp = request.header("svix-timestamp")
    const signature = request.header("svix-signature")
    if (!id || !timestamp || !signature) return reject(400, "missing_headers")
    if (!SVIX_ID.test(id)) return reject(400, "invalid_headers")
    trace.svixId = id
    if (!TIMESTAMP.test(timestamp) || signature.length > MAX_SIGNATURE_HEADER) return reject(400, "invalid_headers")

    // 4. allow-list, 5. rate limit
    // The callbacks take a Fetch request: built only when one is configured.
    const address = endpoint.clientAddress === ClientAddress.remoteAddress ? request.remoteAddress : endpoint.clientAddress(request.toRequest())
    trace.clientAddress = address
    if (endpoint.allow !== undefined && (address === undefined || !Cidr.contains(endpoint.allow, address))) {
      return reject(403, "forbidden")
    }
    if (endpoint.limiter !== undefined) {
      const key = endpoint.rateKey === defaultRateKey ? defaultRateKey(address) : endpoint.rateKey(address, request.toRequest())
      const taken = RateLimiter.take(endpoint.limiter, key, yield* Clock.currentTimeMillis)
      if (!taken.allowed) return reject(429, "rate_limited", { retryAfterSeconds: taken.retryAfterSeconds })
    }

    // Shed load before spending anything on the request: under overload, reading and verifying
    // bodies only to refuse them is what saturates the process. (The slot itself is taken at step 8.)
    if (endpoint.state.inFlight >= endpoint.maxInFlight) {
      return reject(503, "overloaded", { retryAfterSeconds: endpoint.retryAfterSeconds })
    }

    // 6. body, streamed and bounded
    const body = yield* request.readBody(endpoint.maxBodyBytes)
    if (body._tag === "TooLarge") return reject(413, "payload_too_large")
    if (body._tag === "Unreadable") return reject(400, "unreadable_body")

    // 7. signature
    const verification = Signature.verify(endpoint.verifier, { id, timestamp, signature }, body.text, yield* Clock.currentTimeMillis)
    if (verification !== "verified") return reject(401, verification)

    // 8. in-flight bound, 9. ingest (the slot is taken and released atomically, even on interruption)
    const state = endpoint.state
    const run: IngestRun | "overloaded" = yield* Effect.acquireUseRelease(
      Effect.sync(() => state.inFlight < endpoint.maxInFlight && ++state.inFlight > 0),
      (admitted): Effect.Effect<IngestRun | "overloaded", never, R> =>
        admitted
          ? ingest({ svixId: id, body: body.text }).pipe(
            Effect.map((result): IngestRun => ({ _tag: "Done", result })),
            Effect.catchTag("StorageUnavailable", (e) => Effect.succeed<IngestRun>({ _tag: "Unavailable", operation: e.operation })),
            Effect.timeoutOrElse({ duration: endpoint.ingestTimeout, orElse: () => Effect.succeed<IngestRun>({ _tag: "Timeout" }) })
          )
          : Effect.succeed("overloaded" as const),
      (admitted) => (admitted ? Effect.sync(() => void state.inFlight--) : Effect.void)
    )
    if (run === "overloaded") return reject(503, "overloaded", { retryAfterSeconds: endpoint.retryAfterSeconds })
    switch (run._tag) {
      case "Unavailable":
        return reject(503, "storage_unavailable", { retryAfterSeconds: endpoint.retryAfterSeconds, detail: run.operation })
      case "Timeout":
        return reject(503, "storage_timeout", { retryAfterSeconds: endpoint.retryAfterSeconds })
      case "Done": {
        const { result } = run
        trace.eventType = result.type
        return {
          httpStatus: 200,
          outcome: result.status,
          status: result.status,
          ...(result.error === null ? {} : { detail: result.error })
        }
      }
    }
  })

const describeDefect = (defect: unknown): string =>
  defect instanceof Error ? `${defect.name}: ${defect.message}`.slice(0, 200) : "defect"

const answerOf = (decision: Decision, eventId: string | null): Answer => {
  const body: ResponseBody = {
    status: decision.status,
    eventId,
    ...(decision.httpStatus !== 200
      ? { error: decision.outcome }
      : decision.outcome === "failed"
      ? { error: "undecodable_payload" }
      : {})
  }
  const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" }
  if (decision.httpStatus === 405) headers["allow"] = "POST"
  if (decision.retryAfterSeconds !== undefined) headers["retry-after"] = String(decision.retryAfterSeconds)
  return { status: decision.httpStatus, headers, body: JSON.stringify(body) }
}

/** An {@link Answer} as a Fetch `Response`. @category adapters */
export const toResponse = (answer: Answer): Response => new Response(answer.body, { status: answer.status, headers: answer.headers })

/**
 * A Fetch `Request` as an {@link Incoming}: the body streamed within the limit, the peer address
 * and consumed-body mark an adapter attached.
 *
 * @category adapters
 */
export const incomingOf = (request: Request): Incoming => ({
  method: request.method,
  header: (name) => request.headers.get(name),
  bodyConsumed: isBodyConsumed(request),
  remoteAddress: remoteAddressOf(request),
  readBody: (limit) => readBody(request, limit),
  toRequest: () => request
})

const writeLog = (endpoint: Endpoint, line: LogLine): Effect.Effect<void> => {
  const log = endpoint.log
  if (log === false) return Effect.void
  if (log !== undefined) {
    return Effect.sync(() => {
      try {
        log(line)
      } catch {
        // a failing logger must not change the answer
      }
    })
  }
  const { message, ...annotations } = line
  const level = line.status >= 500 ? "Error" : line.status >= 400 ? "Warn" : "Info"
  return Effect.logWithLevel(level)(message).pipe(Effect.annotateLogs(annotations))
}

/**
 * The shared implementation, with the ingest step given: {@link handleWebhook} passes
 * `Ingest.ingest`, the Promise surface passes a `ClerkSync` instance's `ingest`.
 *
 * @category handlers
 */
export const handleWith = <R>(request: Request, endpoint: Endpoint, ingest: Ingester<R>): Effect.Effect<Response, never, R> =>
  Effect.map(handleIncoming(incomingOf(request), endpoint, ingest), toResponse)

/**
 * The implementation, on an {@link Incoming} request: what {@link handleWith} runs after wrapping a
 * Fetch `Request`, and what an adapter to another server runs directly.
 *
 * @category handlers
 */
export const handleIncoming = <R>(request: Incoming, endpoint: Endpoint, ingest: Ingester<R>): Effect.Effect<Answer, never, R> =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const trace: Trace = { svixId: null, eventType: null, clientAddress: undefined }
    const decision = yield* decide(request, endpoint, ingest, trace).pipe(
      Effect.catchDefect((defect) => Effect.succeed(reject(500, "internal_error", { detail: describeDefect(defect) })))
    )
    const finished = yield* Clock.currentTimeMillis
    yield* writeLog(endpoint, {
      message: "clerk-sync webhook",
      method: request.method,
      status: decision.httpStatus,
      outcome: decision.outcome,
      svixId: trace.svixId,
      eventType: trace.eventType,
      durationMs: finished - started,
      ...(decision.detail === undefined ? {} : { detail: decision.detail }),
      ...(endpoint.logClientAddress && trace.clientAddress !== undefined ? { clientAddress: trace.clientAddress } : {})
    })
    return answerOf(decision, trace.svixId)
  })


/**
 * Handles one webhook request against the {@link SyncStore} in context. Never fails: every outcome
 * is an answer (see the table in the module doc).
 *
 * Pass an {@link Endpoint} (or the same options object every time) so that requests share the rate
 * limiter and the in-flight bound.
 *
 * @category handlers
 */
export const handleWebhook = (request: Request, options: Options | Endpoint): Effect.Effect<Response, never, SyncStore.SyncStore> =>
  handleWith(request, endpointOf(options), (delivery) => Ingest.ingest(delivery))
