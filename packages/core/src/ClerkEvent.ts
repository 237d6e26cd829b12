/**
 * Decoding Clerk webhook events with `effect/Schema`.
 *
 * The envelope (`data`, `object`, `type`, `timestamp`, `instance_id`, `event_attributes`) and the
 * data of `user.*`, `organization.*` and `organizationMembership.*` are decoded into a normalized,
 * camelCase {@link ClerkEvent}. Extra fields are tolerated (Clerk adds fields over time); a missing
 * required one is a {@link ClerkEventDecodeError} naming its path. Unknown event types decode to
 * `Unhandled`, never to an error. Arbitrary input never throws.
 *
 * `event_attributes` (the client IP and user agent of the request that caused the event) is
 * deliberately dropped: it is personal data clerk-sync has no use for.
 *
 * @example
 * import { ClerkEvent } from "@clerk-sync/core"
 * const result = ClerkEvent.decodeJson('{"type":"user.deleted","object":"event","timestamp":1716883200,"data":{"id":"user_1","object":"user","deleted":true}}')
 * // Result.succeed({ _tag: "UserDeleted", type: "user.deleted", timestamp: 1716883200000, clerkUserId: "user_1", ... })
 *
 * @since 0.1.0
 */
import { Data, Result, Schema, SchemaIssue } from "effect"
import type { Metadata } from "./Domain.ts"
import * as Role from "./Role.ts"
import { toMillis } from "./Version.ts"

// ---------------------------------------------------------------------------------------------
// Wire schemas (Clerk's snake_case). Only what clerk-sync reads is declared; the rest is ignored.
// ---------------------------------------------------------------------------------------------

const Id = Schema.String.pipe(Schema.check(Schema.isNonEmpty()), Schema.check(Schema.isMaxLength(256)))
const Text = Schema.optionalKey(Schema.NullOr(Schema.String))
const Millis = Schema.Finite.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)))
const JsonObject = Schema.optionalKey(Schema.NullOr(Schema.Record(Schema.String, Schema.Unknown)))

const EmailAddress = Schema.Struct({ id: Schema.String, email_address: Schema.String })

const UserWire = Schema.Struct({
  id: Id,
  email_addresses: Schema.optionalKey(Schema.NullOr(Schema.Array(EmailAddress))),
  primary_email_address_id: Text,
  first_name: Text,
  last_name: Text,
  username: Text,
  image_url: Text,
  profile_image_url: Text,
  public_metadata: JsonObject,
  created_at: Schema.optionalKey(Schema.NullOr(Millis)),
  updated_at: Millis
})

const OrganizationWire = Schema.Struct({
  id: Id,
  name: Schema.String,
  slug: Text,
  image_url: Text,
  logo_url: Text,
  public_metadata: JsonObject,
  created_at: Schema.optionalKey(Schema.NullOr(Millis)),
  updated_at: Millis
})

const EmbeddedOrganizationWire = Schema.Struct({
  ...OrganizationWire.fields,
  name: Schema.optionalKey(Schema.NullOr(Schema.String)),
  updated_at: Schema.optionalKey(Schema.NullOr(Millis))
})

const PublicUserDataWire = Schema.Struct({
  user_id: Id,
  first_name: Text,
  last_name: Text,
  image_url: Text,
  profile_image_url: Text,
  identifier: Text
})

const MembershipWire = Schema.Struct({
  id: Schema.optionalKey(Schema.NullOr(Schema.String)),
  role: Schema.String.pipe(Schema.check(Schema.isNonEmpty())),
  permissions: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))),
  public_metadata: JsonObject,
  organization: EmbeddedOrganizationWire,
  public_user_data: PublicUserDataWire,
  created_at: Schema.optionalKey(Schema.NullOr(Millis)),
  updated_at: Millis
})

const DeletedWire = Schema.Struct({ id: Id })

const EnvelopeWire = Schema.Struct({
  type: Schema.String,
  object: Schema.optionalKey(Schema.String),
  timestamp: Millis,
  instance_id: Schema.optionalKey(Schema.NullOr(Schema.String)),
  data: Schema.Unknown
})

// ---------------------------------------------------------------------------------------------
// The decoded, normalized model.
// ---------------------------------------------------------------------------------------------

/** A user as a `user.created` / `user.updated` event describes it. @category models */
export interface UserData {
  readonly clerkUserId: string
  readonly email: string | null
  readonly firstName: string | null
  readonly lastName: string | null
  readonly username: string | null
  readonly imageUrl: string | null
  readonly publicMetadata: Metadata
  readonly createdAt: number | null
  readonly updatedAt: number
}

/** An organization as an `organization.*` event (or a membership's embedded copy) describes it. @category models */
export interface OrganizationData {
  readonly clerkOrgId: string
  readonly name: string
  readonly slug: string | null
  readonly imageUrl: string | null
  readonly publicMetadata: Metadata
  readonly createdAt: number | null
  readonly updatedAt: number | null
}

/** The user data a membership event embeds (`public_user_data`). @category models */
export interface PublicUserData {
  readonly clerkUserId: string
  readonly firstName: string | null
  readonly lastName: string | null
  readonly imageUrl: string | null
  /** The user's identifier (usually the email address). */
  readonly identifier: string | null
}

/** @category models */
export interface MembershipData {
  readonly clerkMembershipId: string | null
  readonly role: Role.Role
  readonly permissions: ReadonlyArray<string>
  readonly publicMetadata: Metadata
  readonly createdAt: number | null
  readonly updatedAt: number
  readonly organization: OrganizationData
  readonly user: PublicUserData
}

interface Envelope {
  /** The event type as Clerk sent it. */
  readonly type: string
  /** The envelope timestamp, in milliseconds. */
  readonly timestamp: number
  readonly instanceId: string | null
}

/** A decoded Clerk event. @category models */
export type ClerkEvent =
  | Envelope & { readonly _tag: "UserUpserted"; readonly type: "user.created" | "user.updated"; readonly user: UserData }
  | Envelope & { readonly _tag: "UserDeleted"; readonly type: "user.deleted"; readonly clerkUserId: string }
  | Envelope & {
    readonly _tag: "OrganizationUpserted"
    readonly type: "organization.created" | "organization.updated"
    readonly organization: OrganizationData
  }
  | Envelope & { readonly _tag: "OrganizationDeleted"; readonly type: "organization.deleted"; readonly clerkOrgId: string }
  | Envelope & {
    readonly _tag: "MembershipUpserted"
    readonly type: "organizationMembership.created" | "organizationMembership.updated"
    readonly membership: MembershipData
  }
  | Envelope & {
    readonly _tag: "MembershipDeleted"
    readonly type: "organizationMembership.deleted"
    readonly membership: MembershipData
  }
  | Envelope & { readonly _tag: "Unhandled" }

/** The event types clerk-sync acts on. @category constants */
export const HANDLED_TYPES = [
  "user.created",
  "user.updated",
  "user.deleted",
  "organization.created",
  "organization.updated",
  "organization.deleted",
  "organizationMembership.created",
  "organizationMembership.updated",
  "organizationMembership.deleted"
] as const

/** One problem found while decoding, with the path it was found at. @category errors */
export interface DecodeIssue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

/**
 * The event could not be decoded. `message` names the paths; it never echoes field values, so it is
 * safe to log and to store.
 *
 * @category errors
 */
export class ClerkEventDecodeError extends Data.TaggedError("ClerkEventDecodeError")<{
  readonly eventType: string | null
  readonly issues: ReadonlyArray<DecodeIssue>
}> {
  override get message(): string {
    const where = this.issues.slice(0, 5).map((i) =>
      `${i.message}${i.path.length > 0 ? ` at ${i.path.map((p) => String(p)).join(".")}` : ""}`
    )
    const more = this.issues.length > 5 ? ` (+${this.issues.length - 5} more)` : ""
    return `${this.eventType ?? "event"}: ${where.join("; ")}${more}`
  }
}

// ---------------------------------------------------------------------------------------------
// Normalization
// ---------------------------------------------------------------------------------------------

const orNull = <A>(a: A | null | undefined): A | null => a ?? null
const metadata = (m: Record<string, unknown> | null | undefined): Metadata => m ?? {}
const millisOrNull = (n: number | null | undefined): number | null => (n == null ? null : toMillis(n))

const toUser = (u: typeof UserWire.Type): UserData => {
  const primary = u.primary_email_address_id
    ? u.email_addresses?.find((e) => e.id === u.primary_email_address_id)
    : undefined
  return {
    clerkUserId: u.id,
    email: primary?.email_address ?? null,
    firstName: orNull(u.first_name),
    lastName: orNull(u.last_name),
    username: orNull(u.username),
    imageUrl: u.image_url ?? u.profile_image_url ?? null,
    publicMetadata: metadata(u.public_metadata),
    createdAt: millisOrNull(u.created_at),
    updatedAt: toMillis(u.updated_at)
  }
}

const toOrganization = (o: typeof EmbeddedOrganizationWire.Type): OrganizationData => ({
  clerkOrgId: o.id,
  name: o.name ?? "",
  slug: orNull(o.slug),
  imageUrl: o.image_url ?? o.logo_url ?? null,
  publicMetadata: metadata(o.public_metadata),
  createdAt: millisOrNull(o.created_at),
  updatedAt: millisOrNull(o.updated_at)
})

const toMembership = (m: typeof MembershipWire.Type): MembershipData => {
  const role = Role.normalize(m.role)
  return {
    clerkMembershipId: orNull(m.id),
    role,
    permissions: Role.permissionsOf(role, m.permissions),
    publicMetadata: metadata(m.public_metadata),
    createdAt: millisOrNull(m.created_at),
    updatedAt: toMillis(m.updated_at),
    organization: toOrganization(m.organization),
    user: {
      clerkUserId: m.public_user_data.user_id,
      firstName: orNull(m.public_user_data.first_name),
      lastName: orNull(m.public_user_data.last_name),
      imageUrl: m.public_user_data.image_url ?? m.public_user_data.profile_image_url ?? null,
      identifier: orNull(m.public_user_data.identifier)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const decodeWith = <S extends Schema.Decoder<unknown>>(schema: S, prefix: ReadonlyArray<PropertyKey>) => {
  const decode = Schema.decodeUnknownResult(schema)
  return (input: unknown, eventType: string | null): Result.Result<S["Type"], ClerkEventDecodeError> => {
    const result = decode(input, { errors: "all" })
    if (Result.isSuccess(result)) return Result.succeed(result.success)
    const issues = formatIssues(result.failure.issue).issues.map((i) => ({
      path: [...prefix, ...(i.path ?? []).map((p) => (typeof p === "object" && p !== null && "key" in p ? p.key : p))],
      message: i.message
    }))
    return Result.fail(new ClerkEventDecodeError({ eventType, issues }))
  }
}

const decodeEnvelope = decodeWith(EnvelopeWire, [])
const decodeUserData = decodeWith(UserWire, ["data"])
const decodeOrganizationData = decodeWith(OrganizationWire, ["data"])
const decodeMembershipData = decodeWith(MembershipWire, ["data"])
const decodeDeletedData = decodeWith(DeletedWire, ["data"])

/**
 * Decodes a parsed JSON value into a {@link ClerkEvent}. Never throws.
 *
 * @category decoding
 */
export const decode = (input: unknown): Result.Result<ClerkEvent, ClerkEventDecodeError> => {
  const envelope = decodeEnvelope(input, typeof input === "object" && input !== null && "type" in input && typeof input.type === "string" ? input.type : null)
  if (Result.isFailure(envelope)) return Result.fail(envelope.failure)
  const { data, type } = envelope.success
  const base: Envelope = {
    type,
    timestamp: toMillis(envelope.success.timestamp),
    instanceId: envelope.success.instance_id ?? null
  }
  switch (type) {
    case "user.created":
    case "user.updated":
      return Result.map(decodeUserData(data, type), (u) => ({ ...base, _tag: "UserUpserted", type, user: toUser(u) }))
    case "user.deleted":
      return Result.map(decodeDeletedData(data, type), (d) => ({ ...base, _tag: "UserDeleted", type, clerkUserId: d.id }))
    case "organization.created":
    case "organization.updated":
      return Result.map(
        decodeOrganizationData(data, type),
        (o) => ({ ...base, _tag: "OrganizationUpserted", type, organization: toOrganization(o) })
      )
    case "organization.deleted":
      return Result.map(decodeDeletedData(data, type), (d) => ({ ...base, _tag: "OrganizationDeleted", type, clerkOrgId: d.id }))
    case "organizationMembership.created":
    case "organizationMembership.updated":
      return Result.map(
        decodeMembershipData(data, type),
        (m) => ({ ...base, _tag: "MembershipUpserted", type, membership: toMembership(m) })
      )
    case "organizationMembership.deleted":
      return Result.map(
        decodeMembershipData(data, type),
        (m) => ({ ...base, _tag: "MembershipDeleted", type, membership: toMembership(m) })
      )
    default:
      return Result.succeed({ ...base, _tag: "Unhandled" })
  }
}

/**
 * Parses a raw webhook body and decodes it. A body that is not JSON is a decode error too.
 *
 * @category decoding
 */
export const decodeJson = (body: string): Result.Result<ClerkEvent, ClerkEventDecodeError> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return Result.fail(new ClerkEventDecodeError({ eventType: null, issues: [{ path: [], message: "Body is not valid JSON" }] }))
  }
  return decode(parsed)
}

/** Whether the event is one clerk-sync acts on. @category predicates */
export const isHandled = (event: ClerkEvent): event is Exclude<ClerkEvent, { _tag: "Unhandled" }> =>
  event._tag !== "Unhandled"
