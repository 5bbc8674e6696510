/**
 * API key roles, enforced in one place (the executor), so every front door gets the same
 * answer: the whole role × action table, as the operator documentation states it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { expect } from "vitest"
import { Actions, actionCatalog, type ApiKeyRole } from "../src/index"
import { accountWithNetwork, withFleet } from "./support/fleet-harness"

/** What each action needs: read < operate < admin. */
const NEEDS: Record<keyof typeof actionCatalog, ApiKeyRole> = {
  kubernetes_list_clusters: "read",
  kubernetes_get_cluster: "read",
  kubernetes_list_nodes: "read",
  system_sdwan_list_networks: "read",
  system_get_instance: "read",
  system_list_approvals: "read",
  system_list_events: "read",
  skill_run_status: "read",
  skill_list_runs: "read",
  system_list_templates: "read",
  system_get_template: "read",
  system_list_nodes: "read",
  system_get_node: "read",
  system_list_instances: "read",
  system_sdwan_get_network: "read",
  system_sdwan_list_peers: "read",
  system_sdwan_list_virtual_ips: "read",
  system_create_template: "operate",
  system_assign_module_to_template: "operate",
  system_create_node: "operate",
  system_sdwan_create_network: "operate",
  system_sdwan_attach_peer: "operate",
  // Only what was never used (an unused template, a never-provisioned node, an empty network).
  system_delete_template: "operate",
  system_delete_node: "operate",
  system_sdwan_delete_network: "operate",
  system_approve: "operate",
  system_reject: "operate",
  execute_skill: "operate",
  skill_run_resume: "operate",
  skill_run_abort: "operate",
  kubernetes_get_kubeconfig: "admin",
  kubernetes_decommission_cluster: "admin",
  kubernetes_rotate_token: "admin",
  system_terminate_instance: "admin",
  system_sdwan_detach_peer: "admin",
  // Credentials: an agent credential lets a machine join a cluster and receive its admin kubeconfig.
  system_provision_instance: "admin",
  system_rotate_agent_credential: "admin",
  system_sdwan_failover_virtual_ip: "admin"
}
const RANK = { read: 0, operate: 1, admin: 2 } as const

describe("API key roles", () => {
  it.effect("every action × every role: refused with forbidden_for_role exactly when the role is below what the action needs", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const actions = yield* Actions
        expect(Object.keys(NEEDS).sort()).toEqual(Object.keys(actionCatalog).sort())
        for (const [name, needs] of Object.entries(NEEDS)) {
          for (const role of ["read", "operate", "admin"] as const) {
            const outcome = yield* Effect.result(actions.execute(setup.accountId, name, {}, { role, api_key_id: "key_test", name: "t" }))
            const forbidden = outcome._tag === "Failure" && (outcome.failure as { code?: string }).code === "forbidden_for_role"
            assert.strictEqual(forbidden, RANK[role] < RANK[needs], `${role} running ${name} (needs ${needs})`)
          }
        }
      })
    )
  )

  it.effect("a read key may dry-run a failover but not run one; the catalog publishes what each action needs", () =>
    withFleet()(
      Effect.gen(function* () {
        const setup = yield* accountWithNetwork()
        const actions = yield* Actions
        const read = { role: "read" as const }
        const dry = yield* Effect.result(actions.execute(setup.accountId, "system_sdwan_failover_virtual_ip", { virtual_ip_id: "vip_none", dry_run: true }, read))
        assert.isTrue(dry._tag === "Failure" && (dry.failure as { code: string }).code === "virtual_ip_not_found")
        const real = yield* Effect.result(actions.execute(setup.accountId, "system_sdwan_failover_virtual_ip", { virtual_ip_id: "vip_none" }, read))
        assert.isTrue(real._tag === "Failure" && (real.failure as { code: string; _tag: string })._tag === "ForbiddenError")
        expect(Object.fromEntries(actions.describe().map((a) => [a.name, a.access]))).toEqual(NEEDS)
      })
    )
  )
})
