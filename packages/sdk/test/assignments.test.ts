/**
 * R24 and what an operator found walking the runbook: assignments drive agents, names work
 * wherever ids do, nodes show NotReady when their agent is silent, upgrades that mean something,
 * strict inputs. Each test is a finding that failed before.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { expect } from "vitest"
import { AgentPort } from "../src/index"
import {
  accountWithNetwork,
  activeCluster,
  desiredConfig,
  events,
  exec,
  execConfirmed,
  failure,
  heartbeat,
  join,
  newAccount,
  provisionAgent,
  reportReady,
  withFleet
} from "./support/fleet-harness"

/** prod (bootstrapped first) and staging (activated last, so the "most recent active cluster"), each on its own network. */
const prodAndStaging = Effect.gen(function* () {
  const { id: accountId } = yield* newAccount("acme")
  const prodNet = yield* exec(accountId, "system_sdwan_create_network", { name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
  const stagingNet = yield* exec(accountId, "system_sdwan_create_network", { name: "staging", handle: "stg", pod_subnet_prefix: "10.50.0.0/16" })
  const clusters: Record<string, { clusterId: string }> = {}
  for (const [name, network] of [["prod", prodNet], ["staging", stagingNet]] as const) {
    const template = yield* exec(accountId, "system_create_template", { name: `k3s-${name}-server` })
    yield* exec(accountId, "system_assign_module_to_template", { template_id: template.id, module_name: "k3s-server", config: { cluster_name: `k3s-${name}` } })
    const server = yield* provisionAgent(accountId, { hostname: `k3s-${name}-server-1`, templateId: template.id, networkIds: [network.id] })
    const created = yield* join(server, "k3s-server", null)
    assert.isTrue(created.accepted)
    yield* TestClock.adjust(1_000)
    yield* reportReady(server)
    clusters[name] = { clusterId: created.accepted ? created.cluster_id : "" }
  }
  return { accountId, prodNet, stagingNet, prod: clusters.prod!, staging: clusters.staging! }
})

describe("R24 assignments drive agents", () => {
  it.effect("a worker whose template pins prod joins prod when it asks with no target (it used to get staging, the most recent)", () =>
    withFleet()(
      Effect.gen(function* () {
        const { accountId, prodNet, prod } = yield* prodAndStaging
        const workers = yield* exec(accountId, "system_create_template", { name: "prod-workers" })
        // By name: the id is what gets stored.
        const assigned = yield* exec(accountId, "system_assign_module_to_template", { template_id: "prod-workers", module_name: "k3s-agent", config: { target_cluster_id: "k3s-prod" } })
        assert.strictEqual(assigned.config.target_cluster_id, prod.clusterId)
        const worker = yield* provisionAgent(accountId, { hostname: "prod-worker-1", templateId: workers.id, networkIds: [prodNet.id] })
        const outcome = yield* join(worker, "k3s-agent", null)
        assert.isTrue(outcome.accepted && outcome.cluster_id === prod.clusterId)
        const accepted = (yield* events(accountId)).filter((e) => e.type === "kubernetes.join_accepted").at(-1)
        assert.strictEqual(accepted?.data.selected_by, "assignment")
      })
    )
  )

  it.effect("a join that names another cluster, or another module, than the template assigns is refused with assignment_mismatch", () =>
    withFleet()(
      Effect.gen(function* () {
        const { accountId, prodNet, prod, staging } = yield* prodAndStaging
        const workers = yield* exec(accountId, "system_create_template", { name: "prod-workers" })
        yield* exec(accountId, "system_assign_module_to_template", { template_id: workers.id, module_name: "k3s-agent", config: { target_cluster_id: prod.clusterId } })
        const worker = yield* provisionAgent(accountId, { hostname: "prod-worker-1", templateId: workers.id, networkIds: [prodNet.id] })
        const elsewhere = yield* join(worker, "k3s-agent", staging.clusterId)
        assert.isTrue(!elsewhere.accepted && elsewhere.code === "assignment_mismatch")
        const asServer = yield* join(worker, "k3s-server", null)
        assert.isTrue(!asServer.accepted && asServer.code === "assignment_mismatch")
        // Nothing about the staging token leaked: the agent got no config at all.
        assert.isUndefined(yield* desiredConfig(worker, "token"))
      })
    )
  )

  it.effect("the agent is sent its assignments in hello and again, as an assignments push, when they change", () =>
    withFleet()(
      Effect.gen(function* () {
        const { accountId, prodNet, prod } = yield* prodAndStaging
        const workers = yield* exec(accountId, "system_create_template", { name: "workers" })
        const worker = yield* provisionAgent(accountId, { hostname: "w1", templateId: workers.id, networkIds: [prodNet.id] })
        const port = yield* AgentPort
        assert.deepStrictEqual((yield* port.hello(worker.identity, { wireguard_keys: [], applied: [], held_vips: [] })).assignments, [])
        yield* exec(accountId, "system_assign_module_to_template", { template_id: workers.id, module_name: "k3s-agent", config: { target_cluster_id: prod.clusterId } })
        const pushed = yield* desiredConfig(worker, "assignments")
        expect(pushed?.payload.assignments).toEqual([{ module_name: "k3s-agent", module_version_id: null, target_cluster_id: prod.clusterId, config: { target_cluster_id: prod.clusterId } }])
        const hello = yield* port.hello(worker.identity, { wireguard_keys: [], applied: [], held_vips: [] })
        assert.strictEqual(hello.assignments[0]?.target_cluster_id, prod.clusterId)
      })
    )
  )

  it.effect("network_mismatch says what is really wrong: which cluster, which network, and the template to fix", () =>
    withFleet()(
      Effect.gen(function* () {
        const { accountId, stagingNet } = yield* prodAndStaging
        const workers = yield* exec(accountId, "system_create_template", { name: "unpinned-workers" })
        yield* exec(accountId, "system_assign_module_to_template", { template_id: workers.id, module_name: "k3s-agent" })
        const prodNet = (yield* exec(accountId, "system_sdwan_list_networks")).networks.find((n: any) => n.handle === "prod")
        // On prod's network, but pinned to nothing: it is given staging, the most recently activated.
        const worker = yield* provisionAgent(accountId, { hostname: "w1", templateId: workers.id, networkIds: [prodNet.id] })
        const outcome = yield* join(worker, "k3s-agent", null)
        assert.isFalse(outcome.accepted)
        if (!outcome.accepted) {
          assert.strictEqual(outcome.code, "network_mismatch")
          expect(outcome.message).toContain(`"k3s-staging"`)
          expect(outcome.message).toContain(stagingNet.id)
          expect(outcome.message).toContain(`set target_cluster_id on its template "unpinned-workers"`)
        }
      })
    )
  )

  it.effect("a bootstrap server's assignment names its cluster; a second live cluster of that name is refused", () =>
    withFleet()(
      Effect.gen(function* () {
        const { accountId, prodNet } = yield* prodAndStaging
        const { clusters } = yield* exec(accountId, "kubernetes_list_clusters")
        expect(clusters.map((c: any) => c.name)).toEqual(["k3s-prod", "k3s-staging"])
        const again = yield* exec(accountId, "system_create_template", { name: "another-prod" })
        yield* exec(accountId, "system_assign_module_to_template", { template_id: again.id, module_name: "k3s-server", config: { cluster_name: "k3s-prod" } })
        const server = yield* provisionAgent(accountId, { hostname: "dup-1", templateId: again.id, networkIds: [prodNet.id] })
        const outcome = yield* join(server, "k3s-server", null)
        assert.isTrue(!outcome.accepted && outcome.code === "cluster_name_taken")
      })
    )
  )
})

describe("names wherever ids are accepted, hostnames beside ids", () => {
  it.effect("clusters by name, instances by hostname, VIPs by cluster name; the dry run and the VIP name hosts", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId, servers } = yield* activeCluster(setup, { servers: 2 })
        for (const server of servers) yield* heartbeat(server)
        const byName = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: "k3s-prod-server-1" })
        assert.strictEqual(byName.id, clusterId)
        assert.strictEqual(byName.virtual_ip.holder_hostname, "k3s-prod-server-1")
        assert.strictEqual((yield* exec(setup.accountId, "kubernetes_list_nodes", { cluster_id: "k3s-prod-server-1" })).nodes.length, 2)
        const dryRun = yield* exec(setup.accountId, "system_sdwan_failover_virtual_ip", { virtual_ip_id: "k3s-prod-server-1", dry_run: true })
        assert.strictEqual(dryRun.current_holder_hostname, "k3s-prod-server-1")
        expect(dryRun.candidates.map((c: any) => c.hostname)).toEqual(["k3s-prod-server-2"])
        const instance = yield* exec(setup.accountId, "system_get_instance", { instance_id: "k3s-prod-server-2" })
        assert.strictEqual(instance.id, servers[1]!.instanceId)
        const missing = yield* failure(exec(setup.accountId, "kubernetes_get_cluster", { id: "k3s-nope" }))
        assert.strictEqual(missing.code, "cluster_not_found")
      })
    )
  )

  it.effect("the inventory can be built by names alone: template by name, node by hostname, network by handle", () =>
    withFleet()(
      Effect.gen(function* () {
        const { id: accountId } = yield* newAccount("acme")
        const network = yield* exec(accountId, "system_sdwan_create_network", { name: "prod", handle: "prod" })
        const template = yield* exec(accountId, "system_create_template", { name: "k3s-prod-server" })
        const node = yield* exec(accountId, "system_create_node", { hostname: "k3s-prod-server-1", node_template_id: "k3s-prod-server" })
        assert.strictEqual(node.node_template_id, template.id)
        const instance = yield* exec(accountId, "system_provision_instance", { node_id: "k3s-prod-server-1" })
        const peer = yield* exec(accountId, "system_sdwan_attach_peer", { network_id: "prod", node_instance_id: "k3s-prod-server-1" })
        assert.strictEqual(peer.network_id, network.id)
        assert.strictEqual(peer.instance_id, instance.id)
      })
    )
  )

  it.effect("kubeconfig contexts follow the cluster's name (k3s-prod), context_name overrides, and entries stay unique by id", () =>
    withFleet()(
      Effect.gen(function* () {
        const { accountId, prod } = yield* prodAndStaging
        const { kubeconfig } = yield* exec(accountId, "kubernetes_get_kubeconfig", { cluster_id: "k3s-prod" })
        expect(kubeconfig).toContain("current-context: k3s-prod\n")
        expect(kubeconfig).toContain(`name: k3s-prod-${prod.clusterId}\n`)
        const renamed = yield* exec(accountId, "kubernetes_get_kubeconfig", { cluster_id: prod.clusterId, context_name: "prod-eu" })
        expect(renamed.kubeconfig).toContain("current-context: prod-eu\n")
      })
    )
  )
})

describe("liveness everyone can see", () => {
  it.effect("a node whose agent went silent shows not_ready with its last heartbeat; its instance shows the agent disconnected once it leaves", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId, servers } = yield* activeCluster(setup, { servers: 1 })
        yield* heartbeat(servers[0]!)
        const before = (yield* exec(setup.accountId, "kubernetes_list_nodes", { cluster_id: clusterId })).nodes[0]
        expect(before).toMatchObject({ status: "ready", agent: "heartbeating" })
        yield* TestClock.adjust(20_000)
        const after = (yield* exec(setup.accountId, "kubernetes_list_nodes", { cluster_id: clusterId })).nodes[0]
        expect(after).toMatchObject({ status: "not_ready", agent: "silent", last_heartbeat_at: before.last_heartbeat_at })
        const port = yield* AgentPort
        assert.strictEqual((yield* exec(setup.accountId, "system_get_instance", { instance_id: servers[0]!.instanceId })).agent, "connected")
        yield* port.disconnected(servers[0]!.identity)
        assert.strictEqual((yield* exec(setup.accountId, "system_get_instance", { instance_id: servers[0]!.instanceId })).agent, "disconnected")
        // An instance nobody ever connected for: provisioned ("running"), but no agent.
        const node = yield* exec(setup.accountId, "system_create_node", { hostname: "empty", node_template_id: setup.workerTemplateId })
        const empty = yield* exec(setup.accountId, "system_provision_instance", { node_id: node.id })
        expect(yield* exec(setup.accountId, "system_get_instance", { instance_id: empty.id })).toMatchObject({ status: "running", agent: "disconnected", last_seen_at: null })
      })
    )
  )

  it.effect("agent.connected and agent.disconnected are events, damped so a flapping agent cannot flood the log", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const agent = yield* provisionAgent(setup.accountId, { hostname: "flappy", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const port = yield* AgentPort
        for (let i = 0; i < 50; i++) {
          yield* port.disconnected(agent.identity)
          yield* port.hello(agent.identity, { wireguard_keys: [], applied: [], held_vips: [] })
        }
        const presence = (yield* events(setup.accountId)).filter((e) => e.type.startsWith("agent."))
        assert.isAtMost(presence.length, 4)
        expect(presence[0]?.data).toMatchObject({ instance_id: agent.instanceId, hostname: "flappy" })
        // After the window, the next event says how many were held back.
        yield* TestClock.adjust(61_000)
        yield* port.disconnected(agent.identity)
        const next = (yield* events(setup.accountId)).filter((e) => e.type.startsWith("agent.")).at(-1)
        assert.strictEqual(next?.type, "agent.disconnected")
        assert.isAbove(next?.data.suppressed_events, 90)
      })
    )
  )
})

describe("upgrades that mean something", () => {
  it.effect("the module must be assigned on the template, and the version must be a version (no shell)", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        yield* activeCluster(setup)
        const upgrade = (inputs: Record<string, unknown>) =>
          failure(exec(setup.accountId, "execute_skill", { skill: "system-rolling-module-upgrade", inputs: { batch_pct: 50, max_consecutive_failures: 1, ...inputs } }))
        assert.strictEqual((yield* upgrade({ template_id: setup.serverTemplateId, module_id: "bogus-module", target_version_id: "v1" })).code, "unknown_module")
        assert.strictEqual((yield* upgrade({ template_id: setup.serverTemplateId, module_id: "mod-k3s-agent", target_version_id: "v1" })).code, "module_not_assigned")
        assert.strictEqual((yield* upgrade({ template_id: setup.serverTemplateId, module_id: "mod-k3s-server", target_version_id: "v1;$(touch /tmp/pwned)`id`" })).code, "invalid_version")
        assert.strictEqual((yield* upgrade({ module_id: "mod-k3s-server", target_version_id: "v1" })).code, "invalid_input")
      })
    )
  )

  it.effect("a run can target a cluster (every server, whatever its template), be previewed, is listed, and records the cluster's version when done", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId, servers } = yield* activeCluster(setup, { servers: 3 })
        const inputs = { cluster_id: "k3s-prod-server-1", module_id: "mod-k3s-server", target_version_id: "v1.31.0+k3s1", batch_pct: 100, max_consecutive_failures: 1, timeout_ms: 1_000 }
        const preview = yield* exec(setup.accountId, "execute_skill", { skill: "system-rolling-module-upgrade", inputs: { ...inputs, dry_run: true } })
        assert.strictEqual(preview.status, "preview")
        assert.strictEqual(preview.plan.total, 3)
        // Quorum: 3 servers, at most one down at once.
        expect(preview.plan.batches.map((b: Array<string>) => b.length)).toEqual([1, 1, 1])
        assert.strictEqual((yield* exec(setup.accountId, "skill_list_runs")).runs.length, 0)
        const started = yield* exec(setup.accountId, "execute_skill", { skill: "system-rolling-module-upgrade", inputs })
        const { runs } = yield* exec(setup.accountId, "skill_list_runs", { status: "running" })
        assert.strictEqual(runs[0]?.run_id, started.run_id)
        const { SkillRunner } = yield* Effect.promise(() => import("../src/index"))
        const runner = yield* SkillRunner
        const port = yield* AgentPort
        for (let step = 0; step < 10; step++) {
          yield* runner.tick
          for (const server of servers) {
            const push = yield* desiredConfig(server, "module_upgrade")
            if (push !== undefined) yield* port.configAck(server.identity, { kind: "module_upgrade", key: push.key, version: push.version, status: "applied" })
          }
        }
        assert.strictEqual((yield* exec(setup.accountId, "skill_run_status", { run_id: started.run_id })).status, "completed")
        assert.strictEqual((yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })).version, "v1.31.0+k3s1")
        void execConfirmed
      })
    )
  )
})

describe("strict inputs", () => {
  it.effect("an unknown field is refused naming it; an empty string is not taken as absent", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const typo = yield* failure(exec(setup.accountId, "kubernetes_get_cluster", { idd: "x" }))
        assert.strictEqual(typo.code, "invalid_input")
        expect(typo.message).toContain("idd")
        const empty = yield* failure(exec(setup.accountId, "system_sdwan_create_network", { name: "n", handle: "n2", pod_subnet_prefix: "" }))
        assert.strictEqual(empty.code, "invalid_input")
        expect(empty.message).toContain("pod_subnet_prefix")
        const { networks } = yield* exec(setup.accountId, "system_sdwan_list_networks")
        assert.strictEqual(networks.length, 1)
      })
    )
  )
})
