/**
 * The contract suite of the {@link Publisher} port. Every publisher — Socket.IO, Supabase Realtime
 * Broadcast, a contributor's new one — runs this same suite against a harness that says how a client
 * entitled to some audiences is made:
 *
 * ```ts
 * import { publisherContract } from "@clerk-sync/core/testing"
 * publisherContract("my publisher", async () => ({
 *   publisher,                                   // the PublisherShape under test
 *   subscribe: async (audiences) => subscriber, // a client entitled to exactly these audiences
 *   close: async () => {}
 * }))
 * ```
 *
 * What the port promises, and so what is checked:
 * - each notification reaches every subscriber of one of its audiences, and no one else;
 * - a subscriber receives `{ ...payload, seq }` exactly as {@link toDelivered} makes it;
 * - after dropping repeats of a `seq` (clients dedupe), a subscriber's notifications come in `seq`
 *   order, across batches, with the gaps a real sequence has (for a transport that orders only
 *   within an audience — Supabase orders within a topic — set `crossAudienceOrder: false`: order is
 *   then checked for subscribers of one audience, the exact set for subscribers of several);
 * - publishing a batch again (the relay is at-least-once) adds nothing new after that dedupe;
 * - an empty batch is a no-op, and a large batch arrives whole;
 * - a transport failure fails the batch with a {@link PublishError} (so the relay retries it) — for
 *   publishers whose harness can make the transport fail.
 *
 * Room changes driven by the notifications themselves (a member joining or leaving an organization)
 * belong to each publisher's own tests: the contract publishes updates only (`user.updated`,
 * `organization.updated`, `membership.updated`), whose audiences are fixed.
 *
 * @since 0.1.0
 */
import { Effect, Exit } from "effect"
import { assert, describe, it } from "vitest"
import type { Audience, Delivered, Stored } from "../Notification.ts"
import { toDelivered } from "../Notification.ts"
import type { MembershipView, OrganizationView, PrivateUser, PublicUser } from "../Projection.ts"
import type { PublisherShape } from "../Publisher.ts"

/** A client listening to some audiences, as the harness makes it. @category models */
export interface PublisherSubscriber {
  /** Everything received so far, in arrival order, repeats included. */
  readonly received: () => ReadonlyArray<Delivered>
  readonly close: () => Promise<void>
}

/** @category models */
export interface PublisherHarness {
  readonly publisher: PublisherShape
  /**
   * A client entitled to exactly these audiences, listening from the moment the promise resolves
   * (the harness arranges how: a signed token and the rooms the server decides, a topic the
   * policies allow, …).
   */
  readonly subscribe: (audiences: ReadonlyArray<Audience>) => Promise<PublisherSubscriber>
  /** Makes the transport fail on the next publish only. Omit when the transport cannot fail. */
  readonly failNext?: () => void
  readonly close: () => Promise<void>
}

/** @category models */
export interface PublisherContractOptions {
  /** How long to wait for deliveries (ms, default 5,000). */
  readonly timeout?: number
  /** How long to keep listening for unexpected extras once the expected ones arrived (ms, default 150). */
  readonly settle?: number
  /** Size of the large batch (default 1,000). */
  readonly largeBatch?: number
  /**
   * Whether a subscriber of several audiences receives them in one `seq` order (default true).
   * False for transports that order within an audience only: clients then dedupe by the set of
   * `seq`s seen.
   */
  readonly crossAudienceOrder?: boolean
}

const T0 = 1_767_225_600_000

const publicUser = (clerkUserId: string): PublicUser => ({
  id: `00000000-0000-4000-8000-${clerkUserId.replace(/[^0-9a-f]/g, "0").padStart(12, "0").slice(-12)}`,
  clerkUserId,
  firstName: "Ada",
  lastName: "Lovelace",
  imageUrl: null
})

const privateUser = (clerkUserId: string, firstName: string): PrivateUser => ({
  ...publicUser(clerkUserId),
  firstName,
  email: `${clerkUserId}@example.com`,
  username: null,
  publicMetadata: {},
  deleted: false
})

const organization = (clerkOrgId: string, name: string): OrganizationView => ({
  id: `00000000-0000-4000-9000-${clerkOrgId.replace(/[^0-9a-f]/g, "0").padStart(12, "0").slice(-12)}`,
  clerkOrgId,
  name,
  slug: name.toLowerCase(),
  imageUrl: null,
  publicMetadata: { plan: "pro" },
  deleted: false
})

const membership = (clerkUserId: string, clerkOrgId: string, role: string): MembershipView => {
  const org = organization(clerkOrgId, clerkOrgId)
  return {
    id: `m-${clerkUserId}-${clerkOrgId}`,
    clerkMembershipId: `orgmem_${clerkUserId}_${clerkOrgId}`,
    role,
    permissions: [],
    publicMetadata: {},
    active: true,
    user: publicUser(clerkUserId),
    organization: { id: org.id, clerkOrgId, name: org.name, slug: org.slug, imageUrl: null }
  }
}

/** Builds update notifications (fixed audiences) with a real sequence's gaps. @category constructors */
export class NotificationFactory {
  #seq: number
  constructor(firstSeq = 101) {
    this.#seq = firstSeq - 1
  }
  #next(): number {
    // Sequences have gaps (rolled-back transactions): skip one now and then.
    this.#seq += this.#seq % 7 === 3 ? 2 : 1
    return this.#seq
  }
  userUpdated(clerkUserId: string, firstName = "Ada"): Stored {
    return {
      seq: this.#next(),
      createdAt: T0 + this.#seq,
      audiences: [`user:${clerkUserId}`, "admin"],
      payload: {
        name: "user.updated",
        user: privateUser(clerkUserId, firstName),
        changes: { firstName: { from: "Old", to: firstName } }
      }
    }
  }
  organizationUpdated(clerkOrgId: string, name = "Acme"): Stored {
    return {
      seq: this.#next(),
      createdAt: T0 + this.#seq,
      audiences: [`org:${clerkOrgId}`, "admin"],
      payload: {
        name: "organization.updated",
        organization: organization(clerkOrgId, name),
        changes: { name: { from: "Old", to: name } }
      }
    }
  }
  membershipUpdated(clerkUserId: string, clerkOrgId: string, role = "org:admin"): Stored {
    return {
      seq: this.#next(),
      createdAt: T0 + this.#seq,
      audiences: [`org:${clerkOrgId}`, `user:${clerkUserId}`, "admin"],
      payload: {
        name: "membership.updated",
        membership: membership(clerkUserId, clerkOrgId, role),
        changes: { role: { from: "org:member", to: role } },
        previousRole: "org:member",
        role
      }
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** First occurrence of each seq, in arrival order. */
const deduped = (received: ReadonlyArray<Delivered>): ReadonlyArray<Delivered> => {
  const seen = new Set<number>()
  return received.filter((d) => (seen.has(d.seq) ? false : (seen.add(d.seq), true)))
}

const expectedFor = (notifications: ReadonlyArray<Stored>, audiences: ReadonlyArray<Audience>): ReadonlyArray<Delivered> =>
  notifications.filter((n) => n.audiences.some((a) => audiences.includes(a))).map(toDelivered)

/**
 * Registers the contract suite for a publisher.
 *
 * @category contract
 */
export const publisherContract = (
  name: string,
  makeHarness: () => Promise<PublisherHarness>,
  options: PublisherContractOptions = {}
) =>
  describe(`Publisher contract: ${name}`, () => {
    const timeout = options.timeout ?? 5_000
    const crossAudienceOrder = options.crossAudienceOrder ?? true
    const settle = options.settle ?? 150

    const withHarness = (f: (h: PublisherHarness) => Promise<void>) => async () => {
      const harness = await makeHarness()
      try {
        await f(harness)
      } finally {
        await harness.close()
      }
    }

    const publish = (h: PublisherHarness, batch: ReadonlyArray<Stored>) => Effect.runPromise(h.publisher.publish(batch))

    /** Waits until every subscriber holds (deduped) what it expects, then checks nothing else came. */
    const expectDeliveries = async (
      cases: ReadonlyArray<{
        readonly label: string
        readonly subscriber: PublisherSubscriber
        readonly expected: ReadonlyArray<Delivered>
        /** The subscriber listens to several audiences. */
        readonly several?: boolean
      }>
    ) => {
      const deadline = Date.now() + timeout
      const done = () => cases.every((c) => deduped(c.subscriber.received()).length >= c.expected.length)
      while (!done() && Date.now() < deadline) await sleep(10)
      await sleep(settle)
      for (const c of cases) {
        const arrived = deduped(c.subscriber.received())
        const got = c.several === true && !crossAudienceOrder ? [...arrived].sort((a, b) => a.seq - b.seq) : arrived
        assert.deepStrictEqual(
          got.map((d) => d.seq),
          c.expected.map((d) => d.seq),
          `${c.label}: the seqs received (deduped, in arrival order)`
        )
        assert.deepStrictEqual(got, c.expected, `${c.label}: the notifications, exactly as toDelivered makes them`)
      }
    }

    it("delivers each notification to the subscribers of its audiences, and to no one else", withHarness(async (h) => {
      const alice = await h.subscribe(["user:user_alice", "org:org_acme"])
      const bob = await h.subscribe(["user:user_bob", "org:org_globex"])
      const admin = await h.subscribe(["admin"])
      const carol = await h.subscribe(["user:user_carol"])
      const f = new NotificationFactory()
      const batch = [
        f.userUpdated("user_alice", "Alice"),
        f.organizationUpdated("org_acme", "Acme"),
        f.membershipUpdated("user_bob", "org_acme"),
        f.organizationUpdated("org_globex", "Globex"),
        f.membershipUpdated("user_alice", "org_globex", "org:member"),
        f.userUpdated("user_dave", "Dave")
      ]
      await publish(h, batch)
      await expectDeliveries([
        { label: "alice", subscriber: alice, expected: expectedFor(batch, ["user:user_alice", "org:org_acme"]), several: true },
        { label: "bob", subscriber: bob, expected: expectedFor(batch, ["user:user_bob", "org:org_globex"]), several: true },
        { label: "admin", subscriber: admin, expected: batch.map(toDelivered) },
        { label: "carol (no matching audience)", subscriber: carol, expected: [] }
      ])
    }))

    it("keeps seq order across consecutive batches", withHarness(async (h) => {
      const member = await h.subscribe(["user:user_alice", "org:org_acme"])
      const org = await h.subscribe(["org:org_acme"])
      const f = new NotificationFactory(5_000)
      const batches = Array.from({ length: 10 }, (_, i) => [
        f.organizationUpdated("org_acme", `Acme ${i}`),
        f.userUpdated("user_alice", `Alice ${i}`),
        f.membershipUpdated("user_alice", "org_acme", i % 2 === 0 ? "org:admin" : "org:member")
      ])
      for (const batch of batches) await publish(h, batch)
      await expectDeliveries([
        { label: "member", subscriber: member, expected: batches.flat().map(toDelivered), several: true },
        { label: "org subscriber", subscriber: org, expected: expectedFor(batches.flat(), ["org:org_acme"]) }
      ])
    }))

    it("tolerates the relay's at-least-once: a batch published again adds nothing after dedupe", withHarness(async (h) => {
      const member = await h.subscribe(["org:org_acme"])
      const f = new NotificationFactory(9_000)
      const first = [f.organizationUpdated("org_acme", "One"), f.organizationUpdated("org_acme", "Two")]
      const second = [f.organizationUpdated("org_acme", "Three")]
      await publish(h, first)
      await publish(h, first)
      await publish(h, second)
      await expectDeliveries([{ label: "member", subscriber: member, expected: [...first, ...second].map(toDelivered) }])
    }))

    it("treats an empty batch as a no-op", withHarness(async (h) => {
      const admin = await h.subscribe(["admin"])
      await publish(h, [])
      const f = new NotificationFactory(12_000)
      const batch = [f.userUpdated("user_alice")]
      await publish(h, batch)
      await expectDeliveries([{ label: "admin", subscriber: admin, expected: batch.map(toDelivered) }])
    }))

    it(`delivers a large batch whole and in order (${options.largeBatch ?? 1_000} notifications)`, withHarness(async (h) => {
      const member = await h.subscribe(["user:user_alice", "org:org_acme"])
      const other = await h.subscribe(["org:org_globex"])
      const f = new NotificationFactory(20_000)
      const batch = Array.from({ length: options.largeBatch ?? 1_000 }, (_, i) =>
        i % 3 === 0
          ? f.organizationUpdated("org_acme", `Acme ${i}`)
          : i % 3 === 1
          ? f.userUpdated("user_alice", `Alice ${i}`)
          : f.organizationUpdated("org_globex", `Globex ${i}`))
      await publish(h, batch)
      await expectDeliveries([
        { label: "member", subscriber: member, expected: expectedFor(batch, ["user:user_alice", "org:org_acme"]), several: true },
        { label: "other", subscriber: other, expected: expectedFor(batch, ["org:org_globex"]) }
      ])
    }), 60_000)

    it("fails a batch whose transport failed with a PublishError, and a retry delivers it", withHarness(async (h) => {
      if (h.failNext === undefined) return // this transport cannot fail: nothing to check
      const admin = await h.subscribe(["admin"])
      const f = new NotificationFactory(40_000)
      const batch = [f.userUpdated("user_alice"), f.organizationUpdated("org_acme")]
      h.failNext()
      const exit = await Effect.runPromiseExit(h.publisher.publish(batch))
      assert.isTrue(Exit.isFailure(exit), "the failed publish fails")
      if (Exit.isFailure(exit)) {
        const reason = exit.cause.reasons[0]
        assert.strictEqual(reason?._tag === "Fail" ? reason.error._tag : reason?._tag, "PublishError")
      }
      await publish(h, batch)
      await expectDeliveries([{ label: "admin", subscriber: admin, expected: batch.map(toDelivered) }])
    }))
  })
