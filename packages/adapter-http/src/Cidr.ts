/**
 * Address ranges in CIDR notation, IPv4 and IPv6, for the webhook allow-list.
 *
 * Pure JavaScript (no `node:net`), so the Fetch handler runs on edge runtimes too. IPv4 addresses
 * and ranges live in the IPv4-mapped IPv6 space (`::ffff:0:0/96`), so `::ffff:52.215.16.239` (what a
 * dual-stack Node socket reports) matches `52.215.16.239/32`. Zone ids (`fe80::1%eth0`) are dropped.
 *
 * @example
 * import { Cidr } from "@clerk-sync/adapter-http"
 * const svix = Cidr.make(["44.228.126.217", "2600:1f24:64:8000::/56"])
 * Cidr.contains(svix, "::ffff:44.228.126.217") // true
 * Cidr.contains(svix, "10.0.0.1") // false
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/** A parsed address: 128 bits, IPv4 mapped into `::ffff:0:0/96`. @category models */
export type Address = bigint

interface Range {
  readonly network: bigint
  readonly shift: bigint
}

/** A set of address ranges. Build it once with {@link make}; matching is a few bigint operations. @category models */
export interface RangeSet {
  readonly ranges: ReadonlyArray<Range>
}

/** A range that does not parse. The message names the bad entry (ranges are not secret). @category errors */
export class InvalidRange extends Data.TaggedError("InvalidRange")<{ readonly range: string }> {
  override get message(): string {
    return `invalid address range: ${JSON.stringify(this.range)}`
  }
}

const V4_MAPPED = 0xffffn << 32n

const parseV4 = (text: string): bigint | undefined => {
  const parts = text.split(".")
  if (parts.length !== 4) return undefined
  let value = 0n
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    value = (value << 8n) | BigInt(n)
  }
  return value
}

const parseGroups = (text: string): Array<number> | undefined => {
  if (text === "") return []
  const groups: Array<number> = []
  const parts = text.split(":")
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!
    if (i === parts.length - 1 && part.includes(".")) {
      const v4 = parseV4(part)
      if (v4 === undefined) return undefined
      groups.push(Number(v4 >> 16n), Number(v4 & 0xffffn))
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return undefined
      groups.push(parseInt(part, 16))
    }
  }
  return groups
}

const parseV6 = (input: string): bigint | undefined => {
  const zone = input.indexOf("%")
  const text = zone === -1 ? input : input.slice(0, zone)
  const halves = text.split("::")
  if (halves.length > 2) return undefined
  let groups: Array<number>
  if (halves.length === 2) {
    const head = parseGroups(halves[0]!)
    const tail = parseGroups(halves[1]!)
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined
    groups = [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail]
  } else {
    const all = parseGroups(text)
    if (all === undefined || all.length !== 8) return undefined
    groups = all
  }
  let value = 0n
  for (const g of groups) value = (value << 16n) | BigInt(g)
  return value
}

/**
 * Parses an IPv4 or IPv6 address (IPv4 mapped into IPv6), or `undefined` when it is not one.
 *
 * @category parsing
 */
export const parseAddress = (text: string): Address | undefined => {
  const trimmed = text.trim()
  if (trimmed.includes(":")) return parseV6(trimmed.startsWith("[") && trimmed.endsWith("]") ? trimmed.slice(1, -1) : trimmed)
  const v4 = parseV4(trimmed)
  return v4 === undefined ? undefined : V4_MAPPED | v4
}

const parseRange = (text: string): Range => {
  const [addressText, prefixText, ...rest] = text.trim().split("/")
  if (addressText === undefined || rest.length > 0) throw new InvalidRange({ range: text })
  const address = parseAddress(addressText)
  if (address === undefined) throw new InvalidRange({ range: text })
  const isV4 = !addressText.includes(":")
  const max = isV4 ? 32 : 128
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) throw new InvalidRange({ range: text })
  const prefix = prefixText === undefined ? max : Number(prefixText)
  if (prefix > max) throw new InvalidRange({ range: text })
  const shift = BigInt(max - prefix)
  return { network: address >> shift, shift }
}

/**
 * Builds a range set from CIDR ranges or single addresses (`"10.0.0.0/8"`, `"::1"`,
 * `"2600:1f24:64:8000::/56"`). Throws {@link InvalidRange} on the first entry that does not parse:
 * a typo in an allow-list must fail at startup, not silently allow or deny.
 *
 * @category constructors
 */
export const make = (ranges: Iterable<string>): RangeSet => ({ ranges: Array.from(ranges, parseRange) })

/**
 * Whether an address (text or parsed) falls in one of the ranges. Unparseable text is in none.
 *
 * @category predicates
 */
export const contains = (set: RangeSet, address: string | Address): boolean => {
  const parsed = typeof address === "string" ? parseAddress(address) : address
  if (parsed === undefined) return false
  for (const range of set.ranges) if (parsed >> range.shift === range.network) return true
  return false
}
