/**
 * A {@link Publisher} over Supabase Realtime Broadcast: each notification is broadcast on the topic
 * of each of its audiences — `org:<clerkOrgId>`, `user:<clerkUserId>` — as a private-channel
 * message, through Realtime's REST batch endpoint (`POST /realtime/v1/api/broadcast`, the one
 * supabase-js itself uses when a channel is not subscribed), authenticated with the service key.
 *
 * - Event name: the notification's (`membership.updated`, …); payload: `{ ...payload, seq }`.
 * - Many messages per request (a batch of the relay becomes a few requests), in `seq` order; Realtime
 *   keeps that order within a topic. Across topics it does not: a client subscribed to several
 *   topics must dedupe by the set of `seq`s it has seen, not by the highest.
 * - Retries with backoff on 5xx, 429 (honouring `Retry-After`), timeouts and network errors; any
 *   other answer fails the batch at once with a {@link PublishError} (the relay retries it later,
 *   and clients drop what they already have).
 * - Who may listen is decided by Realtime Authorization: see {@link Policies}.
 *
 * @example
 * import { SupabaseBroadcast } from "@clerk-sync/adapter-supabase"
 * const publisher = SupabaseBroadcast.make({ url: process.env.SUPABASE_URL!, serviceKey: process.env.SUPABASE_SERVICE_KEY! })
 * // give it to the outbox relay: Effect.provideService(Publisher.Publisher, publisher)
 *
 * @since 0.1.0
 */
import { Notification, Publisher } from "@clerk-sync/core"
import { createClient } from "@supabase/supabase-js"
import { Config, Data, Duration, Effect, Layer, Redacted, Schedule } from "effect"

/** @category models */
export interface Options {
  /** `SUPABASE_URL` (`https://<project>.supabase.co`). */
  readonly url: string
  /** `SUPABASE_SERVICE_KEY`: the service-role key (server side only). */
  readonly serviceKey: string | Redacted.Redacted<string>
  /** Also broadcast the `admin` audience, on topic `admin` (default false: no one but your own policies can read it). */
  readonly includeAdmin?: boolean
  /** Prefix of every topic (default none: `org:<id>`, `user:<id>`). */
  readonly topicPrefix?: string
  /** Private channels (default true: Realtime Authorization applies). */
  readonly private?: boolean
  /** Messages per request (default 100; Realtime answers 429 to a batch over the project's rate). */
  readonly maxMessagesPerRequest?: number
  /** Retries of a request (default 4). */
  readonly retries?: number
  /** First retry delay (default 200 ms, doubling, at most 5 s). */
  readonly retryDelay?: Duration.Input
  /** Request timeout (default 10 s). */
  readonly timeout?: Duration.Input
  /** A fetch of your own (default: the platform's). */
  readonly fetch?: typeof fetch
}

/** One broadcast message, as the endpoint takes it. @category models */
export interface BroadcastMessage {
  readonly topic: string
  readonly event: string
  readonly payload: Notification.Delivered
  readonly private: boolean
}

class Transient extends Data.TaggedError("Transient")<{ readonly status: number | null; readonly detail: string }> {}
class Rejected extends Data.TaggedError("Rejected")<{ readonly status: number; readonly detail: string }> {}

/** The messages for a batch, in `seq` order. @category constructors */
export const messagesOf = (
  notifications: ReadonlyArray<Notification.Stored>,
  options: Pick<Options, "includeAdmin" | "topicPrefix" | "private"> = {}
): ReadonlyArray<BroadcastMessage> => {
  const prefix = options.topicPrefix ?? ""
  const isPrivate = options.private ?? true
  return notifications.flatMap((n) => {
    const payload = Notification.toDelivered(n)
    return n.audiences
      .filter((a) => a !== "admin" || options.includeAdmin === true)
      .map((a) => ({ topic: `${prefix}${a}`, event: n.payload.name, payload, private: isPrivate }))
  })
}

const retryAfterMs = (header: string | null): number | null => {
  if (header === null) return null
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.min(30_000, Math.max(0, seconds * 1000))
  const date = Date.parse(header)
  return Number.isNaN(date) ? null : Math.min(30_000, Math.max(0, date - Date.now()))
}

/**
 * Makes the publisher.
 *
 * @category constructors
 */
export const make = (options: Options): Publisher.PublisherShape => {
  const serviceKey = Redacted.isRedacted(options.serviceKey) ? Redacted.value(options.serviceKey) : options.serviceKey
  const supabase = createClient(options.url, serviceKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    ...(options.fetch ? { global: { fetch: options.fetch } } : {})
  })
  // The endpoint and transport supabase-js's own REST broadcast uses.
  const endpoint = supabase.realtime.httpEndpoint
  const doFetch = supabase.realtime.fetch
  const headers = {
    apikey: serviceKey,
    Authorization: `Bearer ${serviceKey}`,
    "Content-Type": "application/json"
  }
  const perRequest = Math.max(1, options.maxMessagesPerRequest ?? 100)
  const timeout = Duration.fromInputUnsafe(options.timeout ?? "10 seconds")

  const post = (messages: ReadonlyArray<BroadcastMessage>) =>
    Effect.tryPromise({
      try: (signal) => doFetch(endpoint, { method: "POST", headers, body: JSON.stringify({ messages }), signal }),
      catch: (cause) => new Transient({ status: null, detail: cause instanceof Error ? cause.message : String(cause) })
    }).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new Transient({ status: null, detail: `no answer within ${Duration.format(timeout)}` }))
      }),
      Effect.flatMap((res) =>
        Effect.gen(function*() {
          if (res.ok) {
            yield* Effect.promise(() => res.body?.cancel() ?? Promise.resolve())
            return
          }
          const detail = (yield* Effect.promise(() => res.text().catch(() => ""))).slice(0, 500)
          if (res.status === 429 || res.status >= 500) {
            const wait = retryAfterMs(res.headers.get("retry-after"))
            if (wait !== null && wait > 0) yield* Effect.sleep(Duration.millis(wait))
            return yield* new Transient({ status: res.status, detail })
          }
          return yield* new Rejected({ status: res.status, detail })
        })
      ),
      Effect.retry({
        schedule: Schedule.min([Schedule.exponential(options.retryDelay ?? "200 millis", 2), Schedule.spaced("5 seconds")]),
        times: options.retries ?? 4,
        while: (e) => e._tag === "Transient"
      }),
      Effect.mapError((e) =>
        new Publisher.PublishError({
          publisher: "supabase",
          cause: { status: e.status, detail: e.detail, retryable: e._tag === "Transient" }
        })
      )
    )

  return {
    name: "supabase",
    publish: (notifications) =>
      Effect.gen(function*() {
        const messages = messagesOf(notifications, options)
        for (let i = 0; i < messages.length; i += perRequest) yield* post(messages.slice(i, i + perRequest))
      }).pipe(Effect.withSpan("SupabaseBroadcast.publish"))
  }
}

/** The publisher as the core's {@link Publisher} service. @category layers */
export const layer = (options: Options): Layer.Layer<Publisher.Publisher> => Layer.succeed(Publisher.Publisher, make(options))

/**
 * From the environment, as the seeds name it: `SUPABASE_URL`, `SUPABASE_SERVICE_KEY`.
 *
 * @category layers
 */
export const layerConfig = (options: Omit<Options, "url" | "serviceKey"> = {}): Layer.Layer<Publisher.Publisher, Config.ConfigError> =>
  Layer.effect(
    Publisher.Publisher,
    Effect.map(
      Config.all({ url: Config.String("SUPABASE_URL"), serviceKey: Config.Redacted("SUPABASE_SERVICE_KEY") }),
      (c) => make({ ...options, url: c.url, serviceKey: c.serviceKey })
    )
  )
