import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { expect } from "vitest"
import { AgentPort, JOIN_TOKEN_PATTERN, tokenFingerprint } from "../src/index"
import {
  accountWithNetwork,
  activeCluster,
  desiredConfig,
  events,
  exec,
  execConfirmed,
  failure,
  join,
  provisionAgent,
  reportReady,
  withFleet
} from "./support/fleet-harness"

describe("cluster bootstrap and joins", () => {
  it.effect("R7 a k3s-server without target creates a provisioning cluster named after its host, with a VIP endpoint, active once k3s is ready", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const server = yield* provisionAgent(setup.accountId, { hostname: "k3s-prod-server-1", templateId: setup.serverTemplateId, networkIds: [setup.networkId] })
        const outcome = yield* join(server, "k3s-server", null)
        assert.isTrue(outcome.accepted && outcome.created_cluster && outcome.role === "control-plane")
        const provisioning = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: outcome.accepted ? outcome.cluster_id : "" })
        assert.strictEqual(provisioning.status, "provisioning")
        assert.strictEqual(provisioning.name, "k3s-prod-server-1")
        assert.strictEqual(provisioning.flavor, "k3s")
        // R21: the network's pod prefix is IPv4 (10.42.0.0/16), so the endpoint is the VIP's IPv4 address.
        assert.strictEqual(provisioning.ip_family, "ipv4")
        assert.strictEqual(provisioning.api_endpoint, `https://${provisioning.virtual_ip.address_ipv4}:6443`)
        assert.strictEqual(provisioning.virtual_ip.holder_peer_id !== null, true)
        yield* reportReady(server)
        const { clusters } = yield* exec(setup.accountId, "kubernetes_list_clusters")
        assert.strictEqual(clusters.length, 1)
        assert.strictEqual(clusters[0].status, "active")
      })
    )
  )

  it.effect("R7 reconnects and retries of the bootstrap instance never create a second cluster", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const server = yield* provisionAgent(setup.accountId, { hostname: "s1", templateId: setup.serverTemplateId, networkIds: [setup.networkId] })
        const first = yield* join(server, "k3s-server", null)
        const again = yield* Effect.all([join(server, "k3s-server", null), join(server, "k3s-server", null)], { concurrency: "unbounded" })
        for (const outcome of again) assert.isTrue(outcome.accepted && first.accepted && outcome.cluster_id === first.cluster_id && !outcome.created_cluster)
        const { clusters } = yield* exec(setup.accountId, "kubernetes_list_clusters")
        assert.strictEqual(clusters.length, 1)
      })
    )
  )

  it.effect("R8 a bootstrap server without an SD-WAN peer is rejected with sdwan_peer_required, not left hanging", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const server = yield* provisionAgent(setup.accountId, { hostname: "s1", templateId: setup.serverTemplateId, networkIds: [] })
        const outcome = yield* join(server, "k3s-server", null)
        assert.isFalse(outcome.accepted)
        assert.isTrue(!outcome.accepted && outcome.code === "sdwan_peer_required" && outcome.retry_after_ms > 0)
      })
    )
  )

  it.effect("R9 accepts a join to an existing, active cluster of the same account", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId } = yield* activeCluster(setup)
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const outcome = yield* join(worker, "k3s-agent", clusterId)
        assert.isTrue(outcome.accepted && outcome.cluster_id === clusterId && outcome.role === "worker")
        const { nodes } = yield* exec(setup.accountId, "kubernetes_list_nodes", { cluster_id: clusterId })
        expect(nodes.map((n: any) => n.role).sort()).toEqual(["control-plane", "worker"])
      })
    )
  )

  it.effect("R9 rejects a join to a missing cluster as cluster_not_found, with retry_after_ms", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        yield* activeCluster(setup)
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const outcome = yield* join(worker, "k3s-agent", "clu_doesnotexist")
        assert.isTrue(!outcome.accepted && outcome.code === "cluster_not_found" && outcome.retry_after_ms > 0)
        const audit = (yield* events(setup.accountId)).filter((e) => e.type === "kubernetes.join_rejected")
        assert.strictEqual(audit.at(-1)?.data.reason, "cluster_not_found")
      })
    )
  )

  it.effect("R9 rejects a join to another account's cluster as cluster_not_found; only the audit event says cluster_wrong_account", () =>
    withFleet()(
      Effect.gen(function* () {
        const other = yield* accountWithNetwork({ name: "other" })
        const foreign = yield* activeCluster(other)
        const setup = yield* accountWithNetwork({ name: "acme" })
        yield* activeCluster(setup)
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const outcome = yield* join(worker, "k3s-agent", foreign.clusterId)
        const missing = yield* join(worker, "k3s-agent", "clu_00000000000000000000000000")
        assert.isTrue(!outcome.accepted && !missing.accepted)
        if (!outcome.accepted && !missing.accepted) {
          assert.strictEqual(outcome.code, "cluster_not_found")
          assert.strictEqual(outcome.retry_after_ms, missing.retry_after_ms)
          assert.strictEqual(outcome.message.replace(foreign.clusterId, "X"), missing.message.replace("clu_00000000000000000000000000", "X"))
        }
        const audit = (yield* events(setup.accountId)).filter((e) => e.type === "kubernetes.join_rejected")
        assert.strictEqual(audit.at(-2)?.data.reason, "cluster_wrong_account")
        const theirs = (yield* events(other.accountId)).filter((e) => e.type === "kubernetes.join_rejected")
        assert.strictEqual(theirs.length, 0)
      })
    )
  )

  it.effect("R9 rejects a join to a cluster that is not active as cluster_not_active", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const server = yield* provisionAgent(setup.accountId, { hostname: "s1", templateId: setup.serverTemplateId, networkIds: [setup.networkId] })
        const created = yield* join(server, "k3s-server", null)
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const outcome = yield* join(worker, "k3s-agent", created.accepted ? created.cluster_id : "")
        assert.isTrue(!outcome.accepted && outcome.code === "cluster_not_active")
      })
    )
  )

  it.effect("R10 a worker without target joins the most recently activated active cluster; none gives no_active_cluster", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const early = yield* provisionAgent(setup.accountId, { hostname: "w0", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const none = yield* join(early, "k3s-agent", null)
        assert.isTrue(!none.accepted && none.code === "no_active_cluster")
        const prod = yield* activeCluster(setup, { prefix: "prod" })
        const staging = yield* activeCluster(setup, { prefix: "staging" })
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const outcome = yield* join(worker, "k3s-agent", null)
        assert.isTrue(outcome.accepted && outcome.cluster_id === staging.clusterId && outcome.cluster_id !== prod.clusterId)
      })
    )
  )

  it.effect("R10 a k3s-server with a target joins as control-plane and becomes a VIP failover candidate", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId, servers } = yield* activeCluster(setup, { servers: 2 })
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.strictEqual(cluster.control_plane_count, 2)
        assert.strictEqual(cluster.virtual_ip.failover_holder_peer_ids.length, 1)
        const secondPeers = servers[1]!
        const { nodes } = yield* exec(setup.accountId, "kubernetes_list_nodes", { cluster_id: clusterId })
        assert.isTrue(nodes.some((n: any) => n.instance_id === secondPeers.instanceId && n.role === "control-plane"))
      })
    )
  )

  it.effect("R11 a node not on the cluster's SD-WAN network is rejected with network_mismatch", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId } = yield* activeCluster(setup)
        const elsewhere = yield* exec(setup.accountId, "system_sdwan_create_network", { name: "edge", handle: "edge", pod_subnet_prefix: "10.50.0.0/16" })
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [elsewhere.id] })
        const outcome = yield* join(worker, "k3s-agent", clusterId)
        assert.isTrue(!outcome.accepted && outcome.code === "network_mismatch")
        const bare = yield* provisionAgent(setup.accountId, { hostname: "w2", templateId: setup.workerTemplateId, networkIds: [] })
        const bareOutcome = yield* join(bare, "k3s-agent", clusterId)
        assert.isTrue(!bareOutcome.accepted && bareOutcome.code === "network_mismatch")
      })
    )
  )

  it.effect("R12 join tokens use k3s's secure format with the CA hash, and rotation pushes the new token to members", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId, servers } = yield* activeCluster(setup)
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        yield* join(worker, "k3s-agent", clusterId)
        const before = yield* desiredConfig(worker, "token")
        expect(before?.payload.token).toMatch(JOIN_TOKEN_PATTERN)
        const k3sBefore = yield* desiredConfig(worker, "k3s")
        expect(k3sBefore?.payload.content).toContain(before?.payload.token)
        yield* execConfirmed(setup.accountId, "kubernetes_rotate_token", { cluster_id: clusterId })
        for (const member of [worker, servers[0]!]) {
          const after = yield* desiredConfig(member, "token")
          assert.isTrue(after !== undefined && before !== undefined && after.version > 1)
          assert.notStrictEqual(after?.payload.token, before?.payload.token)
          // Same CA, new secret.
          assert.strictEqual(after?.payload.token.split("::")[0], before?.payload.token.split("::")[0])
        }
        const k3sAfter = yield* desiredConfig(worker, "k3s")
        assert.isTrue((k3sAfter?.version ?? 0) > (k3sBefore?.version ?? 0))
      })
    )
  )

  it.effect("R12 an agent presenting a stale token fingerprint is told to take the current token", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId } = yield* activeCluster(setup)
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        yield* join(worker, "k3s-agent", clusterId)
        const old = (yield* desiredConfig(worker, "token"))!.payload.token as string
        yield* execConfirmed(setup.accountId, "kubernetes_rotate_token", { cluster_id: clusterId })
        const current = (yield* desiredConfig(worker, "token"))!.payload.token as string
        const stale = yield* join(worker, "k3s-agent", clusterId, tokenFingerprint(old))
        const fresh = yield* join(worker, "k3s-agent", clusterId, tokenFingerprint(current))
        assert.isTrue(stale.accepted && stale.resend_token)
        assert.isTrue(fresh.accepted && !fresh.resend_token)
      })
    )
  )

  it.effect("R4 a cluster on a network whose pod prefix covers 10.43.0.0/16 gets another service CIDR, reported in warnings", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork({ podPrefix: "10.43.0.0/16", handle: "tenb" })
        const { clusterId, servers } = yield* activeCluster(setup)
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.notStrictEqual(cluster.service_cidr, "10.43.0.0/16")
        assert.strictEqual(cluster.service_cidr, "10.44.0.0/16")
        assert.isTrue(cluster.warnings.some((w: string) => w.includes("10.44.0.0/16")))
        const k3s = yield* desiredConfig(servers[0]!, "k3s")
        expect(k3s?.payload.content).toContain("service-cidr: 10.44.0.0/16")
        expect(k3s?.payload.content).toContain("cluster-cidr: 10.43.0.0/16")
      })
    )
  )

  it.effect("joins are atomic: a join racing a decommission never leaves a node in a non-active cluster", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId } = yield* activeCluster(setup)
        const workers = []
        for (let i = 0; i < 8; i++) {
          workers.push(yield* provisionAgent(setup.accountId, { hostname: `w${i}`, templateId: setup.workerTemplateId, networkIds: [setup.networkId] }))
        }
        const confirmation = yield* failure(exec(setup.accountId, "kubernetes_decommission_cluster", { cluster_id: clusterId }))
        const decommission = exec(setup.accountId, "kubernetes_decommission_cluster", { cluster_id: clusterId, confirmation_token: confirmation.details.confirmation_token })
        yield* Effect.all([...workers.map((w) => join(w, "k3s-agent", clusterId)), decommission], { concurrency: "unbounded" })
        const { nodes } = yield* exec(setup.accountId, "kubernetes_list_nodes", { cluster_id: clusterId })
        assert.strictEqual(nodes.length, 0)
        const cluster = yield* exec(setup.accountId, "kubernetes_get_cluster", { id: clusterId })
        assert.strictEqual(cluster.status, "decommissioned")
      })
    )
  )

  it.effect("a module other than the template assigns is rejected (assignment_mismatch); a template with no module at all, module_not_assigned", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const { clusterId } = yield* activeCluster(setup)
        const worker = yield* provisionAgent(setup.accountId, { hostname: "w1", templateId: setup.workerTemplateId, networkIds: [setup.networkId] })
        const outcome = yield* join(worker, "k3s-server", clusterId)
        assert.isTrue(!outcome.accepted && outcome.code === "assignment_mismatch")
        const bare = yield* exec(setup.accountId, "system_create_template", { name: "bare" })
        const idle = yield* provisionAgent(setup.accountId, { hostname: "w2", templateId: bare.id, networkIds: [setup.networkId] })
        const none = yield* join(idle, "k3s-agent", clusterId)
        assert.isTrue(!none.accepted && none.code === "module_not_assigned")
      })
    )
  )

  it.effect("assigning a module with a target_cluster_id of no cluster of this account fails early", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const error = yield* failure(
          exec(setup.accountId, "system_assign_module_to_template", {
            template_id: setup.workerTemplateId,
            module_name: "k3s-agent",
            config: { target_cluster_id: "clu_nope" }
          })
        )
        assert.strictEqual(error.code, "cluster_not_found")
      })
    )
  )

  it.effect("agent credentials: a wrong credential and an unknown instance fail the same way", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const agent = yield* provisionAgent(setup.accountId, { hostname: "s1", templateId: setup.serverTemplateId, networkIds: [setup.networkId] })
        const port = yield* AgentPort
        const wrong = yield* failure(port.authenticate(agent.instanceId, "fpa_wrong"))
        const unknown = yield* failure(port.authenticate("ins_unknown", agent.credential))
        assert.strictEqual(wrong.code, "authentication_failed")
        assert.strictEqual(unknown.code, wrong.code)
        assert.strictEqual(unknown.message, wrong.message)
      })
    )
  )
})
