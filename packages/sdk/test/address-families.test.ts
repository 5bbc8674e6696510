/**
 * R21: one IP family per cluster, an address of each family for every peer and VIP, IPv4
 * overlay ranges that collide with nothing, and databases from before all this brought up to
 * date with nothing lost.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { expect } from "vitest"
import { AgentPort, createFleet, Store } from "../src/index"
import { migrations } from "../src/store/sqlite/migrations"
import { accountWithNetwork, activeCluster, desiredConfig, events, exec, failure, join as joinCluster, newAccount, provisionAgent, withFleet } from "./support/fleet-harness"
import { k3sStartupErrors } from "./support/k3s-startup-checks"

const network = (accountId: any, input: Record<string, unknown>) => exec(accountId, "system_sdwan_create_network", { name: `n-${String(input.handle)}`, ...input })

describe("R21 IPv4 overlay ranges", () => {
  it.effect("each network gets its own free /20 of 100.64.0.0/10, and each peer a /32 beside its /128 with the same host number", () =>
    withFleet()(
      Effect.gen(function* () {
        const { id } = yield* newAccount("acme")
        const a = yield* network(id, { handle: "a", pod_subnet_prefix: "10.42.0.0/16" })
        const b = yield* network(id, { handle: "b" })
        assert.strictEqual(a.overlay_ipv4_prefix, "100.64.0.0/20")
        assert.strictEqual(b.overlay_ipv4_prefix, "100.64.16.0/20")
        // Another account may use the same range: ranges are per account, like pod prefixes (R2).
        const other = yield* newAccount("other")
        assert.strictEqual((yield* network(other.id, { handle: "a" })).overlay_ipv4_prefix, "100.64.0.0/20")
        const template = yield* exec(id, "system_create_template", { name: "t" })
        const node = yield* exec(id, "system_create_node", { hostname: "n1", node_template_id: template.id })
        const instance = yield* exec(id, "system_provision_instance", { node_id: node.id })
        const peer = yield* exec(id, "system_sdwan_attach_peer", { network_id: b.id, node_instance_id: instance.id })
        assert.strictEqual(peer.overlay_ipv4_address, "100.64.16.1")
        assert.isTrue(peer.overlay_address.endsWith("::1"))
        const created = (yield* events(id)).filter((e) => e.type === "sdwan.network_created")
        expect(created.map((e) => e.data.overlay_ipv4_prefix)).toEqual(["100.64.0.0/20", "100.64.16.0/20"])
      })
    )
  )

  it.effect("allocation walks past taken ranges of any size, pod prefixes in the pool and gaps, to the first free /20", () =>
    withFleet()(
      Effect.gen(function* () {
        const { id } = yield* newAccount("acme")
        // Taken: a /19 at the start of the pool (two /20s), a pod prefix over the fourth /20, and one /20 further on.
        yield* network(id, { handle: "big", pod_subnet_prefix: "10.50.0.0/16", overlay_ipv4_prefix: "100.64.0.0/19" })
        yield* network(id, { handle: "pods", pod_subnet_prefix: "100.64.48.0/20", overlay_ipv4_prefix: "172.21.0.0/20" })
        yield* network(id, { handle: "far", pod_subnet_prefix: "10.51.0.0/16", overlay_ipv4_prefix: "100.64.64.0/20" })
        const allocated = []
        for (const handle of ["n1", "n2", "n3"]) allocated.push((yield* network(id, { handle, pod_subnet_prefix: null })).overlay_ipv4_prefix)
        // 100.64.32.0/20 is the first gap; then past the pod prefix (48) and the taken /20 (64) to 80 and 96.
        assert.deepStrictEqual(allocated, ["100.64.32.0/20", "100.64.80.0/20", "100.64.96.0/20"])
      })
    )
  )

  it.effect("an explicit range is validated: canonical, private or shared space, /8-/28, clear of the account's ranges and pod prefixes", () =>
    withFleet()(
      Effect.gen(function* () {
        const { id } = yield* newAccount("acme")
        yield* network(id, { handle: "a", pod_subnet_prefix: "10.42.0.0/16", overlay_ipv4_prefix: "172.20.0.0/16" })
        for (const [bad, code] of [
          ["172.20.0.1/16", "invalid_overlay_ipv4_prefix"],
          ["8.8.8.0/24", "invalid_overlay_ipv4_prefix"],
          ["10.0.0.0/30", "invalid_overlay_ipv4_prefix"],
          ["fd00::/64", "invalid_overlay_ipv4_prefix"],
          ["172.20.128.0/20", "overlay_ipv4_prefix_overlap"],
          ["10.42.16.0/20", "overlay_ipv4_prefix_overlap"]
        ] as const) {
          const error = yield* failure(network(id, { handle: `x${bad.length}`, overlay_ipv4_prefix: bad }))
          assert.strictEqual(error.code, code, bad)
        }
        // The other way round: a pod prefix may not cover a network's overlay range.
        const covering = yield* failure(network(id, { handle: "c", pod_subnet_prefix: "172.20.0.0/15" }))
        assert.strictEqual(covering.code, "pod_prefix_overlaps_overlay")
        const ipv6Inside = yield* failure(network(id, { handle: "d", pod_subnet_prefix: "fd42:1::/48", overlay_prefix: "fd42:1:0:5::/64" }))
        assert.strictEqual(ipv6Inside.code, "overlay_prefix_overlaps_pod_prefix")
      })
    )
  )
})

describe("R21 one IP family per cluster", () => {
  it.effect("a network without a pod prefix makes an IPv4 cluster on k3s's defaults; every address k3s gets is IPv4", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork({ podPrefix: null })
        const { clusterId, servers } = yield* activeCluster(setup, { servers: 2 })
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        expect(cluster).toMatchObject({ ip_family: "ipv4", cluster_cidr: "10.42.0.0/16", service_cidr: "10.43.0.0/16", api_endpoint: `https://${cluster.virtual_ip.address_ipv4}:6443` })
        const k3s = yield* desiredConfig(servers[1]!, "k3s")
        expect(k3s!.payload.content).toContain(`server: https://${cluster.virtual_ip.address_ipv4}:6443`)
        expect(k3s!.payload.content).toMatch(/node-ip: 100\.64\.\d+\.\d+/)
      })
    )
  )

  it.effect("an IPv6 pod prefix makes an IPv6 cluster with an IPv6 service CIDR (fd00:43::/112, or the next free /112)", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork({ podPrefix: "fd42:1::/56", handle: "v6" })
        const { clusterId } = yield* activeCluster(setup)
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        expect(cluster).toMatchObject({ ip_family: "ipv6", cluster_cidr: "fd42:1::/56", service_cidr: "fd00:43::/112" })
        // A pod prefix on k3s's IPv6 service default pushes the service CIDR to the next /112.
        const crowded = yield* accountWithNetwork({ name: "other", podPrefix: "fd00:43::/56", handle: "v6b" })
        const second = yield* exec(crowded.accountId, "kubernetes_get_cluster", { id: (yield* activeCluster(crowded)).clusterId })
        assert.strictEqual(second.service_cidr, "fd00:44::/112")
        expect(second.warnings.join(" ")).toContain("fd00:44::/112")
      })
    )
  )

  it.effect("a join whose config would mix families is refused with address_family_mismatch, saying what to change, and nothing is rendered", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork({ podPrefix: "fd42:1::/56", handle: "v6" })
        const { clusterId } = yield* activeCluster(setup)
        // A cluster record inconsistent with its family (as a hand-edited or half-migrated database could be).
        const store = yield* Store
        yield* store.transaction((tx) => tx.updateCluster(setup.accountId, clusterId as never, { service_cidr: "10.43.0.0/16" }))
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const outcome = yield* joinCluster(worker, "k3s-agent", clusterId)
        assert.isFalse(outcome.accepted)
        if (!outcome.accepted) {
          assert.strictEqual(outcome.code, "address_family_mismatch")
          expect(outcome.message).toContain("service-cidr 10.43.0.0/16 is IPv4 but the cluster is IPv6")
        }
        assert.isUndefined(yield* desiredConfig(worker, "k3s"))
        const { nodes } = yield* exec(setup.accountId, "kubernetes_list_nodes", { cluster_id: clusterId })
        assert.strictEqual(nodes.length, 1)
      })
    )
  )
})

describe("R21 migration: a database from before address families", () => {
  it("gets IPv4 ranges and addresses, cluster families and consistent configs; nothing is lost", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "fleetplane-migrate-")), "fleet.db")
    // A version-2 database, as the previous release left it (ids as the store makes them): one account, a network, a bootstrapped
    // cluster with an IPv6 endpoint and an IPv4 cluster-cidr (the configs k3s refused).
    const db = new Database(file)
    db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    for (const migration of migrations.filter((m) => m.version <= 2)) {
      db.exec(migration.sql)
      db.prepare("INSERT INTO schema_migrations VALUES (?, ?, ?)").run(migration.version, migration.name, "2026-11-01T00:00:00.000Z")
    }
    const at = "2026-11-01T00:00:00.000Z"
    const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    db.exec(`
      INSERT INTO accounts VALUES ('acc_000000000000000000000001', 'acme', 'fd11:2233:4455', '${at}');
      INSERT INTO templates VALUES ('tpl_000000000000000000000001', 'acc_000000000000000000000001', 'servers', '${at}');
      INSERT INTO module_assignments VALUES ('tpl_000000000000000000000001', 'k3s-server', NULL, '{}');
      INSERT INTO nodes VALUES ('node_000000000000000000000001', 'acc_000000000000000000000001', 'k3s-prod-server-1', 'tpl_000000000000000000000001', '${at}');
      INSERT INTO instances VALUES ('ins_000000000000000000000001', 'acc_000000000000000000000001', 'node_000000000000000000000001', 'running', 'x', '${at}');
      INSERT INTO networks (id, account_id, name, handle, overlay_prefix, ula_global_id, subnet_index, pod_subnet_prefix, pod_family, pod_start_key, pod_end_key, listen_port, created_at)
        VALUES ('net_000000000000000000000001', 'acc_000000000000000000000001', 'prod', 'prod', 'fd11:2233:4455:1::/64', 'fd11:2233:4455', 1, '10.42.0.0/16', 4, '${"0".repeat(24)}0a2a0000', '${"0".repeat(24)}0a2affff', 51820, '${at}');
      INSERT INTO overlay_leases VALUES ('net_000000000000000000000001', 1, 'peer_000000000000000000000001'), ('net_000000000000000000000001', 2, 'vip_000000000000000000000001');
      INSERT INTO peers (id, account_id, network_id, instance_id, public_key, overlay_address, endpoint, pod_subnet, created_at)
        VALUES ('peer_000000000000000000000001', 'acc_000000000000000000000001', 'net_000000000000000000000001', 'ins_000000000000000000000001', NULL, 'fd11:2233:4455:1::1', '127.0.0.1:51820', NULL, '${at}');
      INSERT INTO clusters (id, account_id, name, status, api_endpoint, version, network_id, cni_plugin, cluster_cidr, service_cidr, warnings, bootstrap_instance_id,
          ca_cert_pem, ca_key_pem, token_secret, token_version, admin_cert_pem, admin_key_pem, created_at, activated_at, activation_seq)
        VALUES ('clu_000000000000000000000001', 'acc_000000000000000000000001', 'k3s-prod-server-1', 'active', 'https://[fd11:2233:4455:1::2]:6443', NULL, 'net_000000000000000000000001', 'flannel', '10.42.0.0/16', '10.43.0.0/16', '[]', 'ins_000000000000000000000001',
          '${ca}', 'k', '${"a".repeat(32)}', 1, 'c', 'k', '${at}', '${at}', 1);
      INSERT INTO kubernetes_nodes VALUES ('knode_000000000000000000000001', 'acc_000000000000000000000001', 'clu_000000000000000000000001', 'ins_000000000000000000000001', 'control-plane', 'ready', '${at}');
      INSERT INTO vips VALUES ('vip_000000000000000000000001', 'acc_000000000000000000000001', 'net_000000000000000000000001', 'clu_000000000000000000000001', 'fd11:2233:4455:1::2', 'peer_000000000000000000000001', '[]', 3, 'require_approval', NULL);
      INSERT INTO events (account_id, type, at, data) VALUES ('acc_000000000000000000000001', 'kubernetes.cluster_created', '${at}', '{"cluster_id":"clu_000000000000000000000001"}');
    `)
    db.close()

    const fleet = await createFleet({ database: file })
    try {
      const ops = fleet.forAccount("acc_000000000000000000000001" as never)
      const { networks } = await ops.actions.system_sdwan_list_networks({})
      expect(networks[0]).toMatchObject({ id: "net_000000000000000000000001", overlay_prefix: "fd11:2233:4455:1::/64", overlay_ipv4_prefix: "100.64.0.0/20" })
      const cluster = await ops.actions.kubernetes_get_cluster({ id: "clu_000000000000000000000001" })
      expect(cluster).toMatchObject({ ip_family: "ipv4", api_endpoint: "https://100.64.0.2:6443", cluster_cidr: "10.42.0.0/16", service_cidr: "10.43.0.0/16", status: "active" })
      expect(cluster.virtual_ip).toMatchObject({ address: "fd11:2233:4455:1::2", address_ipv4: "100.64.0.2", epoch: 3 })
      const { events: log } = await ops.actions.system_list_events({ limit: 100 })
      expect(log.map((e) => e.type)).toEqual(expect.arrayContaining(["kubernetes.cluster_created", "sdwan.network_migrated", "kubernetes.cluster_migrated"]))
      // The member's k3s config is rendered again, now in one family: k3s would start on it.
      const pushes = await fleet.run(Effect.flatMap(Effect.service(AgentPort), (port) => port.pendingPushes({ accountId: "acc_000000000000000000000001" as never, instanceId: "ins_000000000000000000000001" as never, nodeId: "node_000000000000000000000001" as never, hostname: "k3s-prod-server-1" }, [])))
      const k3s = pushes.find((p) => p.kind === "k3s") as { payload: { content: string } } | undefined
      expect(k3s?.payload.content).toContain("node-ip: 100.64.0.1")
      expect(k3sStartupErrors({ role: "bootstrap-server", content: k3s!.payload.content, caCertPem: ca, apiEndpoint: cluster.api_endpoint, serverClusterCidr: "10.42.0.0/16" })).toEqual([])
    } finally {
      await fleet.close()
    }
    // Opening it again changes nothing more.
    const again = await createFleet({ database: file })
    try {
      const { events: log } = await again.forAccount("acc_000000000000000000000001" as never).actions.system_list_events({ limit: 100 })
      expect(log.filter((e) => e.type === "sdwan.network_migrated")).toHaveLength(1)
    } finally {
      await again.close()
    }
  })
})
