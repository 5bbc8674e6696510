/** Steps a simulated agent takes in scenario tests: connect, join, report ready, heartbeat. */
import type { Gateway } from "../../src/index"
import { TestAgent } from "./test-agent"

/** Connects an agent with its WireGuard key for the network and waits for welcome. */
export const connectAgent = async (gateway: Gateway, node: { instanceId: string; credential: string }, networkId: string, extra: Record<string, unknown> = {}) => {
  const agent = await TestAgent.connect(gateway.agentUrl)
  agent.hello(node.instanceId, node.credential, { wireguard_keys: [{ network_id: networkId, public_key: agent.keys.publicKey }], ...extra })
  await agent.message("welcome")
  return agent
}

export const join = async (agent: TestAgent, module: "k3s-server" | "k3s-agent", target: string | null) => {
  const request_id = `req_${agent.seq++}`
  agent.send({ type: "join_request", body: { request_id, module_name: module, target_cluster_id: target } })
  return agent.until(
    (a) => a.received.find((m) => (m.type === "join_accepted" || m.type === "join_rejected") && m.body.request_id === request_id),
    5_000,
    "join answer"
  )
}

/** Polls `check` until it returns a value (not undefined/false), or fails after `timeoutMs`. */
export const poll = async <T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 5_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export const ready = (agent: TestAgent) => agent.send({ type: "status_report", body: { k3s: { service: "active", node_ready: true }, modules: [] } })

/** Keeps the given agents heartbeating until stopped. */
export const heartbeating = (list: ReadonlyArray<TestAgent>, networkId: string) => {
  const timer = setInterval(() => list.forEach((a) => !a.closed && a.heartbeat([networkId])), 100)
  return () => clearInterval(timer)
}
