/**
 * The reference server, wired: settings → store → publishers → relay → HTTP (webhooks, dashboard,
 * credentials API, health, metrics) and Socket.IO on one port.
 *
 * Shutdown runs in the reverse order: the HTTP server stops taking requests and lets those in
 * flight finish, the relay drains the outbox once more, then the database closes.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { WebhookRoute } from "@clerk-sync/adapter-http"
import { Encryption } from "@clerk-sync/encryption"
import { Effect, Layer, Redacted } from "effect"
import { HttpRouter } from "effect/http"
import * as Credentials from "./Credentials.ts"
import * as Metrics from "./Metrics.ts"
import { NodeServer } from "./NodeServer.ts"
import * as Realtime from "./Realtime.ts"
import * as Routes from "./Routes.ts"
import * as Settings from "./Settings.ts"
import * as Store from "./Store.ts"

const Webhooks = Layer.unwrap(Effect.gen(function*() {
  const settings = yield* Settings.ServerSettings
  const metrics = yield* Metrics.Metrics
  return WebhookRoute.layer({
    secret: settings.webhookSecrets.map(Redacted.value),
    maxBodyBytes: settings.maxBodyBytes,
    maxInFlight: settings.maxInFlight,
    rateLimit: settings.webhookRateLimit > 0 ? { perSecond: settings.webhookRateLimit, burst: settings.webhookRateLimit * 2 } : false,
    log: (line) => {
      metrics.webhook(line.eventType, line.outcome, line.durationMs / 1000)
      const level = line.status >= 500 ? "warn" : "info"
      console[level](JSON.stringify({ level, ...line }))
    }
  })
}))

const Http = Layer.unwrap(Effect.gen(function*() {
  const settings = yield* Settings.ServerSettings
  const server = yield* NodeServer
  return HttpRouter.serve(Layer.mergeAll(Webhooks, Routes.layer, Credentials.routes), { disableListenLog: true, disableLogger: true }).pipe(
    Layer.provide(NodeHttpServer.layer(() => server, { port: settings.port, host: settings.host }))
  )
}))

const Cipher = Layer.unwrap(Settings.ServerSettings.useSync((s) =>
  Encryption.layer({ key: s.encryptionKey, previousKeys: s.previousEncryptionKeys })
))

/** Everything but the settings. */
export const layerWithoutSettings = Http.pipe(
  Layer.provide(Realtime.relay),
  Layer.provideMerge(Realtime.publishers),
  Layer.provideMerge(Credentials.layer),
  Layer.provideMerge(Store.layer),
  Layer.provideMerge(Layer.mergeAll(NodeServer.layer, Metrics.layer, Cipher))
)

/** The whole server, configured from the environment. */
export const layer = layerWithoutSettings.pipe(Layer.provideMerge(Settings.layer))
