/**
 * The core's publisher contract, run against the Supabase publisher and the local Realtime
 * endpoint. Realtime keeps order within a topic, not across topics: the contract checks order per
 * subscriber of one topic, and the exact set for subscribers of several.
 */
import { publisherContract } from "@clerk-sync/core/testing"
import type { Notification } from "@clerk-sync/core"
import * as SupabaseBroadcast from "../src/SupabaseBroadcast.ts"
import { startFakeRealtime } from "./utils/FakeRealtime.ts"

const KEY = "service-role-key-for-contract"

publisherContract("supabase", async () => {
  const fake = await startFakeRealtime(KEY)
  return {
    publisher: SupabaseBroadcast.make({ url: fake.url, serviceKey: KEY, includeAdmin: true, retries: 1, retryDelay: "5 millis" }),
    subscribe: async (audiences) => {
      const sub = fake.subscribe(audiences)
      return { received: () => sub.received as unknown as ReadonlyArray<Notification.Delivered>, close: async () => {} }
    },
    failNext: () => fake.failNext({ status: 503 }, { status: 503 }),
    close: () => fake.close()
  }
}, { crossAudienceOrder: false })
