/**
 * fast-check generators of Clerk histories and of the ways Svix may deliver them.
 *
 * A history is produced by driving a {@link ClerkSimulator} with random commands (users and
 * organizations created, updated and deleted, members joining, changing role, leaving and
 * re-joining, several events in the same millisecond, users that existed before the webhook was
 * set up). A delivery is any permutation of its events with any duplicates.
 *
 * @since 0.1.0
 */
import * as fc from "fast-check"
import { ClerkSimulator, type SimulatedEvent } from "../ClerkSimulator.ts"

type Command =
  | { readonly k: "createUser"; readonly name: string }
  | { readonly k: "existingUser"; readonly name: string }
  | { readonly k: "updateUser"; readonly u: number; readonly name: string; readonly email: boolean }
  | { readonly k: "deleteUser"; readonly u: number; readonly cascade: boolean }
  | { readonly k: "createOrg"; readonly name: string }
  | { readonly k: "updateOrg"; readonly o: number; readonly name: string }
  | { readonly k: "deleteOrg"; readonly o: number; readonly cascade: boolean }
  | { readonly k: "join"; readonly u: number; readonly o: number; readonly role: string }
  | { readonly k: "setRole"; readonly u: number; readonly o: number; readonly role: string }
  | { readonly k: "leave"; readonly u: number; readonly o: number }
  | { readonly k: "tick"; readonly ms: number }
  | { readonly k: "other" }

const name = fc.constantFrom("Ada", "Grace", "Linus", "Barbara", "Ken", "Edsger", "Frances", "Donald")
const role = fc.constantFrom("org:admin", "org:member", "org:billing", "basic_member", "admin")
const index = fc.nat({ max: 7 })

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant("createUser" as const), name }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("existingUser" as const), name }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("updateUser" as const), u: index, name, email: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("deleteUser" as const), u: index, cascade: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("createOrg" as const), name }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("updateOrg" as const), o: index, name }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("deleteOrg" as const), o: index, cascade: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant("join" as const), u: index, o: index, role }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("setRole" as const), u: index, o: index, role }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("leave" as const), u: index, o: index }) },
  // A third of the events share their millisecond with the previous one.
  { weight: 6, arbitrary: fc.record({ k: fc.constant("tick" as const), ms: fc.constantFrom(0, 0, 1, 1, 7, 1000) }) },
  { weight: 1, arbitrary: fc.constant({ k: "other" as const }) }
)

const pick = <A>(items: ReadonlyArray<A>, i: number): A | undefined => (items.length === 0 ? undefined : items[i % items.length])

/** Runs commands against a simulator; commands that make no sense in the current state are skipped. */
export const interpret = (commands: ReadonlyArray<Command>, simulator: ClerkSimulator): ClerkSimulator => {
  const liveUsers = () => [...simulator.users.values()].filter((u) => !u.deleted).map((u) => u.id)
  const liveOrgs = () => [...simulator.organizations.values()].filter((o) => !o.deleted).map((o) => o.id)
  const isMember = (u: string, o: string) => simulator.liveMemberships().some((m) => m.userId === u && m.organizationId === o)
  for (const c of commands) {
    switch (c.k) {
      case "createUser":
        simulator.createUser({ firstName: c.name, lastName: "Sim", email: `${c.name.toLowerCase()}.${simulator.users.size}@example.com` })
        break
      case "existingUser":
        simulator.existingUser({ firstName: c.name, email: `${c.name.toLowerCase()}.${simulator.users.size}@example.org` })
        break
      case "updateUser": {
        const u = pick(liveUsers(), c.u)
        if (u) simulator.updateUser(u, { firstName: c.name, ...(c.email ? { email: `${c.name.toLowerCase()}@changed.example` } : {}) })
        break
      }
      case "deleteUser": {
        const u = pick(liveUsers(), c.u)
        if (u) simulator.deleteUser(u, { cascade: c.cascade })
        break
      }
      case "createOrg":
        simulator.createOrganization({ name: `${c.name} Inc` })
        break
      case "updateOrg": {
        const o = pick(liveOrgs(), c.o)
        if (o) simulator.updateOrganization(o, { name: `${c.name} Ltd` })
        break
      }
      case "deleteOrg": {
        const o = pick(liveOrgs(), c.o)
        if (o) simulator.deleteOrganization(o, { cascade: c.cascade })
        break
      }
      case "join": {
        const u = pick(liveUsers(), c.u)
        const o = pick(liveOrgs(), c.o)
        if (u && o && !isMember(u, o)) simulator.addMember(u, o, c.role)
        break
      }
      case "setRole": {
        const u = pick(liveUsers(), c.u)
        const o = pick(liveOrgs(), c.o)
        if (u && o && isMember(u, o)) simulator.setRole(u, o, c.role)
        break
      }
      case "leave": {
        const u = pick(liveUsers(), c.u)
        const o = pick(liveOrgs(), c.o)
        if (u && o && isMember(u, o)) simulator.removeMember(u, o)
        break
      }
      case "tick":
        simulator.tick(c.ms)
        break
      case "other":
        simulator.otherEvent()
        break
    }
  }
  return simulator
}

/** A generated history: the simulator (Clerk's final state) and its events in history order. @category models */
export interface History {
  readonly simulator: ClerkSimulator
  readonly events: ReadonlyArray<SimulatedEvent>
}

let historyCounter = 0

/**
 * Generates Clerk histories. Each history uses ids of its own (`idPrefix`), so many histories can
 * share one store without interfering.
 *
 * @category generators
 */
export const history = (options: { readonly maxCommands?: number } = {}): fc.Arbitrary<History> =>
  fc.tuple(
    // A cast to start with: users (some of them existing before the webhook was set up) and organizations.
    fc.array(fc.record({ k: fc.constantFrom("createUser" as const, "createUser" as const, "existingUser" as const), name }), { minLength: 1, maxLength: 4 }),
    fc.array(fc.record({ k: fc.constant("createOrg" as const), name }), { minLength: 1, maxLength: 3 }),
    fc.array(command, { minLength: 5, maxLength: options.maxCommands ?? 40, size: "max" })
  ).map(([people, orgs, commands]) => {
    const simulator = interpret([...people, ...orgs, ...commands], new ClerkSimulator({ idPrefix: `h${++historyCounter}x`, startAt: 1_767_225_600_000 }))
    return { simulator, events: simulator.events }
  })

/**
 * Generates a delivery of `events`: a permutation with duplicates (the same `svix-id` delivered
 * again, as Svix does on retries).
 *
 * @category generators
 */
export const delivery = <A>(events: ReadonlyArray<A>, options: { readonly maxDuplicates?: number } = {}): fc.Arbitrary<ReadonlyArray<A>> =>
  fc.tuple(
    fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: events.length, maxLength: events.length }),
    fc.array(fc.tuple(fc.nat(), fc.double({ min: 0, max: 1, noNaN: true })), { maxLength: options.maxDuplicates ?? 5 })
  ).map(([keys, dupes]) => {
    const items = events.map((event, i) => ({ event, key: keys[i]! }))
    if (events.length > 0) for (const [i, key] of dupes) items.push({ event: events[i % events.length]!, key })
    return items.sort((a, b) => a.key - b.key).map((x) => x.event)
  })

/**
 * A history together with one delivery of it.
 *
 * @category generators
 */
export const historyAndDelivery = (options: { readonly maxCommands?: number; readonly maxDuplicates?: number } = {}) =>
  history(options).chain((h) => delivery(h.events, options).map((delivered) => ({ ...h, delivered })))
