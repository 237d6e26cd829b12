import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { BlockList, isIPv4 } from "node:net"
import { Cidr, ClientAddress, SvixSourceAddresses } from "../src/index.ts"

describe("Cidr", () => {
  it("matches IPv4, IPv6, mapped IPv4, bracketed and zoned addresses", () => {
    const set = Cidr.make(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "fe80::/10"])
    for (const yes of ["10.255.0.1", "::ffff:10.0.0.1", "192.0.2.7", "2001:db8::1", "[2001:db8:ffff::]", "fe80::1%eth0"]) {
      assert.isTrue(Cidr.contains(set, yes), yes)
    }
    for (const no of ["11.0.0.0", "192.0.2.8", "2001:db9::", "::1", "not an address", "", "10.0.0", "1.2.3.4.5", "10.0.0.256", "::ffff:11.0.0.1"]) {
      assert.isFalse(Cidr.contains(set, no), no)
    }
  })

  it("a /0 range of one family does not leak into the other", () => {
    assert.isTrue(Cidr.contains(Cidr.make(["0.0.0.0/0"]), "1.2.3.4"))
    assert.isFalse(Cidr.contains(Cidr.make(["0.0.0.0/0"]), "2001:db8::1"))
    assert.isTrue(Cidr.contains(Cidr.make(["::/0"]), "1.2.3.4")) // every address is in ::/0, mapped IPv4 included
  })

  it("rejects malformed ranges with InvalidRange", () => {
    for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8/8", "1::2::3", "hello", "10.0.0.0/-1", "12345::"]) {
      assert.throws(() => Cidr.make([bad]), /invalid address range/)
    }
  })

  it("the published Svix addresses parse", () => {
    for (const region of [SvixSourceAddresses.us, SvixSourceAddresses.eu, SvixSourceAddresses.au, SvixSourceAddresses.ca, SvixSourceAddresses.india]) {
      const set = Cidr.make(region)
      assert.isTrue(Cidr.contains(set, region[0]!))
    }
    assert.isTrue(Cidr.contains(Cidr.make(SvixSourceAddresses.us), "2600:1f24:64:80ff::1"))
  })

  it("agrees with node:net BlockList on random ranges and addresses", () => {
    const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."))
    const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((n) => n.toString(16)).join(":"))
    const nearby = (base: string) =>
      fc.nat(3).map((flip) => {
        if (isIPv4(base)) {
          const parts = base.split(".").map(Number)
          parts[3 - flip] = (parts[3 - flip]! + 1) % 256
          return parts.join(".")
        }
        const groups = base.split(":")
        groups[7 - flip] = ((parseInt(groups[7 - flip]!, 16) + 1) % 0x10000).toString(16)
        return groups.join(":")
      })
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(v4, fc.integer({ min: 0, max: 32 })),
          fc.tuple(v6, fc.integer({ min: 0, max: 128 }))
        ).chain(([network, prefix]) => fc.tuple(fc.constant(network), fc.constant(prefix), fc.oneof(v4, v6, fc.constant(network), nearby(network)))),
        ([network, prefix, address]) => {
          const family = isIPv4(network) ? "ipv4" : "ipv6"
          const list = new BlockList()
          list.addSubnet(network, prefix, family)
          const expected = list.check(address, isIPv4(address) ? "ipv4" : "ipv6")
          assert.strictEqual(Cidr.contains(Cidr.make([`${network}/${prefix}`]), address), expected, `${address} in ${network}/${prefix}`)
        }
      ),
      { numRuns: 500 }
    )
  })
})

describe("ClientAddress.forwardedFor", () => {
  const request = (peer: string, xff?: string) =>
    ClientAddress.attach(new Request("http://x/", xff === undefined ? {} : { headers: { "x-forwarded-for": xff } }), peer)
  const address = ClientAddress.forwardedFor({ trustedProxies: ["10.0.0.0/8"] })

  it("ignores X-Forwarded-For from an untrusted peer", () => {
    assert.strictEqual(address(request("203.0.113.5", "44.228.126.217")), "203.0.113.5")
  })

  it("takes the right-most untrusted hop behind trusted proxies", () => {
    assert.strictEqual(address(request("10.0.0.2", "1.1.1.1, 44.228.126.217, 10.0.0.9")), "44.228.126.217")
    assert.strictEqual(address(request("10.0.0.2")), "10.0.0.2")
    assert.strictEqual(address(request("10.0.0.2", "10.0.0.7")), "10.0.0.7")
    assert.isUndefined(address(request("10.0.0.2", "1.1.1.1, garbage")))
  })
})
