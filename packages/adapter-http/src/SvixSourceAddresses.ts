/**
 * The addresses Svix sends webhooks from, by region, as published at
 * https://docs.svix.com/receiving/source-ips (also https://docs.svix.com/webhook-ips.json).
 *
 * Use one region as the endpoint's `allow` list, as defense in depth: the signature is what
 * authenticates a delivery. Svix notes that static source addresses are not guaranteed on every
 * plan, and lists change: check the page before relying on these.
 *
 * @example
 * import { SvixSourceAddresses, createWebhookHandler } from "@clerk-sync/adapter-http"
 * createWebhookHandler({ store, secret, allow: SvixSourceAddresses.us })
 *
 * @since 0.1.0
 */

/** @category constants */
export const us: ReadonlyArray<string> = [
  "44.228.126.217",
  "50.112.21.217",
  "52.24.126.164",
  "54.148.139.208",
  "2600:1f24:64:8000::/56"
]

/** @category constants */
export const eu: ReadonlyArray<string> = ["52.215.16.239", "54.216.8.72", "63.33.109.123", "2a05:d028:17:8000::/56"]

/** Australia (private region). @category constants */
export const au: ReadonlyArray<string> = ["13.239.204.236", "54.66.246.217", "54.252.65.96", "2406:da2c:13:4000::/56"]

/** Canada (private region). @category constants */
export const ca: ReadonlyArray<string> = ["52.60.44.49", "3.98.68.230", "3.96.105.27", "2600:1f21:1c:4000::/56"]

/** India (private region). @category constants */
export const india: ReadonlyArray<string> = ["13.126.41.108", "15.207.218.84", "65.2.133.31"]
