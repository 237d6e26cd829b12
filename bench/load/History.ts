/**
 * Realistic Clerk histories for the load generator, from a seed.
 *
 * A seeded driver of `ClerkSimulator` (the same model the core's property tests use): a world that
 * grows as people sign up, create organizations, join them, change roles, edit their profiles,
 * leave and re-join, and are sometimes deleted (with or without Clerk's cascade of membership
 * deletions), with several events in the same millisecond. Unlike `Histories.interpret` (built for
 * small fast-check histories) every step is O(1), so a history of 100,000 events takes a second.
 */
import { ClerkSimulator } from "@clerk-sync/core"
import { Random } from "./Random.ts"

export type SimulatedEvent = ClerkSimulator.SimulatedEvent

export interface HistoryOptions {
  /** Number of events (at least; the last step may add a few cascaded ones). */
  readonly events: number
  readonly seed?: number
  /** Keeps the ids of several histories in one database apart. */
  readonly idPrefix?: string
  /** Share of new users that existed before the webhook was set up (no `user.created`). Default 0. */
  readonly existingUsers?: number
  /** Share of events that are types clerk-sync does not sync (`session.created`). Default 0.02. */
  readonly otherEvents?: number
  readonly startAt?: number
}

export interface History {
  readonly simulator: ClerkSimulator.ClerkSimulator
  readonly events: ReadonlyArray<SimulatedEvent>
}

/** A set with O(1) add, remove and random pick. */
class Bag<A> {
  readonly #items: Array<A> = []
  readonly #index = new Map<A, number>()
  get size() {
    return this.#items.length
  }
  add(a: A) {
    if (this.#index.has(a)) return
    this.#index.set(a, this.#items.length)
    this.#items.push(a)
  }
  delete(a: A) {
    const i = this.#index.get(a)
    if (i === undefined) return
    const last = this.#items.pop()!
    this.#index.delete(a)
    if (i < this.#items.length) {
      this.#items[i] = last
      this.#index.set(last, i)
    }
  }
  has(a: A) {
    return this.#index.has(a)
  }
  pick(random: Random): A | undefined {
    return this.#items.length === 0 ? undefined : this.#items[random.int(this.#items.length)]
  }
  values(): ReadonlyArray<A> {
    return this.#items
  }
}

const FIRST = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Edsger", "Frances", "Donald", "Radia", "Tim", "Margaret", "Alan", "Hedy", "Dennis", "Sophie", "Niklaus"]
const LAST = ["Lovelace", "Hopper", "Torvalds", "Liskov", "Thompson", "Dijkstra", "Allen", "Knuth", "Perlman", "Berners-Lee", "Hamilton", "Turing", "Lamarr", "Ritchie", "Wilson", "Wirth"]
const ORGS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent", "Aperture", "Massive"]
const ROLES = ["org:admin", "org:member", "org:member", "org:member", "org:billing"]

type Step = "createUser" | "updateUser" | "deleteUser" | "createOrg" | "updateOrg" | "deleteOrg" | "join" | "setRole" | "leave" | "rejoin" | "other"

const WEIGHTS: Record<Step, number> = {
  createUser: 14,
  updateUser: 16,
  deleteUser: 2,
  createOrg: 4,
  updateOrg: 6,
  deleteOrg: 1,
  join: 26,
  setRole: 12,
  leave: 6,
  rejoin: 6,
  other: 2
}

/**
 * Generates a history of at least `events` deliveries.
 *
 * @example
 * const h = generate({ events: 10_000, seed: 1 })
 * h.events[0] // { svixId: "msg_…", type: "user.created", body: "{…}", timestamp }
 */
export const generate = (options: HistoryOptions): History => {
  const random = new Random(options.seed ?? 1)
  const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: options.idPrefix ?? "", startAt: options.startAt ?? Date.UTC(2026, 0, 1) })
  const users = new Bag<string>()
  const orgs = new Bag<string>()
  const live = new Bag<string>() // "user|org" of live memberships
  const left = new Bag<string>() // pairs that ended, both sides still alive: candidates to re-join
  const byUser = new Map<string, Set<string>>()
  const byOrg = new Map<string, Set<string>>()
  const weights: Record<Step, number> = { ...WEIGHTS, other: (options.otherEvents ?? 0.02) * 100 }
  const existing = options.existingUsers ?? 0
  let n = 0

  const name = () => ({ firstName: random.pick(FIRST), lastName: random.pick(LAST) })
  const endPair = (pair: string) => {
    live.delete(pair)
    const [u, o] = pair.split("|") as [string, string]
    byUser.get(u)?.delete(pair)
    byOrg.get(o)?.delete(pair)
  }
  const addUser = () => {
    const fields = { ...name(), email: `user${++n}@example.com` }
    const id = random.chance(existing) ? clerk.existingUser(fields) : clerk.createUser(fields)
    users.add(id)
    byUser.set(id, new Set())
  }
  const addOrg = () => {
    const id = clerk.createOrganization({ name: `${random.pick(ORGS)} ${++n}` })
    orgs.add(id)
    byOrg.set(id, new Set())
  }
  const join = (u: string, o: string) => {
    const pair = `${u}|${o}`
    clerk.addMember(u, o, random.pick(ROLES))
    live.add(pair)
    left.delete(pair)
    byUser.get(u)!.add(pair)
    byOrg.get(o)!.add(pair)
  }

  for (let i = 0; i < 20; i++) addUser()
  for (let i = 0; i < 5; i++) addOrg()

  while (clerk.events.length < options.events) {
    // A third of the events share their millisecond with the previous one.
    clerk.tick(random.chance(0.33) ? 0 : random.between(1, 40))
    switch (random.weighted(weights)) {
      case "createUser":
        addUser()
        break
      case "updateUser": {
        const u = users.pick(random)
        if (u) clerk.updateUser(u, random.chance(0.3) ? { email: `user${++n}@changed.example` } : name())
        break
      }
      case "deleteUser": {
        const u = users.pick(random)
        if (!u || users.size < 10) break
        for (const pair of [...byUser.get(u)!]) endPair(pair)
        clerk.deleteUser(u, { cascade: random.chance(0.5) })
        users.delete(u)
        for (const pair of left.values().filter((p) => p.startsWith(`${u}|`))) left.delete(pair)
        break
      }
      case "createOrg":
        addOrg()
        break
      case "updateOrg": {
        const o = orgs.pick(random)
        if (o) clerk.updateOrganization(o, { name: `${random.pick(ORGS)} ${++n}` })
        break
      }
      case "deleteOrg": {
        const o = orgs.pick(random)
        if (!o || orgs.size < 4) break
        for (const pair of [...byOrg.get(o)!]) endPair(pair)
        clerk.deleteOrganization(o, { cascade: random.chance(0.5) })
        orgs.delete(o)
        for (const pair of left.values().filter((p) => p.endsWith(`|${o}`))) left.delete(pair)
        break
      }
      case "join": {
        const u = users.pick(random)
        const o = orgs.pick(random)
        if (u && o && !live.has(`${u}|${o}`)) join(u, o)
        break
      }
      case "setRole": {
        const pair = live.pick(random)
        if (!pair) break
        const [u, o] = pair.split("|") as [string, string]
        clerk.setRole(u, o, random.pick(ROLES))
        break
      }
      case "leave": {
        const pair = live.pick(random)
        if (!pair) break
        const [u, o] = pair.split("|") as [string, string]
        clerk.removeMember(u, o)
        endPair(pair)
        left.add(pair)
        break
      }
      case "rejoin": {
        const pair = left.pick(random)
        if (!pair) break
        const [u, o] = pair.split("|") as [string, string]
        join(u, o)
        break
      }
      case "other":
        clerk.otherEvent()
        break
    }
  }
  return { simulator: clerk, events: clerk.events }
}

/** A stream of `user.updated` events whose first name is a marker (`L<index>`), after the users' creation. */
export interface MarkedStream {
  readonly setup: ReadonlyArray<SimulatedEvent>
  readonly stream: ReadonlyArray<SimulatedEvent>
  /** The marker of stream event `i` is `marker(i)`. */
  readonly marker: (i: number) => string
  readonly simulator: ClerkSimulator.ClerkSimulator
}

/**
 * For latency and fan-out: `users` users created first (setup, not measured), then `updates`
 * profile updates, each with a first name that identifies it, so a client that receives the
 * notification knows which webhook caused it.
 */
export const markedStream = (options: { readonly users: number; readonly updates: number; readonly idPrefix?: string; readonly seed?: number }): MarkedStream => {
  const random = new Random(options.seed ?? 7)
  const clerk = new ClerkSimulator.ClerkSimulator({ idPrefix: options.idPrefix ?? "", startAt: Date.now() - 60_000 })
  const ids: Array<string> = []
  for (let i = 0; i < options.users; i++) ids.push(clerk.createUser({ firstName: "Setup", lastName: random.pick(LAST), email: `lat${i}@example.com` }))
  const setup = clerk.events.slice()
  const marker = (i: number) => `L${i}`
  for (let i = 0; i < options.updates; i++) {
    clerk.tick(1)
    clerk.updateUser(ids[i % ids.length]!, { firstName: marker(i) })
  }
  return { setup, stream: clerk.events.slice(setup.length), marker, simulator: clerk }
}
