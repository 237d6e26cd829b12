/**
 * `clerk-sync send`: builds realistic Clerk events, signs them with the configured webhook secret,
 * and posts them to a clerk-sync endpoint — the way Clerk would. It replaces the seeds'
 * `test-webhook.sh` and any verification bypass: the server never accepts an unsigned event.
 */
import { ClerkSimulator, Role } from "@clerk-sync/core"
import { signWebhook } from "@clerk-sync/adapter-http"
import { readFileSync } from "node:fs"

export interface SendTarget {
  readonly url: string
  readonly secret: string
}

export interface SendResult {
  readonly svixId: string
  readonly type: string
  readonly status: number
  readonly body: string
}

/** Signs and posts one event body. */
export const post = async (target: SendTarget, delivery: { readonly svixId: string; readonly body: string }): Promise<SendResult> => {
  const headers = signWebhook({
    secret: target.secret,
    svixId: delivery.svixId,
    timestamp: new Date(),
    body: delivery.body
  })
  const response = await fetch(target.url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: delivery.body
  })
  const type = (() => {
    try {
      return String(JSON.parse(delivery.body).type)
    } catch {
      return "unknown"
    }
  })()
  return { svixId: delivery.svixId, type, status: response.status, body: await response.text() }
}

const uniquePrefix = () => `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`

const NAMES = [["Ada", "Lovelace"], ["Grace", "Hopper"], ["Alan", "Turing"], ["Katherine", "Johnson"], ["Linus", "Torvalds"], ["Barbara", "Liskov"]] as const

/** The demo world: a few users, two organizations, memberships, a role change and a departure. */
export const demoScenario = (clerk: ClerkSimulator.ClerkSimulator): void => {
  const people = NAMES.slice(0, 5).map(([first, last]) =>
    clerk.tick(5).createUser({ firstName: first, lastName: last, email: `${first.toLowerCase()}@example.com`, username: first.toLowerCase() })
  )
  const acme = clerk.tick(5).createOrganization({ name: "Acme Kitchens", createdBy: people[0]! })
  const globex = clerk.tick(5).createOrganization({ name: "Globex Bistro", createdBy: people[3]! })
  clerk.tick(5).addMember(people[0]!, acme, Role.ADMIN)
  clerk.addMember(people[1]!, acme)
  clerk.addMember(people[2]!, acme)
  clerk.addMember(people[3]!, globex, Role.ADMIN)
  clerk.addMember(people[4]!, globex)
  clerk.addMember(people[1]!, globex)
  clerk.tick(50).setRole(people[1]!, acme, Role.ADMIN)
  clerk.tick(50).updateUser(people[2]!, { firstName: "Alan M." })
  clerk.tick(50).removeMember(people[4]!, globex)
  clerk.tick(50).updateOrganization(globex, { name: "Globex Brasserie" })
}

export interface SendOptions {
  /** An event type to build (`user.created`, …), `--scenario demo`, or a JSON file of a Clerk event. */
  readonly what: { readonly type: string } | { readonly scenario: "demo" } | { readonly file: string }
  readonly user?: string
  readonly org?: string
  readonly role?: string
}

/** Builds the deliveries for a send. */
export const build = (options: SendOptions): ReadonlyArray<{ readonly svixId: string; readonly body: string }> => {
  const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: uniquePrefix(), startAt: Date.now() })
  const { what } = options
  if ("file" in what) {
    const body = readFileSync(what.file, "utf8")
    JSON.parse(body) // refuse a file that is not JSON before signing it
    return [{ svixId: `msg_${uniquePrefix()}`, body }]
  }
  if ("scenario" in what) {
    demoScenario(clerk)
    return clerk.events
  }
  const [first, last] = NAMES[Math.floor(Math.random() * NAMES.length)]!
  const user = () => options.user ?? clerk.createUser({ firstName: first, lastName: last, email: `${first.toLowerCase()}.${uniquePrefix()}@example.com` })
  const org = () => options.org ?? clerk.createOrganization({ name: `${last} Labs` })
  // Ids given on the command line belong to the server's world, not this simulator's: register them.
  if (options.user) clerk.users.set(options.user, { id: options.user, firstName: first, lastName: last, username: null, email: null, imageUrl: null, publicMetadata: {}, privateMetadata: {}, createdAt: Date.now(), updatedAt: Date.now(), deleted: false })
  if (options.org) clerk.organizations.set(options.org, { id: options.org, name: `${last} Labs`, slug: `${last.toLowerCase()}-labs`, imageUrl: null, publicMetadata: {}, privateMetadata: {}, createdBy: null, createdAt: Date.now(), updatedAt: Date.now(), deleted: false })
  const before = clerk.events.length
  switch (what.type) {
    case "user.created":
      user()
      break
    case "user.updated":
      clerk.updateUser(user(), { firstName: `${first}!` })
      break
    case "user.deleted":
      clerk.deleteUser(user())
      break
    case "organization.created":
      org()
      break
    case "organization.updated":
      clerk.updateOrganization(org(), { name: `${last} Labs (renamed)` })
      break
    case "organization.deleted":
      clerk.deleteOrganization(org())
      break
    case "organizationMembership.created":
      clerk.addMember(user(), org(), options.role ?? Role.MEMBER)
      break
    case "organizationMembership.updated": {
      const u = user()
      const o = org()
      clerk.addMember(u, o)
      clerk.tick().setRole(u, o, options.role ?? Role.ADMIN)
      break
    }
    case "organizationMembership.deleted": {
      const u = user()
      const o = org()
      clerk.addMember(u, o)
      clerk.tick().removeMember(u, o)
      break
    }
    default:
      clerk.otherEvent(what.type)
  }
  // Only what was asked for is sent, plus the parents it needs when no ids were given.
  return options.user || options.org ? clerk.events.slice(before) : clerk.events
}
