/**
 * Prometheus metrics for the reference server (`GET /metrics`, text exposition format 0.0.4):
 * webhooks by type and outcome, processing latency, inbox backlog, outbox lag, connected clients.
 *
 * Counters and the histogram live in memory; the gauges are read when scraped, from the store and
 * the realtime layer, so they are never stale.
 */
import { Context, Layer } from "effect"

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

const escape = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
const labels = (pairs: Readonly<Record<string, string>>) => {
  const body = Object.entries(pairs).map(([k, v]) => `${k}="${escape(v)}"`).join(",")
  return body.length > 0 ? `{${body}}` : ""
}

export interface Gauges {
  readonly inboxBacklog: number
  readonly inboxFailed: number
  readonly outboxLag: number
  readonly connectedClients: number
}

export interface MetricsShape {
  /** Counts one webhook and observes its duration. */
  readonly webhook: (type: string | null, outcome: string, seconds: number) => void
  readonly render: (gauges: Gauges) => string
}

export class Metrics extends Context.Service<Metrics, MetricsShape>()("reference-server/Metrics") {}

// Event types are bounded by Clerk's catalogue, but the label must not grow with hostile input.
const KNOWN_TYPE = /^[a-zA-Z]+(\.[a-zA-Z]+)+$/

export const make = (): MetricsShape => {
  const webhooks = new Map<string, number>()
  const buckets = BUCKETS.map(() => 0)
  let count = 0
  let sum = 0
  return {
    webhook: (type, outcome, seconds) => {
      const t = type !== null && KNOWN_TYPE.test(type) && type.length < 64 ? type : "unknown"
      const key = `${t}\u0000${outcome}`
      webhooks.set(key, (webhooks.get(key) ?? 0) + 1)
      count++
      sum += seconds
      BUCKETS.forEach((b, i) => {
        if (seconds <= b) buckets[i]!++
      })
    },
    render: (g) => {
      const lines: Array<string> = []
      lines.push("# HELP clerk_sync_webhooks_total Webhooks received, by event type and outcome.")
      lines.push("# TYPE clerk_sync_webhooks_total counter")
      for (const [key, value] of [...webhooks].sort()) {
        const [type, outcome] = key.split("\u0000") as [string, string]
        lines.push(`clerk_sync_webhooks_total${labels({ type, outcome })} ${value}`)
      }
      lines.push("# HELP clerk_sync_webhook_duration_seconds Time to answer a webhook.")
      lines.push("# TYPE clerk_sync_webhook_duration_seconds histogram")
      BUCKETS.forEach((b, i) => lines.push(`clerk_sync_webhook_duration_seconds_bucket${labels({ le: String(b) })} ${buckets[i]}`))
      lines.push(`clerk_sync_webhook_duration_seconds_bucket${labels({ le: "+Inf" })} ${count}`)
      lines.push(`clerk_sync_webhook_duration_seconds_sum ${sum}`)
      lines.push(`clerk_sync_webhook_duration_seconds_count ${count}`)
      const gauge = (name: string, help: string, value: number) => {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`)
      }
      gauge("clerk_sync_inbox_backlog", "Inbox rows not processed yet (received).", g.inboxBacklog)
      gauge("clerk_sync_inbox_failed", "Inbox rows that failed to decode (reprocess after an upgrade).", g.inboxFailed)
      gauge("clerk_sync_outbox_lag", "Notifications written but not yet published.", g.outboxLag)
      gauge("clerk_sync_connected_clients", "Realtime clients connected to this process.", g.connectedClients)
      return `${lines.join("\n")}\n`
    }
  }
}

export const layer = Layer.sync(Metrics, make)
