/**
 * The sync dashboard (the seeds' "test sync page"), at `/dashboard/test-sync`: counts, recent
 * webhook events with status and error, users, organizations, memberships, and a button to
 * reprocess failed events. Rendered on the server (it works without JavaScript); with JavaScript
 * it connects to the realtime endpoint as `admin` and refreshes itself when a change is published.
 */
import type { Domain, SyncStore } from "@clerk-sync/core"

export interface DashboardData {
  readonly counts: SyncStore.Counts
  readonly inbox: ReadonlyArray<SyncStore.InboxEntry>
  readonly users: ReadonlyArray<Domain.UserRow>
  readonly organizations: ReadonlyArray<Domain.OrganizationRow>
  readonly memberships: ReadonlyArray<Domain.MembershipRow>
}

const escapeHtml = (value: unknown): string =>
  String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

const time = (ms: number | null) => (ms === null ? "" : new Date(ms).toISOString().replace("T", " ").slice(0, 19))

const table = (id: string, headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<unknown>>) => `
  <table id="${id}">
    <thead><tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr></thead>
    <tbody>${
  rows.length === 0
    ? `<tr><td colspan="${headers.length}" class="empty">nothing yet</td></tr>`
    : rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`).join("")
}</tbody>
  </table>`

/** The state as the page's script reads it (also served as JSON at `/dashboard/api/state`). */
export const toJson = (data: DashboardData) => ({
  counts: data.counts,
  inbox: data.inbox.map((e) => ({ svixId: e.svixId, type: e.type, status: e.status, attempts: e.attempts, error: e.error, receivedAt: e.receivedAt })),
  users: data.users.map((u) => ({ clerkUserId: u.clerkUserId, email: u.email, name: [u.firstName, u.lastName].filter(Boolean).join(" "), placeholder: u.placeholder, deletedAt: u.deletedAt })),
  organizations: data.organizations.map((o) => ({ clerkOrgId: o.clerkOrgId, name: o.name, slug: o.slug, deletedAt: o.deletedAt })),
  memberships: data.memberships.map((m) => ({ clerkUserId: m.clerkUserId, clerkOrgId: m.clerkOrgId, role: m.role, active: m.deletedAt === null }))
})

export const sections = (data: DashboardData): string => {
  const c = data.counts
  return `
  <section class="counts">
    <div><b id="count-users">${c.users}</b> users</div>
    <div><b id="count-organizations">${c.organizations}</b> organizations</div>
    <div><b id="count-memberships">${c.memberships}</b> memberships</div>
    <div><b id="count-processed">${c.inbox.processed}</b> processed</div>
    <div><b id="count-failed">${c.inbox.failed}</b> failed</div>
    <div><b id="count-ignored">${c.inbox.ignored}</b> ignored</div>
    <div><b id="count-outbox">${c.outboxPending}</b> unpublished</div>
  </section>
  <h2>Recent webhook events</h2>
  <form method="post" action="/dashboard/api/reprocess"><button id="reprocess" type="submit" ${c.inbox.failed === 0 ? "disabled" : ""}>Reprocess failed events (${c.inbox.failed})</button></form>
  ${table("events", ["received", "svix id", "type", "status", "attempts", "error"], data.inbox.map((e) => [time(e.receivedAt), e.svixId, e.type, e.status, e.attempts, e.error ?? ""]))}
  <h2>Users</h2>
  ${table("users", ["clerk id", "email", "name", "state"], data.users.map((u) => [u.clerkUserId, u.email ?? "", [u.firstName, u.lastName].filter(Boolean).join(" "), u.deletedAt !== null ? "deleted" : u.placeholder ? "placeholder" : "synced"]))}
  <h2>Organizations</h2>
  ${table("organizations", ["clerk id", "name", "slug", "state"], data.organizations.map((o) => [o.clerkOrgId, o.name, o.slug ?? "", o.deletedAt !== null ? "deleted" : o.placeholder ? "placeholder" : "synced"]))}
  <h2>Memberships</h2>
  ${table("memberships", ["user", "organization", "role", "state"], data.memberships.map((m) => [m.clerkUserId, m.clerkOrgId, m.role, m.deletedAt === null ? "active" : "ended"]))}`
}

/**
 * The whole page. `live` (when realtime is on) gives the script what it needs to subscribe: the
 * realtime client's URL, a short-lived admin session token for its first connection (never the
 * admin token itself), and where to get fresh ones with the dashboard's cookie.
 */
export const page = (
  data: DashboardData,
  live: { readonly clientScript: string; readonly token: string; readonly tokenUrl: string } | null
): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>clerk-sync · test sync</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d1d1f; }
  h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
  .counts { display: flex; gap: 1.5rem; flex-wrap: wrap; } .counts b { font-size: 1.4rem; display: block; }
  table { border-collapse: collapse; width: 100%; margin-top: .5rem; }
  th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e5e5e5; font-size: 13px; }
  td.empty { color: #888; } #live { font-size: 12px; color: #888; }
</style>
</head>
<body>
<h1>clerk-sync · test sync <span id="live" data-state="${live ? "connecting" : "off"}">${live ? "connecting…" : "live updates off"}</span></h1>
<main id="dashboard">${sections(data)}</main>
${
  live
    ? `<script type="module">
  import { connect } from ${JSON.stringify(live.clientScript)}
  const status = document.getElementById("live")
  // One refresh at a time; a notification arriving during one asks for another, so none is lost.
  let running = false
  let again = false
  const refresh = async () => {
    if (running) { again = true; return }
    running = true
    try {
      do {
        again = false
        const res = await fetch("/dashboard/fragment", { credentials: "same-origin", cache: "no-store" })
        if (res.ok) document.getElementById("dashboard").innerHTML = await res.text()
      } while (again)
    } finally { running = false }
  }
  // The token in the page is short-lived and serves the first connection only: the client renews
  // it before it expires, and reconnects (after a server restart, hours later) with a fresh one.
  let initialToken = ${JSON.stringify(live.token)}
  // The cookie has expired (or the admin token changed): the dashboard needs a new login.
  let signedOut = false
  const show = (s) => {
    const out = signedOut && s !== "live"
    status.textContent = out ? "signed out: open the dashboard with the admin token again" : s
    status.dataset.state = out ? "signed-out" : s
  }
  const getToken = async () => {
    if (initialToken !== null) {
      const token = initialToken
      initialToken = null
      return token
    }
    const res = await fetch(${JSON.stringify(live.tokenUrl)}, { method: "POST", credentials: "same-origin", cache: "no-store" })
    signedOut = res.status === 401
    show(sync.status)
    // No token: the client retries with backoff, so a login in another tab brings this one back.
    return res.ok ? (await res.json()).token : null
  }
  const sync = connect({ url: location.origin, getToken, storage: null })
  sync.onStatus(show)
  sync.onAny(() => refresh())
</script>`
    : ""
}
</body>
</html>`
