/** Shared setup for the agent tests: scratch directories, a real gateway, a provisioned server instance. */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startGateway, type Gateway, type GatewayOptions } from "@fleetplane/gateway"
import { startReferenceAgent } from "../../src/index"

export const scratch = (name: string) => mkdtempSync(join(tmpdir(), `fleetplane-agent-${name}-`))

export const testGateway = (options: Partial<GatewayOptions> = {}): Promise<Gateway> =>
  startGateway({ database: join(scratch("db"), "fleet.db"), listen: "127.0.0.1:0", adminListen: "127.0.0.1:0", logLevel: "silent", heartbeatIntervalMs: 200, ...options })

/** An account with a network and a k3s-server template, and one provisioned, attached instance. */
export const serverInstance = async (gateway: Gateway, hostname = "k3s-prod-server-1") => {
  const account = await gateway.fleet.createAccount({ name: "acme" })
  const ops = gateway.fleet.forAccount(account.id)
  const network = await ops.actions.system_sdwan_create_network({ name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
  const template = await ops.actions.system_create_template({ name: "servers" })
  await ops.actions.system_assign_module_to_template({ template_id: template.id, module_name: "k3s-server" })
  const node = await ops.actions.system_create_node({ hostname, node_template_id: template.id })
  const instance = await ops.actions.system_provision_instance({ node_id: node.id })
  await ops.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })
  return { account, ops, network, template, instance }
}

export const waitFor = async (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/**
 * An account with an admin key and one instance ("edge-1") whose reference agent is connected
 * (simulated k3s and WireGuard, real terminals): what the terminal tests start from.
 */
export const terminalInstance = async (gateway: Gateway) => {
  const account = await gateway.fleet.createAccount({ name: "acme" })
  const key = await gateway.fleet.createApiKey({ account_id: account.id, name: "oncall", role: "admin" })
  const ops = gateway.fleet.forAccount(account.id)
  const template = await ops.actions.system_create_template({ name: "workers" })
  const node = await ops.actions.system_create_node({ hostname: "edge-1", node_template_id: template.id })
  const instance = await ops.actions.system_provision_instance({ node_id: node.id })
  const agent = await startReferenceAgent({
    gatewayUrl: gateway.agentUrl,
    stateDir: scratch("state"),
    root: scratch("root"),
    instanceId: instance.id,
    credential: instance.agent_credential,
    simulate: true,
    log: () => undefined
  })
  return { account, ops, agent, key: key.api_key, keyId: key.id, instanceId: instance.id }
}
