/**
 * list / get / delete for every inventory kind (what `fleetplane <kind> list|get|describe|delete`
 * and the console show): names beside ids, relations, and deletes refused with a typed error
 * that says what to do whenever something still uses the object or its history must stay.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { AgentPort, NetworkSyncer } from "../src/index"
import { accountWithNetwork, activeCluster, effectiveWireguard, events, exec, execConfirmed, failure, heartbeat, join, provisionAgent, withFleet } from "./support/fleet-harness"

describe("inventory reads", () => {
  it.effect("templates, nodes, instances, networks, peers and VIPs list and get with names, relations and liveness", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId, servers } = yield* activeCluster(setup, { servers: 1 })
        yield* heartbeat(servers[0]!)
        const worker = yield* provisionAgent(setup.accountId, { hostname: "edge-worker-1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const spare = yield* exec(setup.accountId, "system_create_node", { hostname: "spare-1", node_template_id: "workers" })

        const templates = (yield* exec(setup.accountId, "system_list_templates")).templates
        assert.deepStrictEqual(templates.map((t: any) => [t.name, t.node_count, t.modules.map((m: any) => m.module_name)]), [
          ["servers", 1, ["k3s-server"]],
          ["workers", 2, ["k3s-agent"]]
        ])
        const workers = yield* exec(setup.accountId, "system_get_template", { template_id: "workers" })
        assert.deepStrictEqual(workers.nodes.map((n: any) => [n.hostname, n.instance_id]), [
          ["edge-worker-1", worker.instanceId],
          ["spare-1", null]
        ])

        const nodes = (yield* exec(setup.accountId, "system_list_nodes", { template_id: "workers" })).nodes
        assert.deepStrictEqual(nodes.map((n: any) => [n.hostname, n.template_name, n.instance_id]), [
          ["edge-worker-1", "workers", worker.instanceId],
          ["spare-1", "workers", null]
        ])
        const node = yield* exec(setup.accountId, "system_get_node", { node_id: "edge-worker-1" })
        assert.deepStrictEqual(node.instances.map((i: any) => [i.id, i.status]), [[worker.instanceId, "running"]])
        assert.strictEqual((yield* exec(setup.accountId, "system_get_node", { node_id: spare.id })).instances.length, 0)

        const instances = (yield* exec(setup.accountId, "system_list_instances")).instances
        assert.deepStrictEqual(instances.map((i: any) => [i.hostname, i.cluster_id, i.role, i.agent]), [
          ["k3s-prod-server-1", clusterId, "control-plane", "connected"],
          ["edge-worker-1", null, null, "connected"]
        ])
        assert.strictEqual((yield* exec(setup.accountId, "system_list_instances", { status: "terminated" })).instances.length, 0)
        // One instance shows what the gateway wants on it and what its agent has applied.
        const wanted = (yield* exec(setup.accountId, "system_get_instance", { instance_id: "edge-worker-1" })).configs.find((c: any) => c.kind === "wireguard")
        assert.strictEqual(wanted.applied_version, null)
        yield* (yield* AgentPort).configAck(worker.identity, { kind: "wireguard", key: wanted.key, version: wanted.version, status: "applied" })
        const applied = (yield* exec(setup.accountId, "system_get_instance", { instance_id: "edge-worker-1" })).configs.find((c: any) => c.kind === "wireguard")
        assert.deepStrictEqual([applied.applied_version, applied.error], [wanted.version, null])

        const network = yield* exec(setup.accountId, "system_sdwan_get_network", { network_id: "prod" })
        assert.strictEqual(network.peer_count, 2)
        assert.deepStrictEqual(network.clusters.map((c: any) => [c.id, c.status]), [[clusterId, "active"]])
        assert.strictEqual(network.virtual_ips[0].holder_hostname, "k3s-prod-server-1")

        const peers = (yield* exec(setup.accountId, "system_sdwan_list_peers", { network_id: "prod-net" })).peers
        assert.deepStrictEqual(peers.map((p: any) => [p.hostname, p.holds_vip, p.public_key !== null, p.endpoint !== null]), [
          ["k3s-prod-server-1", true, true, true],
          ["edge-worker-1", false, true, true]
        ])

        // The newest events, oldest first (what `describe` shows as recent events).
        const all = yield* events(setup.accountId)
        const latest = (yield* exec(setup.accountId, "system_list_events", { latest: true, limit: 3 })).events
        assert.deepStrictEqual(latest.map((e: any) => e.seq), all.slice(-3).map((e) => e.seq))

        const vips = (yield* exec(setup.accountId, "system_sdwan_list_virtual_ips")).virtual_ips
        assert.deepStrictEqual(vips.map((v: any) => [v.cluster_id, v.cluster_name, v.holder_hostname, v.epoch]), [[clusterId, "k3s-prod-server-1", "k3s-prod-server-1", 1]])
      })
    )
  )

  it.effect("an unknown template, node or network is a typed not-found naming what was asked for", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        assert.strictEqual((yield* failure(exec(setup.accountId, "system_get_template", { template_id: "nope" }))).code, "template_not_found")
        assert.strictEqual((yield* failure(exec(setup.accountId, "system_get_node", { node_id: "nope" }))).code, "node_not_found")
        assert.strictEqual((yield* failure(exec(setup.accountId, "system_sdwan_get_network", { network_id: "nope" }))).code, "network_not_found")
        assert.strictEqual((yield* failure(exec(setup.accountId, "system_sdwan_list_peers", { network_id: "nope" }))).code, "network_not_found")
      })
    )
  )
})

describe("inventory deletes", () => {
  it.effect("what was never used is deleted; what is in use or has history is refused with what to do", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        yield* activeCluster(setup, { servers: 1 })

        // A template in use, then free.
        const typo = yield* exec(setup.accountId, "system_create_template", { name: "wrokers" })
        const onTypo = yield* exec(setup.accountId, "system_create_node", { hostname: "mistake-1", node_template_id: typo.id })
        const inUse = yield* failure(exec(setup.accountId, "system_delete_template", { template_id: "wrokers" }))
        assert.strictEqual(inUse.code, "template_in_use")
        assert.match(inUse.message, /mistake-1.*delete those nodes first/)
        assert.deepStrictEqual(yield* exec(setup.accountId, "system_delete_node", { node_id: "mistake-1" }), { node_id: onTypo.id, deleted: true })
        assert.deepStrictEqual(yield* exec(setup.accountId, "system_delete_template", { template_id: "wrokers" }), { template_id: typo.id, deleted: true })
        assert.strictEqual((yield* failure(exec(setup.accountId, "system_get_template", { template_id: typo.id }))).code, "template_not_found")
        // The hostname is free again.
        yield* exec(setup.accountId, "system_create_node", { hostname: "mistake-1", node_template_id: "workers" })

        // A node with a running instance, or one that had instances, keeps its history.
        const running = yield* failure(exec(setup.accountId, "system_delete_node", { node_id: "k3s-prod-server-1" }))
        assert.strictEqual(running.code, "node_has_instances")
        assert.match(running.message, /terminate it first/)

        // A network with a cluster (even decommissioned) or with peers stays; an empty one goes and its handle is free.
        assert.strictEqual((yield* failure(exec(setup.accountId, "system_sdwan_delete_network", { network_id: "prod" }))).code, "network_has_clusters")
        const lab = yield* exec(setup.accountId, "system_sdwan_create_network", { name: "lab", handle: "lab", pod_subnet_prefix: "10.50.0.0/16" })
        const guest = yield* provisionAgent(setup.accountId, { hostname: "lab-1", templateId: setup.workerTemplateId, networkIds: [lab.id] })
        assert.strictEqual((yield* failure(exec(setup.accountId, "system_sdwan_delete_network", { network_id: "lab" }))).code, "network_has_peers")
        yield* execConfirmed(setup.accountId, "system_sdwan_detach_peer", { network_id: "lab", node_instance_id: guest.instanceId })
        assert.deepStrictEqual(yield* exec(setup.accountId, "system_sdwan_delete_network", { network_id: "lab" }), { network_id: lab.id, deleted: true })
        yield* exec(setup.accountId, "system_sdwan_create_network", { name: "lab", handle: "lab", pod_subnet_prefix: "10.50.0.0/16" })

        const types = (yield* events(setup.accountId)).map((e) => e.type)
        for (const type of ["system.template_deleted", "system.node_deleted", "sdwan.peer_detached", "sdwan.network_deleted"]) assert.include(types, type)
      })
    )
  )

  it.effect("detaching a peer asks for confirmation, removes it from every other peer's config, frees its address, and is refused while it holds a VIP or its cluster runs on the network", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { servers } = yield* activeCluster(setup, { servers: 1 })
        const holder = servers[0]!
        const bystander = yield* provisionAgent(setup.accountId, { hostname: "edge-1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const leaving = yield* provisionAgent(setup.accountId, { hostname: "edge-2", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        assert.include(yield* effectiveWireguard(bystander), leaving.keys.publicKey)

        const asked = yield* failure(exec(setup.accountId, "system_sdwan_detach_peer", { network_id: "prod", node_instance_id: "edge-2" }))
        assert.strictEqual(asked.code, "confirmation_required")
        assert.match(asked.details.summary, /detach instance .* from network "prod-net"/)

        const held = yield* failure(exec(setup.accountId, "system_sdwan_detach_peer", { network_id: "prod", node_instance_id: holder.instanceId }))
        assert.strictEqual(held.code, "instance_holds_vip")

        const detached = yield* execConfirmed(setup.accountId, "system_sdwan_detach_peer", { network_id: "prod", node_instance_id: "edge-2" })
        assert.strictEqual(detached.detached, true)
        yield* (yield* NetworkSyncer).flush
        assert.notInclude(yield* effectiveWireguard(bystander), leaving.keys.publicKey)
        const peers = (yield* exec(setup.accountId, "system_sdwan_list_peers", { network_id: "prod" })).peers.map((p: any) => p.hostname)
        assert.deepStrictEqual(peers, ["k3s-prod-server-1", "edge-1"])
        // Not attached any more: a second detach says so.
        assert.strictEqual((yield* failure(exec(setup.accountId, "system_sdwan_detach_peer", { network_id: "prod", node_instance_id: "edge-2" }))).code, "peer_not_found")
        // Attached again, it gets an address again (its lease was released, none leaked).
        const again = yield* exec(setup.accountId, "system_sdwan_attach_peer", { network_id: "prod", node_instance_id: "edge-2" })
        assert.isString(again.overlay_address)

        // A second server, not the holder: still a member of the cluster on this network.
        const second = yield* provisionAgent(setup.accountId, { hostname: "k3s-prod-server-2", templateId: setup.serverTemplateId, networkIds: [setup.networkId] })
        const cluster = (yield* exec(setup.accountId, "kubernetes_list_clusters")).clusters[0]
        assert.isTrue((yield* join(second, "k3s-server", cluster.id)).accepted)
        const member = yield* failure(execConfirmed(setup.accountId, "system_sdwan_detach_peer", { network_id: "prod", node_instance_id: "k3s-prod-server-2" }))
        assert.strictEqual(member.code, "peer_in_use_by_cluster")
        assert.match(member.message, /terminate the instance or decommission the cluster/)
      })
    )
  )
})
