import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import fc from "fast-check"
import { expect } from "vitest"
import { contains, overlaps, parseCidr } from "../src/index"
import { exec, failure, newAccount, withFleet } from "./support/fleet-harness"


const createNetwork = (accountId: any, input: Record<string, unknown>) =>
  exec(accountId, "system_sdwan_create_network", { name: `n-${String(input.handle)}`, ...input })

describe("CIDR math", () => {
  it("parses IPv4 and IPv6 prefixes into exact ranges", () => {
    const v4 = parseCidr("10.42.0.0/16")
    const v6 = parseCidr("fd00:1:2::/48")
    assert.isTrue(v4.ok && v4.cidr.start === 0x0a2a0000n && v4.cidr.end === 0x0a2affffn)
    assert.isTrue(v6.ok && v6.cidr.family === 6 && v6.cidr.end - v6.cidr.start === (1n << 80n) - 1n)
  })

  it("finds the canonical spelling of a prefix with host bits set", () => {
    const parsed = parseCidr("10.42.7.9/16")
    assert.isTrue(parsed.ok && !parsed.wasCanonical && parsed.cidr.canonical === "10.42.0.0/16")
    const v6 = parseCidr("FD00:0:0:0:0:0:0:1/64")
    assert.isTrue(v6.ok && v6.cidr.canonical === "fd00::/64")
  })

  it("overlap agrees with brute force over random IPv4 prefixes", () => {
    const prefix = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 8, max: 24 }))
    fc.assert(
      fc.property(prefix, prefix, ([a1, a2, la], [b1, b2, lb]) => {
        const a = parseCidr(`10.${a1}.${a2}.0/${la}`)
        const b = parseCidr(`10.${b1}.${b2}.0/${lb}`)
        if (!a.ok || !b.ok) return
        const bruteForce = !(a.cidr.end < b.cidr.start || b.cidr.end < a.cidr.start)
        assert.strictEqual(overlaps(a.cidr, b.cidr), bruteForce)
      })
    )
  })

  it("never confuses families", () => {
    const a = parseCidr("0.0.0.0/0")
    const b = parseCidr("::/0")
    assert.isTrue(a.ok && b.ok && !overlaps(a.cidr, b.cidr))
  })
})

describe("SD-WAN networks", () => {
  it.effect("R1 accepts a canonical pod prefix and rejects a non-canonical one, naming the canonical form", () =>
    withFleet()(
      Effect.gen(function* () {
        const account = yield* newAccount("acme")
        const ok = yield* createNetwork(account.id, { handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
        assert.strictEqual(ok.pod_subnet_prefix, "10.42.0.0/16")
        const error = yield* failure(createNetwork(account.id, { handle: "stg", pod_subnet_prefix: "10.50.3.0/16" }))
        assert.strictEqual(error.code, "pod_prefix_not_canonical")
        expect(error.message).toContain("10.50.0.0/16")
        assert.strictEqual(error.details.canonical, "10.50.0.0/16")
        const v6 = yield* failure(createNetwork(account.id, { handle: "v6", pod_subnet_prefix: "fd00:42::1/56" }))
        assert.strictEqual(v6.code, "pod_prefix_not_canonical")
        const garbage = yield* failure(createNetwork(account.id, { handle: "bad", pod_subnet_prefix: "10.0.0.0/33" }))
        assert.strictEqual(garbage.code, "invalid_cidr")
      })
    )
  )

  it.effect("R2 rejects an overlapping pod prefix in the same account, naming the network it collides with", () =>
    withFleet()(
      Effect.gen(function* () {
        const account = yield* newAccount("acme")
        const prod = yield* createNetwork(account.id, { handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
        for (const prefix of ["10.42.0.0/16", "10.42.128.0/17", "10.0.0.0/8"]) {
          const error = yield* failure(createNetwork(account.id, { handle: `x${prefix.length}`, pod_subnet_prefix: prefix }))
          assert.strictEqual(error.code, "pod_prefix_overlap")
          assert.strictEqual(error.details.conflicting_network_id, prod.id)
          expect(error.message).toContain(prod.id)
        }
        const adjacent = yield* createNetwork(account.id, { handle: "stg", pod_subnet_prefix: "10.43.0.0/16" })
        assert.strictEqual(adjacent.pod_subnet_prefix, "10.43.0.0/16")
      })
    )
  )

  it.effect("R2 lets different accounts reuse the same pod prefix", () =>
    withFleet()(
      Effect.gen(function* () {
        const a = yield* newAccount("a")
        const b = yield* newAccount("b")
        yield* createNetwork(a.id, { handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
        const reused = yield* createNetwork(b.id, { handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
        assert.strictEqual(reused.pod_subnet_prefix, "10.42.0.0/16")
      })
    )
  )

  it.effect("R3 rejects pod prefixes too small for per-node subnets (IPv4 longer than /23, IPv6 longer than /63)", () =>
    withFleet()(
      Effect.gen(function* () {
        const account = yield* newAccount("acme")
        assert.strictEqual((yield* failure(createNetwork(account.id, { handle: "a", pod_subnet_prefix: "10.42.0.0/24" }))).code, "pod_prefix_too_small")
        assert.strictEqual((yield* failure(createNetwork(account.id, { handle: "b", pod_subnet_prefix: "fd00:42::/64" }))).code, "pod_prefix_too_small")
        yield* createNetwork(account.id, { handle: "c", pod_subnet_prefix: "10.44.0.0/23" })
        yield* createNetwork(account.id, { handle: "d", pod_subnet_prefix: "fd00:42::/63" })
      })
    )
  )

  it.effect("R4 warns when a pod prefix overlaps k3s's default service CIDR, and clusters there get another service CIDR", () =>
    withFleet()(
      Effect.gen(function* () {
        const account = yield* newAccount("tenant-b")
        const clear = yield* exec(account.id, "system_sdwan_create_network", { name: "a", handle: "a", pod_subnet_prefix: "10.42.0.0/16" })
        assert.deepStrictEqual(clear.warnings, [])
        const colliding = yield* exec(account.id, "system_sdwan_create_network", { name: "b", handle: "b", pod_subnet_prefix: "10.43.0.0/16" })
        assert.strictEqual(colliding.warnings.length, 1)
        expect(colliding.warnings[0]).toContain("10.43.0.0/16")
      })
    )
  )

  it.effect("R5 accepts 1-6 character handles and rejects anything that would not fit wg-sdwan-<handle>", () =>
    withFleet()(
      Effect.gen(function* () {
        const account = yield* newAccount("acme")
        const ok = yield* createNetwork(account.id, { handle: "prod-1" })
        assert.strictEqual(ok.interface_name, "wg-sdwan-prod-1")
        assert.isAtMost(Buffer.byteLength(ok.interface_name), 15)
        for (const handle of ["", "toolong", "Prod", "a_b", "ä"]) {
          assert.strictEqual((yield* failure(createNetwork(account.id, { handle }))).code, "invalid_handle")
        }
      })
    )
  )

  it.effect("allocates a distinct ULA /64 per network inside the account's RFC 4193 /48", () =>
    withFleet()(
      Effect.gen(function* () {
        const account = yield* newAccount("acme")
        const a = yield* createNetwork(account.id, { handle: "a" })
        const b = yield* createNetwork(account.id, { handle: "b" })
        const [pa, pb] = [parseCidr(a.overlay_prefix), parseCidr(b.overlay_prefix)]
        assert.isTrue(pa.ok && pb.ok)
        if (pa.ok && pb.ok) {
          assert.isTrue(pa.wasCanonical && pa.cidr.prefixLength === 64 && pa.cidr.start >> 120n === 0xfdn)
          // Same /48 (the account's RFC 4193 global ID), different /64s.
          assert.strictEqual(pa.cidr.start >> 80n, pb.cidr.start >> 80n)
          assert.strictEqual(pb.cidr.start - pa.cidr.start, 1n << 64n)
        }
        const other = yield* newAccount("other")
        const c = yield* createNetwork(other.id, { handle: "a" })
        assert.notStrictEqual(c.overlay_prefix, a.overlay_prefix)
        const chosen = yield* createNetwork(account.id, { handle: "c", overlay_prefix: "fd12:3456:789a:1::/64" })
        assert.strictEqual(chosen.overlay_prefix, "fd12:3456:789a:1::/64")
        assert.strictEqual((yield* failure(createNetwork(account.id, { handle: "d", overlay_prefix: "fd12:3456:789a:1::/64" }))).code, "overlay_prefix_taken")
        assert.strictEqual((yield* failure(createNetwork(account.id, { handle: "e", overlay_prefix: "2001:db8::/64" }))).code, "invalid_overlay_prefix")
      })
    )
  )

  it.effect("peers and VIPs get distinct /128s in the network's /64", () =>
    withFleet()(
      Effect.gen(function* () {
        const account = yield* newAccount("acme")
        const network = yield* createNetwork(account.id, { handle: "prod" })
        const template = yield* exec(account.id, "system_create_template", { name: "t" })
        const addresses = new Set<string>()
        for (let i = 0; i < 5; i++) {
          const node = yield* exec(account.id, "system_create_node", { hostname: `n${i}`, node_template_id: template.id })
          const instance = yield* exec(account.id, "system_provision_instance", { node_id: node.id })
          const peer = yield* exec(account.id, "system_sdwan_attach_peer", { network_id: network.id, node_instance_id: instance.id })
          const prefix = parseCidr(network.overlay_prefix)
          const address = parseCidr(`${peer.overlay_address}/128`)
          assert.isTrue(prefix.ok && address.ok && contains(prefix.cidr, address.cidr))
          addresses.add(peer.overlay_address)
          const again = yield* exec(account.id, "system_sdwan_attach_peer", { network_id: network.id, node_instance_id: instance.id })
          assert.strictEqual(again.overlay_address, peer.overlay_address)
        }
        assert.strictEqual(addresses.size, 5)
      })
    )
  )

  it.effect("R6 the indexed overlap check agrees with a full scan over many random prefixes", () =>
    withFleet()(
      Effect.gen(function* () {
        const account = yield* newAccount("acme")
        const accepted: Array<ReturnType<typeof parseCidr>> = []
        const samples = fc.sample(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 12, max: 23 })), { numRuns: 300, seed: 42 })
        for (const [index, [a, b, length]] of samples.entries()) {
          const candidate = parseCidr(`10.${a}.${b}.0/${length}`)
          if (!candidate.ok) continue
          const prefix = candidate.cidr.canonical
          const scan = accepted.some((p) => p.ok && overlaps(p.cidr, candidate.cidr))
          const result = yield* Effect.exit(createNetwork(account.id, { handle: `h${index.toString(36)}`, name: `n${index}`, pod_subnet_prefix: prefix }))
          assert.strictEqual(Exit.isFailure(result), scan, `${prefix}: index and scan disagree`)
          if (Exit.isSuccess(result)) accepted.push(candidate)
        }
        assert.isAbove(accepted.length, 10)
      })
    )
  )
})
