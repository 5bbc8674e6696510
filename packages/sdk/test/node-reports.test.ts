/**
 * What a node reports and what it may not get by reporting it: pod subnets (R22), WireGuard
 * keys (R23), advertised endpoints, and termination (R25). A refused report changes nothing
 * and is recorded as an event.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { expect } from "vitest"
import { AgentPort, NetworkSyncer, parseWireguardEndpoint, Store } from "../src/index"
import {
  accountWithNetwork,
  activeCluster,
  effectiveWireguard,
  events,
  exec,
  execConfirmed,
  join,
  provisionAgent,
  reportReady,
  type SimAgent,
  withFleet
} from "./support/fleet-harness"
import { wireguardKeyPair } from "./support/wireguard-keys"

const flush = Effect.flatMap(Effect.service(NetworkSyncer), (syncer) => syncer.flush)

const reportPodSubnet = (agent: SimAgent, podCidr: string) =>
  Effect.flatMap(Effect.service(AgentPort), (port) =>
    port.statusReport(agent.identity, { k3s: { service: "active", node_ready: true, pod_cidr: podCidr }, modules: [] })
  )

/** A prod cluster with two servers and one worker, each reporting its /24. */
const prodWithWorker = Effect.gen(function* () {
  const setup = yield* accountWithNetwork({ podPrefix: "10.42.0.0/16" })
  const cluster = yield* activeCluster(setup, { servers: 2 })
  const worker = yield* provisionAgent(setup.accountId, { hostname: "k3s-prod-worker-1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
  const joined = yield* join(worker, "k3s-agent", cluster.clusterId)
  assert.isTrue(joined.accepted)
  yield* reportReady(worker)
  const [server1, server2] = cluster.servers as [SimAgent, SimAgent]
  for (const [agent, subnet] of [[server1, "10.42.1.0/24"], [server2, "10.42.2.0/24"], [worker, "10.42.3.0/24"]] as const) {
    expect(yield* reportPodSubnet(agent, subnet)).toEqual([])
  }
  yield* flush
  const detail = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: cluster.clusterId })
  return { setup, cluster, server1, server2, worker, vip: detail.virtual_ip }
})

describe("R22 pod subnets reported by nodes", () => {
  it.effect("an accepted pod subnet is routed to its node in every other peer's AllowedIPs", () =>
    withFleet()(
      Effect.gen(function* () {
        const { server1, server2, worker } = yield* prodWithWorker
        const config = yield* effectiveWireguard(server2)
        expect(config).toContain(`PublicKey = ${server1.keys.publicKey}`)
        expect(config).toMatch(new RegExp(`PublicKey = ${server1.keys.publicKey.replace(/[+/]/g, "\\$&")}\\n(Endpoint = .*\\n)?AllowedIPs = [^\\n]*10\\.42\\.1\\.0/24`))
        expect(yield* effectiveWireguard(server1)).toContain("10.42.3.0/24")
        expect(yield* effectiveWireguard(worker)).toContain("10.42.2.0/24")
      })
    )
  )

  for (const [what, reported, reason] of [
    ["everything in IPv4", "0.0.0.0/0", "outside_cluster_cidr"],
    ["everything in IPv6", "::/0", "outside_cluster_cidr"],
    ["the whole cluster CIDR", "10.42.0.0/16", "wrong_size"],
    ["another node's subnet", "10.42.1.0/24", "overlaps_peer_subnet"],
    ["a subnet outside the cluster CIDR", "10.99.0.0/24", "outside_cluster_cidr"],
    ["a non-canonical subnet", "10.42.9.1/24", "not_canonical"],
    ["garbage", "not-a-cidr", "not_a_cidr"]
  ] as const) {
    it.effect(`refuses ${what} (${reported}) with pod_subnet_refused, an event, and no change`, () =>
      withFleet()(
        Effect.gen(function* () {
          const { setup, server1, server2, worker } = yield* prodWithWorker
          const before = yield* Effect.all([effectiveWireguard(server1), effectiveWireguard(server2)])
          const refusals = yield* reportPodSubnet(worker, reported)
          assert.strictEqual(refusals.length, 1)
          assert.strictEqual(refusals[0]!.code, "pod_subnet_refused")
          yield* flush
          expect(yield* Effect.all([effectiveWireguard(server1), effectiveWireguard(server2)])).toEqual(before)
          const refused = (yield* events(setup.accountId)).filter((e) => e.type === "sdwan.pod_subnet_refused")
          expect(refused.at(-1)?.data).toMatchObject({ instance_id: worker.instanceId, reason })
        })
      )
    )
  }

  it.effect("refuses a subnet holding the VIP or other nodes' overlay addresses, even when the cluster CIDR contains them", () =>
    withFleet()(
      Effect.gen(function* () {
        // Creation never lets a pod prefix overlap an overlay range; a database from before that
        // rule might. R22 does not rely on it: the subnet is checked against every address.
        const { setup, cluster, worker, vip } = yield* prodWithWorker
        const store = yield* Store
        yield* store.transaction((tx) => tx.updateCluster(setup.accountId, cluster.clusterId as never, { cluster_cidr: "100.64.0.0/10" }))
        const vipSubnet = `${vip.address_ipv4.split(".").slice(0, 3).join(".")}.0/24`
        const refusals = yield* reportPodSubnet(worker, vipSubnet)
        assert.strictEqual(refusals[0]?.code, "pod_subnet_refused")
        const refused = (yield* events(setup.accountId)).filter((e) => e.type === "sdwan.pod_subnet_refused")
        expect(["overlaps_vip", "overlaps_peer_address"]).toContain(refused.at(-1)?.data.reason)
      })
    )
  )
})

describe("R23 a WireGuard key belongs to one peer of a network", () => {
  it.effect("a key another peer holds is refused (wireguard_key_in_use), recorded, and the peer keeps its own", () =>
    withFleet()(
      Effect.gen(function* () {
        const { setup, server1, worker } = yield* prodWithWorker
        const port = yield* AgentPort
        const refusals = yield* port.registerWireguardKeys(worker.identity, [{ network_id: setup.networkId, public_key: server1.keys.publicKey }])
        expect(refusals.map((r) => r.code)).toEqual(["wireguard_key_in_use"])
        yield* flush
        const config = yield* effectiveWireguard(server1)
        // The worker's [Peer] still has its own key; the stolen key appears nowhere in server1's config.
        expect(config).toContain(`PublicKey = ${worker.keys.publicKey}`)
        expect(config).not.toContain(`PublicKey = ${server1.keys.publicKey}`)
        const refused = (yield* events(setup.accountId)).filter((e) => e.type === "sdwan.wireguard_key_refused")
        expect(refused.at(-1)?.data).toMatchObject({ instance_id: worker.instanceId, network_id: setup.networkId })
      })
    )
  )

  it.effect("a peer may present its own key again, and rotate to a fresh one", () =>
    withFleet()(
      Effect.gen(function* () {
        const { setup, server1, worker } = yield* prodWithWorker
        const port = yield* AgentPort
        expect(yield* port.registerWireguardKeys(worker.identity, [{ network_id: setup.networkId, public_key: worker.keys.publicKey }])).toEqual([])
        const fresh = wireguardKeyPair()
        expect(yield* port.registerWireguardKeys(worker.identity, [{ network_id: setup.networkId, public_key: fresh.publicKey }])).toEqual([])
        yield* flush
        expect(yield* effectiveWireguard(server1)).toContain(`PublicKey = ${fresh.publicKey}`)
      })
    )
  )
})

describe("advertised endpoints", () => {
  it("parses host:port in every spelling and refuses anything that could break a config line", () => {
    expect(parseWireguardEndpoint("203.0.113.7:51820")).toEqual({ ok: true, endpoint: "203.0.113.7:51820" })
    expect(parseWireguardEndpoint("[2001:DB8::1]:51820")).toEqual({ ok: true, endpoint: "[2001:db8::1]:51820" })
    expect(parseWireguardEndpoint("Node-1.Example.com:4500")).toEqual({ ok: true, endpoint: "node-1.example.com:4500" })
    for (const bad of ["203.0.113.7", "203.0.113.7:0", "203.0.113.7:70000", "2001:db8::1:51820", "[nothex]:1", "a b:1", "x:1\nAllowedIPs = 0.0.0.0/0", "999.1.1.1:5", "-x.com:1", ""]) {
      assert.isFalse(parseWireguardEndpoint(bad).ok, bad)
    }
  })

  it.effect("the endpoint peers get is the one the agent advertised; a malformed one is refused and changes nothing", () =>
    withFleet()(
      Effect.gen(function* () {
        const { setup, server1, worker } = yield* prodWithWorker
        const port = yield* AgentPort
        expect(
          yield* port.registerWireguardKeys(worker.identity, [{ network_id: setup.networkId, public_key: worker.keys.publicKey, endpoint: "203.0.113.9:51999" }])
        ).toEqual([])
        yield* flush
        expect(yield* effectiveWireguard(server1)).toContain(`PublicKey = ${worker.keys.publicKey}\nEndpoint = 203.0.113.9:51999\n`)
        const refusals = yield* port.registerWireguardKeys(worker.identity, [
          { network_id: setup.networkId, public_key: worker.keys.publicKey, endpoint: "203.0.113.9:51999\nAllowedIPs = 0.0.0.0/0" }
        ])
        expect(refusals.map((r) => r.code)).toEqual(["invalid_endpoint"])
        yield* flush
        const config = yield* effectiveWireguard(server1)
        expect(config).toContain("Endpoint = 203.0.113.9:51999\n")
        expect(config).not.toContain("0.0.0.0/0")
      })
    )
  )

  it.effect("a hello without an endpoint leaves the peer without one: the WebSocket's address is never used", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const node = yield* exec(setup.accountId, "system_create_node", { hostname: "quiet", node_template_id: setup.workerTemplateId })
        const instance = yield* exec(setup.accountId, "system_provision_instance", { node_id: node.id })
        const peer = yield* exec(setup.accountId, "system_sdwan_attach_peer", { network_id: setup.networkId, node_instance_id: instance.id })
        const port = yield* AgentPort
        const identity = yield* port.authenticate(instance.id, instance.agent_credential)
        const keys = wireguardKeyPair()
        const hello = yield* port.hello(identity, { wireguard_keys: [{ network_id: setup.networkId, public_key: keys.publicKey }], applied: [], held_vips: [] })
        expect(hello.networks).toEqual([{ network_id: setup.networkId, interface_name: "wg-sdwan-prod", listen_port: 51820 }])
        const { networks } = yield* exec(setup.accountId, "system_sdwan_list_networks")
        assert.strictEqual(networks[0].id, setup.networkId)
        assert.strictEqual(peer.endpoint, null)
      })
    )
  )
})

describe("R25 terminating an instance", () => {
  it.effect("removes its peer from every other peer's config and frees nothing that is still held", () =>
    withFleet()(
      Effect.gen(function* () {
        const { setup, server1, worker } = yield* prodWithWorker
        const result = yield* execConfirmed(setup.accountId, "system_terminate_instance", { instance_id: worker.instanceId })
        assert.strictEqual(result.status, "terminated")
        yield* flush
        const config = yield* effectiveWireguard(server1)
        expect(config).not.toContain(worker.keys.publicKey)
        expect(config).not.toContain("10.42.3.0/24")
        const terminated = (yield* events(setup.accountId)).find((e) => e.type === "system.instance_terminated")
        assert.strictEqual(terminated?.data.peers_removed.length, 1)
      })
    )
  )
})
