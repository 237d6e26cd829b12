/** Posts signed Clerk deliveries to a running server, as Clerk would. */
import { signWebhook } from "@clerk-sync/adapter-http"

export const deliver = async (
  url: string,
  secret: string,
  events: ReadonlyArray<{ readonly svixId: string; readonly body: string }>
): Promise<ReadonlyArray<{ readonly status: number; readonly body: { readonly status?: string } }>> => {
  const results = []
  for (const e of events) {
    const res = await fetch(`${url}/api/webhooks/clerk`, {
      method: "POST",
      headers: { "content-type": "application/json", ...signWebhook({ secret, svixId: e.svixId, body: e.body }) },
      body: e.body
    })
    results.push({ status: res.status, body: (await res.json()) as { status?: string } })
  }
  return results
}
