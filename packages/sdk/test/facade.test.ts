import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, ManagedRuntime, PubSub, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { Accounts, createFleet, fleetFacade, fleetLayer, FleetplaneError, Signals } from "../src/index"

describe("Promise facade", () => {
  it("creates accounts, runs typed actions and execute(name, input), and rejects with code, message and details", async () => {
    const fleet = await createFleet({ database: ":memory:", runSensor: false })
    try {
      const acme = await fleet.createAccount({ name: "acme" })
      const ops = fleet.forAccount(acme.id)
      const template = await ops.actions.system_create_template({ name: "servers" })
      expect(template.id).toMatch(/^tpl_/)
      const listed = (await ops.execute("kubernetes_list_clusters", {})) as { clusters: unknown[] }
      expect(listed.clusters).toEqual([])
      const error = await ops.actions.system_sdwan_create_network({ name: "n", handle: "n", pod_subnet_prefix: "10.42.1.0/16" }).catch((e) => e)
      expect(error).toBeInstanceOf(FleetplaneError)
      expect(error.code).toBe("pod_prefix_not_canonical")
      expect(error.message).toContain("10.42.0.0/16")
      expect(error.details.canonical).toBe("10.42.0.0/16")
      const unknown = await ops.execute("launch_missiles", {}).catch((e: FleetplaneError) => e)
      expect((unknown as FleetplaneError).code).toBe("unknown_action")
      const invalid = await ops.execute("system_create_template", { name: 42 }).catch((e: FleetplaneError) => e)
      expect((invalid as FleetplaneError).code).toBe("invalid_input")
      expect((invalid as FleetplaneError).message).toContain("name")
    } finally {
      await fleet.close()
    }
  })

  it("over a runtime the host built, shares its store and signals with the host's Effect code, and closing it disposes the runtime", async () => {
    const runtime = ManagedRuntime.make(fleetLayer({ database: ":memory:", runSensor: false }))
    const fleet = await fleetFacade(runtime)
    // The host listens on the runtime's signal bus; the facade's commit is heard there.
    const signals = await runtime.runPromise(Effect.service(Signals))
    const scope = await runtime.runPromise(Scope.make())
    const subscription = await runtime.runPromise(Scope.provide(scope)(PubSub.subscribe(signals)))
    const acme = await fleet.createAccount({ name: "acme" })
    await fleet.forAccount(acme.id).actions.system_create_template({ name: "servers" })
    expect((await runtime.runPromise(PubSub.takeAll(subscription))).map((signal) => signal._tag)).toContain("EventsAppended")
    // What the facade wrote, the Effect door reads: one store.
    expect((await runtime.runPromise(Effect.flatMap(Effect.service(Accounts), (accounts) => accounts.get(acme.id)))).name).toBe("acme")
    await fleet.close()
    await expect(runtime.runPromise(Effect.void)).rejects.toThrow()
  })

  it("delivers new events of the account to subscribers, and only that account's", async () => {
    const fleet = await createFleet({ database: ":memory:", runSensor: false })
    try {
      const a = fleet.forAccount((await fleet.createAccount({ name: "a" })).id)
      const b = fleet.forAccount((await fleet.createAccount({ name: "b" })).id)
      const seen: string[] = []
      const unsubscribe = await a.events.subscribe((event) => seen.push(event.type))
      await a.actions.system_create_template({ name: "t" })
      await b.actions.system_create_template({ name: "t" })
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(seen).toEqual(["system.template_created"])
      unsubscribe()
      const events = await a.events.list({ since: 0 })
      expect(events.map((e) => e.type)).toEqual(["system.account_created", "system.template_created"])
      expect(events[1]!.seq).toBeGreaterThan(events[0]!.seq)
    } finally {
      await fleet.close()
    }
  })

  it("publishes every action with its input and output JSON Schemas and destructive flag", async () => {
    const fleet = await createFleet({ database: ":memory:", runSensor: false })
    try {
      const actions = fleet.describeActions()
      const names = actions.map((a) => a.name)
      for (const name of [
        "system_create_node",
        "system_provision_instance",
        "system_sdwan_attach_peer",
        "system_assign_module_to_template",
        "kubernetes_list_clusters",
        "kubernetes_get_cluster",
        "kubernetes_list_nodes",
        "kubernetes_get_kubeconfig",
        "kubernetes_decommission_cluster",
        "system_sdwan_failover_virtual_ip",
        "execute_skill",
        "system_create_template",
        "system_sdwan_create_network",
        "system_terminate_instance",
        "system_list_approvals",
        "system_approve",
        "system_reject",
        "kubernetes_rotate_token",
        "system_list_events",
        "skill_run_status",
        "system_get_instance",
        "system_sdwan_list_networks"
      ]) {
        expect(names).toContain(name)
      }
      const destructive = actions.filter((a) => a.destructive).map((a) => a.name).sort()
      expect(destructive).toEqual(["kubernetes_decommission_cluster", "kubernetes_rotate_token", "system_sdwan_detach_peer", "system_sdwan_failover_virtual_ip", "system_terminate_instance"])
      const network = actions.find((a) => a.name === "system_sdwan_create_network")!.input_schema as { schema: { properties: Record<string, unknown>; required: string[] } }
      expect(Object.keys(network.schema.properties).sort()).toEqual(["handle", "listen_port", "name", "overlay_ipv4_prefix", "overlay_prefix", "pod_subnet_prefix"])
      expect(network.schema.required.sort()).toEqual(["handle", "name"])
      const decommission = actions.find((a) => a.name === "kubernetes_decommission_cluster")!.input_schema as { schema: { properties: Record<string, unknown> } }
      expect(decommission.schema.properties).toHaveProperty("confirmation_token")
      // Results are published too: every action says what it returns, closed to other fields.
      for (const action of actions) {
        const output = action.output_schema as { dialect: string; schema: { type?: string; anyOf?: Array<{ additionalProperties?: boolean }>; additionalProperties?: boolean } }
        expect(output.dialect, action.name).toBe("draft-2020-12")
        const objects = output.schema.anyOf ?? [output.schema]
        for (const object of objects) expect(object.additionalProperties, action.name).toBe(false)
      }
      const cluster = actions.find((a) => a.name === "kubernetes_get_cluster")!.output_schema as { schema: { properties: Record<string, unknown>; required: string[] } }
      expect(cluster.schema.required).toEqual(expect.arrayContaining(["id", "name", "status", "api_endpoint", "virtual_ip", "node_count"]))
    } finally {
      await fleet.close()
    }
  })

  it("keeps everything in the database file across restarts", async () => {
    const database = join(mkdtempSync(join(tmpdir(), "fleetplane-facade-")), "fleet.db")
    const first = await createFleet({ database, runSensor: false })
    const acme = await first.createAccount({ name: "acme" })
    await first.forAccount(acme.id).actions.system_sdwan_create_network({ name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
    await first.close()
    const second = await createFleet({ database, runSensor: false })
    try {
      const error = await second
        .forAccount(acme.id)
        .actions.system_sdwan_create_network({ name: "again", handle: "again", pod_subnet_prefix: "10.42.0.0/16" })
        .catch((e) => e)
      expect(error.code).toBe("pod_prefix_overlap")
      const account = await second.getAccount(acme.id)
      expect(account.name).toBe("acme")
    } finally {
      await second.close()
    }
  })

  it("a checked API key is reused from memory, yet a revoked one is refused at once: revoked here, or by another process on the same file", async () => {
    const database = join(mkdtempSync(join(tmpdir(), "fleetplane-keys-")), "fleet.db")
    const gateway = await createFleet({ database, runSensor: false })
    // Another process on the file, as `fleetplane apikey revoke --db` is: its own connection.
    const cli = await createFleet({ database, runSensor: false })
    try {
      const account = await gateway.createAccount({ name: "acme" })
      const here = await gateway.createApiKey({ account_id: account.id, name: "here", role: "read" })
      const elsewhere = await gateway.createApiKey({ account_id: account.id, name: "elsewhere", role: "admin" })
      for (const key of [here, elsewhere]) expect((await gateway.identifyApiKey(key.api_key)).api_key_id).toBe(key.id)

      await gateway.revokeApiKey({ account_id: account.id, api_key_id: here.id })
      expect(((await gateway.identifyApiKey(here.api_key).catch((e) => e)) as FleetplaneError).code).toBe("invalid_api_key")

      await cli.revokeApiKey({ account_id: account.id, api_key_id: elsewhere.id })
      expect(((await gateway.identifyApiKey(elsewhere.api_key).catch((e) => e)) as FleetplaneError).code).toBe("invalid_api_key")

      // A key made a moment ago (by the other process too) works at once: unknown keys are never remembered.
      await expect(gateway.identifyApiKey("fpk_not_yet")).rejects.toThrow()
      const fresh = await cli.createApiKey({ account_id: account.id, name: "fresh", role: "operate" })
      expect((await gateway.identifyApiKey(fresh.api_key)).role).toBe("operate")
    } finally {
      await cli.close()
      await gateway.close()
    }
  })

  it("API keys map to their account, are shown once, and unknown keys are refused", async () => {
    const fleet = await createFleet({ database: ":memory:", runSensor: false })
    try {
      const a = await fleet.createAccount({ name: "a" })
      const b = await fleet.createAccount({ name: "b" })
      const keyA = await fleet.createApiKey({ account_id: a.id, name: "ci", role: "admin" })
      const keyB = await fleet.createApiKey({ account_id: b.id, name: "ci", role: "admin" })
      expect(keyA.api_key).toMatch(/^fpk_/)
      expect(await fleet.authenticateApiKey(keyA.api_key)).toBe(a.id)
      expect(await fleet.authenticateApiKey(keyB.api_key)).toBe(b.id)
      const refused = await fleet.authenticateApiKey("fpk_guess").catch((e: FleetplaneError) => e)
      expect((refused as FleetplaneError).code).toBe("invalid_api_key")
      const events = await fleet.forAccount(a.id).events.list()
      expect(JSON.stringify(events)).not.toContain(keyA.api_key)
      // Listed with their role and revocation, never the key or its hash; accounts by name.
      await fleet.revokeApiKey({ account_id: a.id, api_key_id: keyA.id })
      const listed = await fleet.listApiKeys({ account_id: a.id })
      expect(listed.map((k) => [k.id, k.name, k.role, k.revoked_at !== null])).toEqual([[keyA.id, "ci", "admin", true]])
      expect(Object.keys(listed[0]!).sort()).toEqual(["created_at", "id", "name", "revoked_at", "role"])
      expect((await fleet.listAccounts()).map((x) => x.name)).toEqual(["a", "b"])
      expect(((await fleet.listApiKeys({ account_id: "acc_nope" }).catch((e: FleetplaneError) => e)) as FleetplaneError).code).toBe("account_not_found")
    } finally {
      await fleet.close()
    }
  })

  it("fails to start with a clear error when the database cannot be opened", async () => {
    const error = await createFleet({ database: "/nonexistent-dir/fleet.db", runSensor: false }).catch((e) => e)
    expect(error).toBeInstanceOf(FleetplaneError)
    expect(error.code).toBe("store_open_failed")
  })
})
