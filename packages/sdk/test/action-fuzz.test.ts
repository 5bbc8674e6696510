/**
 * Every action called with fuzzed inputs (shapes derived from the actions' own JSON Schemas,
 * mixed with real ids and arbitrary values) returns a valid result or a typed domain error —
 * never an internal error — and a rejected call changes nothing.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { createFleet, FleetplaneError } from "../src/index"

describe("actions under fuzzed input", () => {
  it("answer with a result or a typed error, and a rejected call leaves no trace", async () => {
    const fleet = await createFleet({ database: ":memory:", runSensor: false })
    try {
      const account = await fleet.createAccount({ name: "acme" })
      const ops = fleet.forAccount(account.id)
      const network = await ops.actions.system_sdwan_create_network({ name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
      const template = await ops.actions.system_create_template({ name: "servers" })
      const node = await ops.actions.system_create_node({ hostname: "s1", node_template_id: template.id })
      const instance = await ops.actions.system_provision_instance({ node_id: node.id })
      const realIds = [account.id, network.id, template.id, node.id, instance.id, "clu_x", "vip_x", "apr_x", "run_x", "", "10.42.0.0/16"]

      const snapshot = async () => {
        const events = await ops.events.list({ limit: 1000 })
        const clusters = await ops.execute("kubernetes_list_clusters", { include_decommissioned: true })
        const approvals = await ops.execute("system_list_approvals", {})
        return JSON.stringify({ events: events.length, clusters, approvals })
      }

      let internal = 0
      let calls = 0
      for (const action of fleet.describeActions()) {
        const properties = Object.keys(((action.input_schema as { schema?: { properties?: Record<string, unknown> } }).schema?.properties ?? {}) as Record<string, unknown>)
        const value = fc.oneof(fc.anything({ maxDepth: 2, maxKeys: 4 }), fc.constantFrom(...realIds), fc.integer(), fc.boolean(), fc.string({ maxLength: 300 }))
        const input = fc.oneof(
          { weight: 4, arbitrary: fc.dictionary(fc.constantFrom(...(properties.length > 0 ? properties : ["x"]), "confirmation_token", "__proto__"), value, { maxKeys: 6 }) },
          { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) }
        )
        await fc.assert(
          fc.asyncProperty(input, async (candidate) => {
            calls++
            const before = await snapshot()
            try {
              await ops.execute(action.name, candidate)
            } catch (error) {
              expect(error).toBeInstanceOf(FleetplaneError)
              const e = error as FleetplaneError
              if (e.category === "InternalError") internal++
              expect(e.category, `${action.name}(${JSON.stringify(candidate)?.slice(0, 200)}): ${e.message}`).not.toBe("InternalError")
              expect(e.code).toMatch(/^[a-z][a-z0-9_]*$/)
              expect(await snapshot(), `${action.name} changed state on a rejected call`).toBe(before)
            }
          }),
          { numRuns: 40 }
        )
      }
      expect(internal).toBe(0)
      expect(calls).toBeGreaterThan(800)
    } finally {
      await fleet.close()
    }
  }, 120_000)
})
