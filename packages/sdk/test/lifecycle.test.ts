import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { expect } from "vitest"
import { AgentPort, planRollingUpgrade } from "../src/index"
import {
  accountWithNetwork,
  activeCluster,
  desiredConfig,
  effectiveWireguard,
  events,
  exec,
  execConfirmed,
  failure,
  join,
  newAccount,
  provisionAgent,
  withFleet
} from "./support/fleet-harness"

describe("R18 decommission", () => {
  it.effect("asks for confirmation first, with a summary of what would change", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId } = yield* activeCluster(setup)
        const confirm = yield* failure(exec(setup.accountId, "kubernetes_decommission_cluster", { cluster_id: clusterId }))
        assert.strictEqual(confirm._tag, "ConfirmationRequiredError")
        assert.strictEqual(confirm.code, "confirmation_required")
        expect(confirm.details.summary).toContain(clusterId)
        expect(confirm.details.confirmation_token).toMatch(/^fpc_/)
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.strictEqual(cluster.status, "active")
        const wrongInput = yield* failure(
          exec(setup.accountId, "kubernetes_rotate_token", { cluster_id: clusterId, confirmation_token: confirm.details.confirmation_token })
        )
        assert.strictEqual(wrongInput.code, "invalid_confirmation")
      })
    )
  )

  it.effect("removes the KubernetesNode rows, releases the VIP, revokes the token and tells agents to leave; instances keep running", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId, servers } = yield* activeCluster(setup, { servers: 2 })
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        yield* join(worker, "k3s-agent", clusterId)
        const vipAddress = (yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })).virtual_ip.address
        const result = yield* execConfirmed(setup.accountId, "kubernetes_decommission_cluster", { cluster_id: clusterId })
        assert.strictEqual(result.kubernetes_nodes_removed, 3)
        assert.strictEqual(result.instances_terminated, 0)
        const { nodes } = yield* exec(setup.accountId, "kubernetes_list_nodes", { cluster_id: clusterId })
        assert.strictEqual(nodes.length, 0)
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.strictEqual(cluster.status, "decommissioned")
        assert.strictEqual(cluster.virtual_ip, null)
        for (const member of [worker, ...servers]) {
          const leave = yield* desiredConfig(member, "leave")
          assert.strictEqual(leave?.payload.cluster_id, clusterId)
          expect(yield* effectiveWireguard(member)).not.toContain(`${vipAddress}/128`)
          assert.deepStrictEqual((yield* desiredConfig(member, "vip_routes"))?.payload.routes, [])
        }
        // Instances still authenticate: they were not terminated.
        const port = yield* AgentPort
        const identity = yield* port.authenticate(worker.instanceId, worker.credential)
        assert.strictEqual(identity.instanceId, worker.instanceId)
        // The revoked token no longer gets a node into this cluster.
        const again = yield* join(worker, "k3s-agent", clusterId)
        assert.isTrue(!again.accepted && again.code === "cluster_not_active")
        // Listing hides it unless asked (runbook troubleshooting: include_decommissioned).
        assert.strictEqual((yield* exec(setup.accountId, "kubernetes_list_clusters")).clusters.length, 0)
        assert.strictEqual((yield* exec(setup.accountId, "kubernetes_list_clusters", { include_decommissioned: true })).clusters.length, 1)
      })
    )
  )

  it.effect("a decommissioned cluster's bootstrap server can bootstrap a new cluster", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId, servers } = yield* activeCluster(setup)
        yield* execConfirmed(setup.accountId, "kubernetes_decommission_cluster", { cluster_id: clusterId })
        const outcome = yield* join(servers[0]!, "k3s-server", null)
        assert.isTrue(outcome.accepted && outcome.created_cluster && outcome.cluster_id !== clusterId)
      })
    )
  )
})

describe("R19 rolling upgrade planning", () => {
  const servers = (n: number) => Array.from({ length: n }, (_, i) => ({ instance_id: `s${i}`, role: "control-plane" as const }))
  const workers = (n: number) => Array.from({ length: n }, (_, i) => ({ instance_id: `w${i}`, role: "worker" as const }))

  it("batches ceil(batch_pct% of n) instances", () => {
    const plan = planRollingUpgrade(workers(10), 3, 25, 2)
    assert.strictEqual(plan.batch_size, 3)
    assert.deepStrictEqual(plan.batches.map((b) => b.length), [3, 3, 3, 1])
    assert.strictEqual(plan.max_consecutive_failures, 2)
  })

  it("never takes more than max(1, floor((servers-1)/2)) servers down at once, whatever batch_pct says", () => {
    const five = planRollingUpgrade(servers(5), 5, 100, 1)
    assert.strictEqual(five.server_cap, 2)
    assert.deepStrictEqual(five.batches.map((b) => b.length), [2, 2, 1])
    const three = planRollingUpgrade(servers(3), 3, 50, 1)
    assert.strictEqual(three.server_cap, 1)
    assert.deepStrictEqual(three.batches.map((b) => b.length), [1, 1, 1])
    const mixed = planRollingUpgrade([...servers(3), ...workers(3)], 3, 100, 1)
    for (const batch of mixed.batches) assert.isAtMost(batch.filter((id) => id.startsWith("s")).length, 1)
    assert.strictEqual(mixed.batches.flat().length, 6)
    expect(mixed.warnings.join(" ")).toContain("at most 1 control-plane")
  })

  it("with two servers, says before starting that any restart costs quorum", () => {
    const plan = planRollingUpgrade(servers(2), 2, 50, 1)
    expect(plan.warnings.join(" ")).toContain("two servers")
  })

  it.effect("execute_skill starts a run that skill_run_status returns", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        yield* activeCluster(setup, { servers: 3 })
        const run = yield* exec(setup.accountId, "execute_skill", {
          skill: "system-rolling-module-upgrade",
          inputs: { template_id: setup.serverTemplateId, module_id: "mod-k3s-server", target_version_id: "v-k3s-1.31.0", batch_pct: 50, max_consecutive_failures: 1 }
        })
        expect(run.run_id).toMatch(/^run_/)
        assert.deepStrictEqual(run.plan.batches.map((b: Array<string>) => b.length), [1, 1, 1])
        const status = yield* exec(setup.accountId, "skill_run_status", { run_id: run.run_id })
        assert.strictEqual(status.status, "running")
        assert.deepStrictEqual(status.state.plan, run.plan)
        const bad = yield* failure(exec(setup.accountId, "execute_skill", { skill: "system-rolling-module-upgrade", inputs: { batch_pct: 500 } }))
        assert.strictEqual(bad.code, "invalid_input")
      })
    )
  )
})

describe("R20 isolation and secrets", () => {
  it.effect("no action reads or changes another account's entities, and the error is the same as for a missing id", () =>
    withFleet()(
      Effect.gen(function* () {
        const a = yield* accountWithNetwork({ name: "a" })
        const { clusterId, vipId } = yield* activeCluster(a, { servers: 2 })
        const b = yield* newAccount("b")
        const missing = "clu_00000000000000000000000000"
        const probes: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
          ["kubernetes_get_cluster", { id: clusterId }, { id: missing }],
          ["kubernetes_list_nodes", { cluster_id: clusterId }, { cluster_id: missing }],
          ["kubernetes_get_kubeconfig", { cluster_id: clusterId }, { cluster_id: missing }],
          ["kubernetes_decommission_cluster", { cluster_id: clusterId }, { cluster_id: missing }],
          ["kubernetes_rotate_token", { cluster_id: clusterId }, { cluster_id: missing }],
          ["system_sdwan_failover_virtual_ip", { virtual_ip_id: vipId, dry_run: true }, { virtual_ip_id: "vip_0", dry_run: true }],
          ["system_sdwan_attach_peer", { network_id: a.networkId, node_instance_id: "ins_x" }, { network_id: "net_0", node_instance_id: "ins_x" }],
          ["system_create_node", { hostname: "x", node_template_id: a.serverTemplateId }, { hostname: "x", node_template_id: "tpl_0" }]
        ]
        for (const [name, theirs, absent] of probes) {
          const foreign = yield* failure(exec(b.id, name, theirs))
          const nothing = yield* failure(exec(b.id, name, absent))
          assert.strictEqual(foreign.code, nothing.code, name)
          assert.strictEqual(foreign._tag, "NotFoundError", name)
        }
        assert.strictEqual((yield* exec(b.id, "kubernetes_list_clusters", { include_decommissioned: true })).clusters.length, 0)
        assert.strictEqual((yield* exec(b.id, "system_sdwan_list_networks", {})).networks.length, 0)
        assert.strictEqual((yield* exec(a.accountId, "system_sdwan_list_networks", {})).networks.length, 1)
        assert.strictEqual((yield* exec(b.id, "system_list_events", {})).events.length, 1) // its own account_created
        const still = yield* exec(a.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.strictEqual(still.status, "active")
        assert.strictEqual(still.virtual_ip.epoch, 1)
      })
    )
  )

  it.effect("secrets never appear in events or action results other than where they are handed out", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId, servers } = yield* activeCluster(setup, { servers: 2 })
        yield* execConfirmed(setup.accountId, "kubernetes_rotate_token", { cluster_id: clusterId })
        const token = (yield* desiredConfig(servers[0]!, "token"))!.payload.token as string
        const k3s = (yield* desiredConfig(servers[0]!, "k3s"))!.payload
        const caKey = k3s.files.find((f: { path: string }) => f.path.endsWith("server-ca.key")).content as string
        const secrets = [token, token.split("::server:")[1]!, caKey.split("\n")[1]!, ...servers.map((s) => s.credential)]
        const everything = JSON.stringify([
          yield* events(setup.accountId),
          yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId }),
          yield* exec(setup.accountId, "kubernetes_list_clusters", {}),
          yield* exec(setup.accountId, "kubernetes_list_nodes", { cluster_id: clusterId })
        ])
        for (const secret of secrets) expect(everything).not.toContain(secret)
      })
    )
  )
})
