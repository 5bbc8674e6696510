/**
 * R9/R20 as a table over the whole catalog: for every action and every id-like field, account
 * B names account A's entity (by id, and by name where a field takes one); the answer never
 * reveals it — the same error code as for a missing id of the same kind — and nothing of A's
 * changes.
 */
import { describe, expect, it } from "vitest"
import { createFleet, FleetplaneError, type Fleet } from "../src/index"

const attempt = async (fleet: Fleet, accountId: string, name: string, input: Record<string, unknown>) => {
  try {
    await fleet.forAccount(accountId).execute(name, input)
    return "ok"
  } catch (error) {
    return error instanceof FleetplaneError ? error.code : `untyped: ${String(error)}`
  }
}

describe("tenant isolation over every action", () => {
  it("account B cannot tell account A's entities from missing ones, and changes nothing of A's", async () => {
    const fleet = await createFleet({ database: ":memory:", runSensor: false })
    try {
      const a = await fleet.createAccount({ name: "a" })
      const b = await fleet.createAccount({ name: "b" })
      const opsA = fleet.forAccount(a.id)
      const network = await opsA.actions.system_sdwan_create_network({ name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
      const template = await opsA.actions.system_create_template({ name: "servers" })
      await opsA.actions.system_assign_module_to_template({ template_id: template.id, module_name: "k3s-server" })
      const node = await opsA.actions.system_create_node({ hostname: "s1", node_template_id: template.id })
      const instance = await opsA.actions.system_provision_instance({ node_id: node.id })
      await opsA.actions.system_sdwan_attach_peer({ network_id: network.id, node_instance_id: instance.id })
      const port = await fleet.agentPort()
      const identity = await fleet.run(port.authenticate(instance.id, instance.agent_credential))
      const joined = await fleet.run(port.joinRequest(identity, { request_id: "r", module_name: "k3s-server", target_cluster_id: null }))
      if (!joined.accepted) throw new Error("bootstrap failed")
      const cluster = await opsA.actions.kubernetes_get_cluster({ id: joined.cluster_id })
      const run = await opsA.actions.execute_skill({
        skill: "system-rolling-module-upgrade",
        inputs: { template_id: template.id, module_id: "mod-k3s-server", target_version_id: "v2", batch_pct: 100, max_consecutive_failures: 1 }
      })
      // A's entities by field name, and a well-formed id of the same kind that exists nowhere.
      const theirs: Record<string, [string, string]> = {
        id: [joined.cluster_id, "clu_000000000000000000000000"],
        cluster_id: [joined.cluster_id, "clu_000000000000000000000000"],
        network_id: [network.id, "net_000000000000000000000000"],
        template_id: [template.id, "tpl_000000000000000000000000"],
        node_template_id: [template.id, "tpl_000000000000000000000000"],
        node_id: [node.id, "node_000000000000000000000000"],
        instance_id: [instance.id, "ins_000000000000000000000000"],
        node_instance_id: [instance.id, "ins_000000000000000000000000"],
        virtual_ip_id: [cluster.virtual_ip!.id, "vip_000000000000000000000000"],
        run_id: [run.run_id!, "run_000000000000000000000000"]
      }
      const before = JSON.stringify(await opsA.events.list({ limit: 1000 }))
      let probes = 0
      for (const action of fleet.describeActions()) {
        const properties = Object.keys((action.input_schema as { schema: { properties?: Record<string, unknown> } }).schema.properties ?? {})
        const idFields = properties.filter((field) => theirs[field] !== undefined)
        if (idFields.length === 0) continue
        for (const field of idFields) {
          const base: Record<string, unknown> = {
            name: "probe",
            hostname: "probe",
            handle: "pr",
            module_name: "k3s-agent",
            dry_run: true,
            skill: "system-rolling-module-upgrade"
          }
          const input = (value: string) => Object.fromEntries([...properties.map((p) => [p, base[p] ?? theirs[p]?.[1]]), [field, value]].filter(([, v]) => v !== undefined))
          const foreign = await attempt(fleet, b.id, action.name, input(theirs[field]![0]))
          const missing = await attempt(fleet, b.id, action.name, input(theirs[field]![1]))
          probes++
          expect(foreign, `${action.name}.${field}: answered differently for A's entity than for a missing one`).toBe(missing)
          expect(foreign).not.toBe("ok")
        }
      }
      expect(probes).toBeGreaterThan(15)
      // Nothing of A's changed (B's confirmation requests and failures live in B's scope).
      expect(JSON.stringify(await opsA.events.list({ limit: 1000 }))).toBe(before)
      expect((await opsA.actions.kubernetes_get_cluster({ id: joined.cluster_id })).status).toBe("provisioning")
      // By name: B's own template named like A's is B's, not A's.
      const bTemplate = await fleet.forAccount(b.id).actions.system_create_template({ name: "servers" })
      expect(bTemplate.id).not.toBe(template.id)
    } finally {
      await fleet.close()
    }
  })
})
