/**
 * The multi-cluster K3s runbook, phases 1-6, end to end through the action catalog and the
 * agent port with simulated agents; time is driven by TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { KubeConfig } from "@kubernetes/client-node"
import { expect } from "vitest"
import { AgentPort, VipSensor } from "../src/index"
import {
  desiredConfig,
  events,
  exec,
  execConfirmed,
  heartbeat,
  join,
  newAccount,
  pendingPushes,
  provisionAgent,
  reportReady,
  type SimAgent,
  withFleet
} from "./support/fleet-harness"

describe("runbook: multi-cluster K3s, phases 1-6", () => {
  it.effect("prod and staging, targeted workers, HA with an approved failover, kubeconfigs, staging decommissioned", () =>
    withFleet()(
      Effect.gen(function* () {
        const port = yield* AgentPort
        const sensor = yield* VipSensor
        const { id: account } = yield* newAccount("acme")
        const prodNet = yield* exec(account, "system_sdwan_create_network", { name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
        const stagingNet = yield* exec(account, "system_sdwan_create_network", { name: "staging", handle: "stg", pod_subnet_prefix: "10.43.0.0/16" })
        expect(stagingNet.warnings.join(" ")).toContain("10.43.0.0/16")

        // Phase 1 — bootstrap cluster A.
        const prodServers = yield* exec(account, "system_create_template", { name: "k3s-prod-server" })
        yield* exec(account, "system_assign_module_to_template", { template_id: prodServers.id, module_name: "k3s-server" })
        const prod1 = yield* provisionAgent(account, { hostname: "k3s-prod-server-1", templateId: prodServers.id, networkIds: [prodNet.id] })
        const prodJoin = yield* join(prod1, "k3s-server", null)
        assert.isTrue(prodJoin.accepted && prodJoin.created_cluster)
        yield* reportReady(prod1, "10.42.0.0/24")
        const prodId = prodJoin.accepted ? prodJoin.cluster_id : ""

        // Phase 2 — bootstrap cluster B with another template.
        const stagingServers = yield* exec(account, "system_create_template", { name: "k3s-staging-server" })
        yield* exec(account, "system_assign_module_to_template", { template_id: stagingServers.id, module_name: "k3s-server" })
        const staging1 = yield* provisionAgent(account, { hostname: "k3s-staging-server-1", templateId: stagingServers.id, networkIds: [stagingNet.id] })
        const stagingJoin = yield* join(staging1, "k3s-server", null)
        yield* TestClock.adjust(1_000)
        yield* reportReady(staging1)
        const stagingId = stagingJoin.accepted ? stagingJoin.cluster_id : ""
        const { clusters } = yield* exec(account, "kubernetes_list_clusters")
        expect(clusters.map((c: any) => [c.name, c.status])).toEqual([
          ["k3s-prod-server-1", "active"],
          ["k3s-staging-server-1", "active"]
        ])
        assert.notStrictEqual(clusters[0].api_endpoint, clusters[1].api_endpoint)
        // R21: the runbook's pod prefixes are IPv4, so its VIP endpoints are the VIPs' IPv4 addresses.
        expect(clusters[0].api_endpoint).toMatch(/^https:\/\/100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+:6443$/)
        assert.notStrictEqual(clusters[1].service_cidr, "10.43.0.0/16")

        // Phase 3 — workers targeted at a specific cluster.
        const prodWorkers = yield* exec(account, "system_create_template", { name: "prod-workers" })
        yield* exec(account, "system_assign_module_to_template", { template_id: prodWorkers.id, module_name: "k3s-agent", config: { target_cluster_id: prodId } })
        const w1 = yield* provisionAgent(account, { hostname: "prod-worker-1", templateId: prodWorkers.id, networkIds: [prodNet.id] })
        const targeted = yield* join(w1, "k3s-agent", prodId)
        assert.isTrue(targeted.accepted && targeted.cluster_id === prodId)
        yield* reportReady(w1, "10.42.1.0/24")
        // An empty target falls back to the most recently activated cluster: staging, as the runbook warns.
        const legacy = yield* exec(account, "system_create_template", { name: "legacy-workers" })
        yield* exec(account, "system_assign_module_to_template", { template_id: legacy.id, module_name: "k3s-agent" })
        const stray = yield* provisionAgent(account, { hostname: "legacy-worker", templateId: legacy.id, networkIds: [stagingNet.id] })
        const fallback = yield* join(stray, "k3s-agent", null)
        assert.isTrue(fallback.accepted && fallback.cluster_id === stagingId)
        // An agent asking for another cluster than its template pins (a stale flag) is refused (R24).
        const wrong = yield* provisionAgent(account, { hostname: "prod-worker-2", templateId: prodWorkers.id, networkIds: [prodNet.id] })
        const refused = yield* join(wrong, "k3s-agent", "clu_stale0000000000000000000000")
        assert.isTrue(!refused.accepted && refused.code === "assignment_mismatch")

        // Phase 4 — HA: a second prod server joins and becomes a failover candidate.
        const prod2 = yield* provisionAgent(account, { hostname: "k3s-prod-server-2", templateId: prodServers.id, networkIds: [prodNet.id] })
        const second = yield* join(prod2, "k3s-server", prodId)
        assert.isTrue(second.accepted && second.role === "control-plane")
        yield* reportReady(prod2, "10.42.2.0/24")
        const { nodes } = yield* exec(account, "kubernetes_list_nodes", { cluster_id: prodId })
        expect(nodes.filter((n: any) => n.role === "control-plane").map((n: any) => n.status)).toEqual(["ready", "ready"])
        const alive: Array<SimAgent> = [prod1, prod2, w1, staging1]
        const tick = (ms: number, who: ReadonlyArray<SimAgent>) =>
          Effect.gen(function* () {
            for (let t = 0; t < ms; t += 5_000) {
              yield* TestClock.adjust(5_000)
              for (const agent of who) yield* heartbeat(agent)
              yield* sensor.check
            }
          })
        yield* tick(10_000, alive)
        const cluster = yield* exec(account, "kubernetes_get_cluster", { id: prodId })
        const dryRun = yield* exec(account, "system_sdwan_failover_virtual_ip", { virtual_ip_id: cluster.virtual_ip.id, dry_run: true })
        expect(dryRun).toMatchObject({ resolved: false, dry_run: true, current_holder: cluster.virtual_ip.holder_peer_id })
        assert.strictEqual(dryRun.candidates.length, 1)
        assert.isAbove(dryRun.candidates[0].score, 0.5)

        // The prod holder goes silent: one event, an approval (require_approval is the default).
        yield* tick(20_000, [prod2, w1, staging1])
        const silent = (yield* events(account)).filter((e) => e.type === "sdwan.vip_holder_silent")
        assert.strictEqual(silent.length, 1)
        const listed = (yield* exec(account, "kubernetes_list_nodes", { cluster_id: prodId })).nodes as Array<{ instance_id: string; agent: string }>
        assert.strictEqual(listed.find((n) => n.instance_id === prod1.instanceId)?.agent, "silent")
        assert.strictEqual(listed.find((n) => n.instance_id === prod2.instanceId)?.agent, "heartbeating")
        const { approvals } = yield* exec(account, "system_list_approvals", { status: "pending" })
        assert.strictEqual(approvals.length, 1)
        const workerRoutesBefore = (yield* desiredConfig(w1, "vip_routes"))!.version
        const approved = yield* exec(account, "system_approve", { approval_id: approvals[0].id })
        assert.strictEqual(approved.status, "approved")
        const after = yield* exec(account, "kubernetes_get_cluster", { id: prodId })
        assert.strictEqual(after.virtual_ip.epoch, 2)
        assert.strictEqual(after.api_endpoint, cluster.api_endpoint) // kubectl keeps using the same VIP
        // Every peer of the prod network has new VIP routes for its WireGuard config; they apply and ack them.
        for (const agent of [prod1, prod2, w1, wrong]) {
          const routes = (yield* desiredConfig(agent, "vip_routes"))!
          if (agent === w1) assert.isAbove(routes.version, workerRoutesBefore)
          yield* port.configAck(agent.identity, { kind: "vip_routes", key: routes.key, version: routes.version, status: "applied" })
          const resend = (yield* port.pendingPushes(agent.identity, [{ kind: "vip_routes", key: routes.key, version: routes.version }])).filter(
            (p) => p.kind === "vip_routes"
          )
          assert.strictEqual(resend.length, 0)
        }

        // Phase 5 — a kubeconfig per cluster; they merge without collision.
        const prodKube = yield* exec(account, "kubernetes_get_kubeconfig", { cluster_id: prodId })
        const stagingKube = yield* exec(account, "kubernetes_get_kubeconfig", { cluster_id: stagingId })
        assert.strictEqual(prodKube.api_endpoint, cluster.api_endpoint)
        const merged = new KubeConfig()
        merged.loadFromString(prodKube.kubeconfig)
        const other = new KubeConfig()
        other.loadFromString(stagingKube.kubeconfig)
        merged.mergeConfig(other)
        expect(merged.getContexts().map((c) => c.name).sort()).toEqual(["k3s-prod-server-1", "k3s-staging-server-1"])

        // Phase 6 — decommission staging; its instances keep running.
        const decommissioned = yield* execConfirmed(account, "kubernetes_decommission_cluster", { cluster_id: stagingId })
        assert.strictEqual(decommissioned.status, "decommissioned")
        expect((yield* exec(account, "kubernetes_list_clusters")).clusters.map((c: any) => c.id)).toEqual([prodId])
        for (const agent of [staging1, stray]) {
          const identity = yield* port.authenticate(agent.instanceId, agent.credential)
          assert.strictEqual(identity.instanceId, agent.instanceId)
          expect((yield* pendingPushes(agent)).some((p) => p.kind === "leave")).toBe(true)
        }
        const prodNow = yield* exec(account, "kubernetes_get_cluster", { id: prodId })
        assert.strictEqual(prodNow.status, "active")
        assert.strictEqual(prodNow.node_count, 3)
      })
    )
  )
})
