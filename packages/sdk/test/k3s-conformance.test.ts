/**
 * R21 conformance: every k3s config the runbook produces, in both IP families, passes the
 * start-up validations k3s and kube-apiserver apply (mirrored, with their sources cited, in
 * support/k3s-startup-checks.ts), because k3s itself cannot run on this machine.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { expect } from "vitest"
import { renderK3sConfig } from "../src/index"
import { activeCluster, desiredConfig, exec, join, newAccount, provisionAgent, reportReady, type SimAgent, withFleet } from "./support/fleet-harness"
import { isCaCertificate, k3sStartupErrors } from "./support/k3s-startup-checks"

/** The runbook's layout on one pod prefix: prod (3 servers, 2 workers) and staging (1 server, 1 worker), each on its own network. */
const runbookConfigs = (prodPodPrefix: string | null, stagingPodPrefix: string | null) =>
  Effect.gen(function* () {
    const { id: accountId } = yield* newAccount("acme")
    const prodNet = yield* exec(accountId, "system_sdwan_create_network", { name: "prod", handle: "prod", pod_subnet_prefix: prodPodPrefix })
    const stagingNet = yield* exec(accountId, "system_sdwan_create_network", { name: "staging", handle: "stg", pod_subnet_prefix: stagingPodPrefix })
    const agents: Array<{ agent: SimAgent; clusterId: string }> = []
    for (const [name, networkId, servers] of [["prod", prodNet.id, 3], ["staging", stagingNet.id, 1]] as const) {
      const serverTemplate = yield* exec(accountId, "system_create_template", { name: `k3s-${name}-server` })
      yield* exec(accountId, "system_assign_module_to_template", { template_id: serverTemplate.id, module_name: "k3s-server" })
      const cluster = yield* activeCluster({ accountId, networkId, serverTemplateId: serverTemplate.id }, { servers, prefix: `k3s-${name}-server` })
      for (const server of cluster.servers) agents.push({ agent: server, clusterId: cluster.clusterId })
      const workerTemplate = yield* exec(accountId, "system_create_template", { name: `k3s-${name}-workers` })
      yield* exec(accountId, "system_assign_module_to_template", { template_id: workerTemplate.id, module_name: "k3s-agent", config: { target_cluster_id: cluster.clusterId } })
      for (let i = 1; i <= (name === "prod" ? 2 : 1); i++) {
        const worker = yield* provisionAgent(accountId, { hostname: `k3s-${name}-worker-${i}`, templateId: workerTemplate.id, networkIds: [networkId] })
        const joined = yield* join(worker, "k3s-agent", cluster.clusterId)
        assert.isTrue(joined.accepted, `worker join: ${joined.accepted ? "" : joined.code}`)
        yield* reportReady(worker)
        agents.push({ agent: worker, clusterId: cluster.clusterId })
      }
    }
    const configs = []
    for (const { agent, clusterId } of agents) {
      const cluster = yield* exec(accountId, "kubernetes_get_cluster", { id: clusterId })
      const k3s = yield* desiredConfig(agent, "k3s")
      assert.isDefined(k3s, `${agent.hostname} has a k3s config`)
      const servers = (yield* exec(accountId, "kubernetes_list_nodes", { cluster_id: clusterId })).nodes.filter((n: any) => n.role === "control-plane")
      const role = k3s!.payload.role === "worker" ? "agent" : servers[0].instance_id === agent.instanceId ? "bootstrap-server" : "server"
      const caFile = k3s!.payload.files.find((f: { path: string }) => f.path.endsWith("server-ca.crt"))
      configs.push({
        hostname: agent.hostname,
        cluster,
        role: role as "bootstrap-server" | "server" | "agent",
        content: k3s!.payload.content as string,
        caCertPem: caFile?.content ?? (yield* caOf(accountId, clusterId)),
        apiEndpoint: cluster.api_endpoint as string,
        serverClusterCidr: cluster.cluster_cidr as string | null
      })
    }
    return configs
  })

/** A worker gets no CA file; the cluster CA is the one in its kubeconfig. */
const caOf = (accountId: any, clusterId: string) =>
  Effect.map(exec(accountId, "kubernetes_get_kubeconfig", { cluster_id: clusterId }), (result: { kubeconfig: string }) => {
    const data = /certificate-authority-data: (\S+)/.exec(result.kubeconfig)![1]!
    return Buffer.from(data, "base64").toString("utf8")
  })

describe("R21 conformance: k3s accepts every config the runbook produces", () => {
  it("the check itself catches the configs Fleetplane used to render (IPv6 node-ip, IPv4 CIDRs)", () => {
    const content = renderK3sConfig({
      role: "server",
      nodeName: "k3s-prod-server-2",
      token: `K10${"0".repeat(64)}::server:secret`,
      serverUrl: "https://[fd00:1::2]:6443",
      nodeIp: "fd00:1::3",
      vipAddress: "fd00:1::2",
      interfaceName: "wg-sdwan-prod",
      cniPlugin: "flannel",
      clusterCidr: "10.42.0.0/16",
      serviceCidr: "10.43.0.0/16"
    })
    const errors = k3sStartupErrors({ role: "server", content, caCertPem: "x", apiEndpoint: "https://[fd00:1::2]:6443", serverClusterCidr: "10.42.0.0/16" })
    expect(errors.join("\n")).toContain("must share the same IP version")
    expect(errors.join("\n")).toContain("must match public address family")
    expect(errors.join("\n")).toContain("token does not pin the cluster CA")
  })

  for (const [family, prod, staging] of [
    ["IPv4 (pod prefixes 10.42.0.0/16 and none: k3s's default)", "10.42.0.0/16", null],
    ["IPv6 (ULA pod prefixes)", "fd42:1::/56", "fd42:2::/56"]
  ] as const) {
    it.effect(`${family}: every server and worker config of both clusters passes k3s's start-up checks`, () =>
      withFleet()(
        Effect.gen(function* () {
          const configs = yield* runbookConfigs(prod, staging)
          assert.strictEqual(configs.length, 7)
          for (const config of configs) {
            expect(k3sStartupErrors(config), `${config.hostname} (${config.role})`).toEqual([])
            if (config.role !== "agent") assert.isTrue(isCaCertificate(config.caCertPem))
          }
          const expected = prod.includes(":") ? "ipv6" : "ipv4"
          for (const config of configs) assert.strictEqual(config.cluster.ip_family, expected)
          if (expected === "ipv6") {
            // An IPv6 cluster gets k3s's IPv6 service default and a bracketed VIP endpoint.
            expect(configs[0]!.content).toContain("service-cidr: fd00:43::/112")
            expect(configs[0]!.apiEndpoint).toMatch(/^https:\/\/\[fd[0-9a-f:]+\]:6443$/)
          } else {
            expect(configs[0]!.content).toContain("service-cidr: 10.43.0.0/16")
            expect(configs.find((c) => c.hostname.startsWith("k3s-staging"))!.content).toContain("cluster-cidr: 10.42.0.0/16")
          }
        })
      )
    )
  }
})
