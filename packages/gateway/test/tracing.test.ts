/**
 * Traces over OTLP/HTTP: a gateway with OTEL_EXPORTER_OTLP_ENDPOINT set sends its spans —
 * actions, joins, failovers, pushes — to a collector this test runs (a plain HTTP server
 * taking OTLP JSON), named and attributed, and never with a secret in them.
 */
import { createServer, type Server } from "node:http"
import { afterEach, describe, expect, it } from "vitest"
import type { Gateway } from "../src/index"
import { quietGateway, setupAccount } from "./support/gateway-harness"
import { TestAgent } from "./support/test-agent"

interface ReceivedSpan {
  readonly name: string
  readonly attributes: Record<string, unknown>
  readonly status?: { code?: number }
}

/** An OTLP/HTTP receiver: every span of every POST to /v1/traces, and each request's raw body. */
const startCollector = async () => {
  const spans: Array<ReceivedSpan> = []
  const bodies: Array<string> = []
  const services = new Set<string>()
  const server: Server = createServer((request, response) => {
    let body = ""
    request.on("data", (chunk) => (body += chunk))
    request.on("end", () => {
      if (request.method === "POST" && request.url === "/v1/traces") {
        bodies.push(body)
        const data = JSON.parse(body) as {
          resourceSpans: Array<{
            resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }
            scopeSpans: Array<{ spans: Array<{ name: string; attributes: Array<{ key: string; value: Record<string, unknown> }>; status?: { code?: number } }> }>
          }>
        }
        for (const resource of data.resourceSpans) {
          for (const attribute of resource.resource.attributes) if (attribute.key === "service.name") services.add(String(attribute.value.stringValue))
          for (const scope of resource.scopeSpans) {
            for (const span of scope.spans) {
              const attributes = Object.fromEntries(span.attributes.map((a) => [a.key, Object.values(a.value)[0]]))
              spans.push({ name: span.name, attributes, ...(span.status === undefined ? {} : { status: span.status }) })
            }
          }
        }
      }
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, spans, bodies, services, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

let gateway: Gateway | undefined
let collector: Awaited<ReturnType<typeof startCollector>> | undefined
const agents: Array<TestAgent> = []
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.close()
  await gateway?.close()
  await collector?.close()
  gateway = undefined
  collector = undefined
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT
})

const until = async (check: () => boolean, what: string, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe("traces over OTLP", () => {
  it("exports spans of actions, joins, failovers and pushes to OTEL_EXPORTER_OTLP_ENDPOINT, without secrets", async () => {
    collector = await startCollector()
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `${collector.url}/`
    gateway = await quietGateway({ otlpExportIntervalMs: 100 })
    const { admin, apiKey, provision, serverTemplateId, networkId } = await setupAccount(gateway, { vipPolicy: "automatic" })
    const first = await provision("s1", serverTemplateId)
    const second = await provision("s2", serverTemplateId)
    const [a1, a2] = await Promise.all([TestAgent.connect(gateway.agentUrl), TestAgent.connect(gateway.agentUrl)])
    agents.push(a1, a2)
    a1.hello(first.instanceId, first.credential, { wireguard_keys: [{ network_id: networkId, public_key: a1.keys.publicKey }] })
    a2.hello(second.instanceId, second.credential, { wireguard_keys: [{ network_id: networkId, public_key: a2.keys.publicKey }] })
    await Promise.all([a1.message("welcome"), a2.message("welcome")])
    a1.send({ type: "join_request", body: { request_id: "r1", module_name: "k3s-server", target_cluster_id: null } })
    const accepted = await a1.message("join_accepted")
    a1.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })
    for (let i = 0; i < 100 && (await admin.action("kubernetes_get_cluster", { id: accepted.body.cluster_id })).body.status !== "active"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    a2.send({ type: "join_request", body: { request_id: "r2", module_name: "k3s-server", target_cluster_id: accepted.body.cluster_id } })
    await a2.message("join_accepted")
    a1.heartbeat([networkId])
    a2.heartbeat([networkId])
    const cluster = (await admin.action("kubernetes_get_cluster", { id: accepted.body.cluster_id })).body
    await admin.confirmed("system_sdwan_failover_virtual_ip", { virtual_ip_id: cluster.virtual_ip.id })
    // A refused join is traced with its code.
    a1.send({ type: "join_request", body: { request_id: "r3", module_name: "k3s-agent", target_cluster_id: "clu_nope" } })
    const rejected = await a1.message("join_rejected")
    // A failed action is an error span.
    expect((await admin.action("kubernetes_get_cluster", { id: "clu_nope" })).status).toBe(404)

    const named = (name: string) => collector!.spans.filter((span) => span.name === name)
    await until(
      () =>
        named("Actions.execute").some((s) => s.attributes["fleetplane.action"] === "system_sdwan_failover_virtual_ip") &&
        named("Actions.execute").some((s) => s.attributes["fleetplane.action"] === "kubernetes_get_cluster" && s.status?.code === 2) &&
        named("AgentPort.joinRequest").length >= 3 &&
        named("VipFailover.promote").length >= 1 &&
        named("AgentPort.pendingPushes").length + named("AgentPort.completePushes").length + named("AgentPort.completePushesMany").length >= 1,
      "the spans at the collector"
    )
    expect(collector.services).toContain("fleetplane-gateway")
    expect(named("Actions.execute").map((s) => s.attributes["fleetplane.action"])).toContain("system_sdwan_create_network")
    const joins = named("AgentPort.joinRequest")
    expect(joins.filter((s) => s.attributes["fleetplane.join.accepted"] === true).map((s) => s.attributes["fleetplane.instance_id"]).sort()).toEqual(
      [first.instanceId, second.instanceId].sort()
    )
    expect(joins.find((s) => s.attributes["fleetplane.join.accepted"] === false)?.attributes["fleetplane.join.code"]).toBe(rejected.body.code)
    expect(named("VipFailover.promote")[0]!.attributes).toMatchObject({ "fleetplane.vip_id": cluster.virtual_ip.id, "fleetplane.failover.reason": "manual" })

    // Nothing secret leaves in a span: not the API key, not an agent credential.
    const exported = collector.bodies.join("\n")
    for (const secret of [apiKey, first.credential, second.credential]) expect(exported).not.toContain(secret)
  }, 30_000)

  it("refuses to start with an endpoint that is not a URL, saying what to set", async () => {
    await expect(quietGateway({ otlpEndpoint: "collector:4318 oops" })).rejects.toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/)
  })
})
