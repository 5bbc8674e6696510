/** A real gateway on 127.0.0.1 with a temporary SQLite file, and helpers to drive it. */
import { randomBytes } from "node:crypto"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { startGateway, type Gateway, type GatewayOptions } from "../../src/index"

export const tempDatabase = () => join(mkdtempSync(join(tmpdir(), "fleetplane-gateway-")), "fleet.db")

/** An empty database on the throwaway PostgreSQL of this test run (vitest globalSetup); its URL. */
export const freshPostgresDatabase = async () => {
  const server = process.env.FLEETPLANE_TEST_POSTGRES_URL
  if (server === undefined || server === "") throw new Error("FLEETPLANE_TEST_POSTGRES_URL is not set: the throwaway PostgreSQL (scripts/throwaway-postgres.mjs) did not start")
  const admin = new pg.Client({ connectionString: server })
  await admin.connect()
  const name = `fleet_${randomBytes(6).toString("hex")}`
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(server)
  url.pathname = `/${name}`
  return url.toString()
}

export const quietGateway = (options: Partial<GatewayOptions> & { database?: string } = {}): Promise<Gateway> =>
  startGateway({
    ...(options.postgres === undefined ? { database: options.database ?? tempDatabase() } : {}),
    listen: "127.0.0.1:0",
    adminListen: "127.0.0.1:0",
    logLevel: "silent",
    heartbeatIntervalMs: 200,
    silenceThresholdMs: 600,
    sensorIntervalMs: 50,
    helloTimeoutMs: 500,
    ...options
  })

/** Calls the admin API with an account's key. */
export const adminClient = (gateway: { adminUrl: string }, apiKey: string) => ({
  action: async (name: string, input: Record<string, unknown> = {}) => {
    const response = await fetch(`${gateway.adminUrl}/v1/actions/${name}`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify(input)
    })
    const body = (await response.json()) as any
    return { status: response.status, body }
  },
  /** Runs an action, going through the confirmation flow for destructive ones. */
  confirmed: async (name: string, input: Record<string, unknown> = {}) => {
    const client = adminClient(gateway, apiKey)
    const first = await client.action(name, input)
    if (first.status !== 428) return first
    return client.action(name, { ...input, confirmation_token: first.body.error.details.confirmation_token })
  },
  get: async (path: string) => {
    const response = await fetch(`${gateway.adminUrl}${path}`, { headers: { authorization: `Bearer ${apiKey}` } })
    return { status: response.status, body: (await response.json()) as any }
  }
})

/** An account with an API key, one network, a server template and a worker template. */
export const setupAccount = async (gateway: Gateway, options: { name?: string; vipPolicy?: "automatic" | "require_approval" } = {}) => {
  const account = await gateway.fleet.createAccount({ name: options.name ?? "acme" })
  const { api_key, id: apiKeyId } = await gateway.fleet.createApiKey({ account_id: account.id, name: "tests", role: "admin" })
  const admin = adminClient(gateway, api_key)
  const network = (await admin.action("system_sdwan_create_network", { name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })).body
  const servers = (await admin.action("system_create_template", { name: "servers" })).body
  await admin.action("system_assign_module_to_template", { template_id: servers.id, module_name: "k3s-server", config: { vip_policy: options.vipPolicy ?? "require_approval" } })
  const workers = (await admin.action("system_create_template", { name: "workers" })).body
  await admin.action("system_assign_module_to_template", { template_id: workers.id, module_name: "k3s-agent" })
  const provision = async (hostname: string, templateId: string, attach = true) => {
    const node = (await admin.action("system_create_node", { hostname, node_template_id: templateId })).body
    const instance = (await admin.action("system_provision_instance", { node_id: node.id })).body
    if (attach) await admin.action("system_sdwan_attach_peer", { network_id: network.id, node_instance_id: instance.id })
    return { instanceId: instance.id as string, credential: instance.agent_credential as string, hostname }
  }
  return { accountId: account.id, apiKey: api_key, apiKeyId, admin, networkId: network.id as string, serverTemplateId: servers.id as string, workerTemplateId: workers.id as string, provision }
}
