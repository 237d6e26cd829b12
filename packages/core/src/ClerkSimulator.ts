/**
 * A small, deterministic model of a Clerk instance that emits the webhook events Clerk would send.
 *
 * It exists so that tests, the CLI (`clerk-sync send`), backfill fakes and the benchmark load
 * generator all speak the same, realistic payloads (the shapes of Clerk's own examples), and so
 * that the expected final state of any history is known: {@link ClerkSimulator.state}.
 *
 * Event ids are increasing (`msg_…` like Svix's) and time only moves forward, so the history order
 * agrees with clerk-sync's version order, including several events in the same millisecond.
 *
 * @example
 * import { ClerkSimulator } from "@clerk-sync/core"
 * const clerk = new ClerkSimulator.ClerkSimulator({ startAt: Date.UTC(2026, 0, 1) })
 * const alice = clerk.createUser({ firstName: "Alice", email: "alice@example.com" })
 * const acme = clerk.createOrganization({ name: "Acme" })
 * clerk.addMember(alice, acme, "org:admin")
 * clerk.events // three signed-ready deliveries: { svixId, type, body }
 *
 * @since 0.1.0
 */
import * as Role from "./Role.ts"

/** One delivery Clerk would make. @category models */
export interface SimulatedEvent {
  readonly svixId: string
  readonly type: string
  /** The JSON body, as Clerk sends it. */
  readonly body: string
  /** The envelope timestamp (ms). */
  readonly timestamp: number
}

/** @category models */
export interface SimUser {
  readonly id: string
  firstName: string | null
  lastName: string | null
  username: string | null
  email: string | null
  imageUrl: string | null
  publicMetadata: Record<string, unknown>
  privateMetadata: Record<string, unknown>
  createdAt: number
  updatedAt: number
  deleted: boolean
}

/** @category models */
export interface SimOrganization {
  readonly id: string
  name: string
  slug: string
  imageUrl: string | null
  publicMetadata: Record<string, unknown>
  privateMetadata: Record<string, unknown>
  createdBy: string | null
  createdAt: number
  updatedAt: number
  deleted: boolean
}

/** @category models */
export interface SimMembership {
  id: string
  readonly userId: string
  readonly organizationId: string
  role: string
  permissions: ReadonlyArray<string>
  publicMetadata: Record<string, unknown>
  createdAt: number
  updatedAt: number
  live: boolean
}

/** @category models */
export interface Options {
  /** The first timestamp (ms). */
  readonly startAt?: number
  /** Prefix of generated Clerk ids, to keep several simulators apart. */
  readonly idPrefix?: string
  /** Send the envelope timestamp in seconds, as Clerk's OpenAPI examples do. Default: milliseconds. */
  readonly timestampsInSeconds?: boolean
}

const pad = (n: number, width: number) => n.toString().padStart(width, "0")

const slugify = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "org"

/**
 * A user as Clerk's Backend API returns it and webhooks carry it in `data`.
 *
 * @category encoding
 */
export const userJson = (u: SimUser) => {
  const emailId = `idn_${u.id.slice(5)}`
  return {
    object: "user",
    id: u.id,
    external_id: null,
    primary_email_address_id: u.email === null ? null : emailId,
    email_addresses: u.email === null
      ? []
      : [{ id: emailId, object: "email_address", email_address: u.email, linked_to: [], verification: { status: "verified", strategy: "email_code" } }],
    phone_numbers: [],
    username: u.username,
    first_name: u.firstName,
    last_name: u.lastName,
    image_url: u.imageUrl,
    profile_image_url: u.imageUrl,
    has_image: u.imageUrl !== null,
    public_metadata: u.publicMetadata,
    private_metadata: u.privateMetadata,
    unsafe_metadata: {},
    password_enabled: true,
    two_factor_enabled: false,
    created_at: u.createdAt,
    updated_at: u.updatedAt,
    last_sign_in_at: null
  }
}

/**
 * An organization as Clerk's Backend API returns it and webhooks carry it.
 *
 * @category encoding
 */
export const organizationJson = (o: SimOrganization) => ({
  object: "organization",
  id: o.id,
  name: o.name,
  slug: o.slug,
  image_url: o.imageUrl,
  has_image: o.imageUrl !== null,
  public_metadata: o.publicMetadata,
  private_metadata: o.privateMetadata,
  max_allowed_memberships: 5,
  admin_delete_enabled: true,
  created_by: o.createdBy,
  created_at: o.createdAt,
  updated_at: o.updatedAt
})

/**
 * A membership as Clerk's Backend API returns it and webhooks carry it (with the organization and
 * the user's public data embedded).
 *
 * @category encoding
 */
export const membershipJson = (
  simulator: { readonly users: ReadonlyMap<string, SimUser>; readonly organizations: ReadonlyMap<string, SimOrganization> },
  m: SimMembership
) => {
  const u = simulator.users.get(m.userId)!
  const o = simulator.organizations.get(m.organizationId)!
  return {
    object: "organization_membership",
    id: m.id,
    role: m.role,
    role_name: m.role === Role.ADMIN ? "Admin" : "Member",
    permissions: m.permissions,
    public_metadata: m.publicMetadata,
    private_metadata: {},
    organization: organizationJson(o),
    public_user_data: {
      user_id: u.id,
      first_name: u.firstName,
      last_name: u.lastName,
      image_url: u.imageUrl,
      profile_image_url: u.imageUrl,
      has_image: u.imageUrl !== null,
      identifier: u.email ?? u.username ?? u.id
    },
    created_at: m.createdAt,
    updated_at: m.updatedAt
  }
}

/** @category models */
export class ClerkSimulator {
  readonly users = new Map<string, SimUser>()
  readonly organizations = new Map<string, SimOrganization>()
  readonly memberships = new Map<string, SimMembership>()
  readonly events: Array<SimulatedEvent> = []
  #now: number
  #counter = 0
  readonly #prefix: string
  readonly #seconds: boolean

  constructor(options: Options = {}) {
    this.#now = options.startAt ?? Date.UTC(2026, 0, 1)
    this.#prefix = options.idPrefix ?? ""
    this.#seconds = options.timestampsInSeconds ?? false
  }

  /** The simulated clock (ms). */
  get now(): number {
    return this.#now
  }

  /** Moves the clock forward (0 keeps the next events in the same millisecond). */
  tick(ms = 1): this {
    this.#now += Math.max(0, ms)
    return this
  }

  #id(kind: string): string {
    return `${kind}_${this.#prefix}${pad(++this.#counter, 8)}`
  }

  #emit(type: string, data: unknown): SimulatedEvent {
    const svixId = `msg_${this.#prefix}${pad(this.events.length + 1, 10)}`
    const timestamp = this.#now
    const body = JSON.stringify({
      data,
      event_attributes: { http_request: { client_ip: "192.0.2.1", user_agent: "clerk-sync-simulator" } },
      instance_id: "ins_simulated",
      object: "event",
      timestamp: this.#seconds ? Math.floor(timestamp / 1000) : timestamp,
      type
    })
    const event = { svixId, type, body, timestamp }
    this.events.push(event)
    return event
  }

  /**
   * Registers a user that already exists in Clerk without emitting `user.created` (an app adopting
   * clerk-sync with existing users, or a lost delivery).
   */
  existingUser(fields: Partial<Omit<SimUser, "id" | "deleted">> = {}): string {
    const id = this.#id("user")
    this.users.set(id, {
      id,
      firstName: null,
      lastName: null,
      username: null,
      email: null,
      imageUrl: null,
      publicMetadata: {},
      privateMetadata: {},
      createdAt: this.#now,
      updatedAt: this.#now,
      deleted: false,
      ...fields
    })
    return id
  }

  createUser(fields: Partial<Omit<SimUser, "id" | "deleted" | "createdAt" | "updatedAt">> = {}): string {
    const id = this.existingUser(fields)
    this.#emit("user.created", userJson(this.users.get(id)!))
    return id
  }

  updateUser(id: string, patch: Partial<Omit<SimUser, "id" | "deleted" | "createdAt" | "updatedAt">>): SimulatedEvent {
    const u = this.#live(this.users, id)
    Object.assign(u, patch, { updatedAt: this.#now })
    return this.#emit("user.updated", userJson(u))
  }

  /** Deletes a user; with `cascade`, first emits the membership deletions Clerk may send too. */
  deleteUser(id: string, options: { readonly cascade?: boolean } = {}): SimulatedEvent {
    const u = this.#live(this.users, id)
    for (const m of this.memberships.values()) {
      if (m.userId === id && m.live) {
        if (options.cascade) this.removeMember(id, m.organizationId)
        else m.live = false
      }
    }
    u.deleted = true
    return this.#emit("user.deleted", { object: "user", id, deleted: true })
  }

  createOrganization(fields: Partial<Pick<SimOrganization, "name" | "slug" | "imageUrl" | "publicMetadata" | "privateMetadata" | "createdBy">> = {}): string {
    const id = this.#id("org")
    const name = fields.name ?? `Organization ${this.#counter}`
    const o: SimOrganization = {
      id,
      name,
      slug: fields.slug ?? `${slugify(name)}-${this.#counter}`,
      imageUrl: null,
      publicMetadata: {},
      privateMetadata: {},
      createdBy: null,
      createdAt: this.#now,
      updatedAt: this.#now,
      deleted: false,
      ...fields
    }
    this.organizations.set(id, o)
    this.#emit("organization.created", organizationJson(o))
    return id
  }

  updateOrganization(id: string, patch: Partial<Pick<SimOrganization, "name" | "slug" | "imageUrl" | "publicMetadata" | "privateMetadata">>): SimulatedEvent {
    const o = this.#live(this.organizations, id)
    Object.assign(o, patch, { updatedAt: this.#now })
    return this.#emit("organization.updated", organizationJson(o))
  }

  deleteOrganization(id: string, options: { readonly cascade?: boolean } = {}): SimulatedEvent {
    const o = this.#live(this.organizations, id)
    for (const m of this.memberships.values()) {
      if (m.organizationId === id && m.live) {
        if (options.cascade) this.removeMember(m.userId, id)
        else m.live = false
      }
    }
    o.deleted = true
    return this.#emit("organization.deleted", { object: "organization", id, deleted: true, slug: o.slug })
  }

  #pair(userId: string, organizationId: string) {
    return `${userId}|${organizationId}`
  }

  /** Adds a user to an organization (or re-adds one who left, with a new membership id). */
  addMember(userId: string, organizationId: string, role: string = Role.MEMBER): SimulatedEvent {
    this.#live(this.users, userId)
    this.#live(this.organizations, organizationId)
    const key = this.#pair(userId, organizationId)
    const existing = this.memberships.get(key)
    if (existing?.live) throw new Error(`${userId} is already a member of ${organizationId}`)
    const m: SimMembership = {
      id: this.#id("orgmem"),
      userId,
      organizationId,
      role,
      permissions: Role.permissionsOf(role, undefined),
      publicMetadata: {},
      createdAt: this.#now,
      updatedAt: this.#now,
      live: true
    }
    this.memberships.set(key, m)
    return this.#emit("organizationMembership.created", membershipJson(this, m))
  }

  setRole(userId: string, organizationId: string, role: string): SimulatedEvent {
    const m = this.#liveMembership(userId, organizationId)
    m.role = role
    m.permissions = Role.permissionsOf(role, undefined)
    m.updatedAt = this.#now
    return this.#emit("organizationMembership.updated", membershipJson(this, m))
  }

  removeMember(userId: string, organizationId: string): SimulatedEvent {
    const m = this.#liveMembership(userId, organizationId)
    m.live = false
    m.updatedAt = this.#now
    return this.#emit("organizationMembership.deleted", membershipJson(this, m))
  }

  /** Sends an event type clerk-sync does not sync (it must be recorded as ignored). */
  otherEvent(type = "session.created"): SimulatedEvent {
    return this.#emit(type, { object: "session", id: this.#id("sess"), status: "active" })
  }

  #liveMembership(userId: string, organizationId: string): SimMembership {
    const m = this.memberships.get(this.#pair(userId, organizationId))
    if (!m?.live) throw new Error(`${userId} is not a member of ${organizationId}`)
    return m
  }

  #live<A extends { readonly deleted: boolean }>(map: Map<string, A>, id: string): A {
    const found = map.get(id)
    if (!found || found.deleted) throw new Error(`${id} does not exist or was deleted`)
    return found
  }

  /** Live users, organizations and memberships (the state Clerk holds now). */
  liveMemberships(): ReadonlyArray<SimMembership> {
    return [...this.memberships.values()].filter((m) =>
      m.live && !this.users.get(m.userId)!.deleted && !this.organizations.get(m.organizationId)!.deleted
    )
  }
}
