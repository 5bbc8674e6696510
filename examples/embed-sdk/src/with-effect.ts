/** The same phases through the Effect API: services from one layer, errors in the type. */
import { generateKeyPairSync } from "node:crypto"
import { Effect } from "effect"
import { Accounts, Actions, AgentPort, fleetLayer, type AccountId } from "@fleetplane/sdk"

const publicKey = () => generateKeyPairSync("x25519").publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64")

export const phasesWithEffect = (log: (line: string) => void) =>
  Effect.gen(function* () {
    const accounts = yield* Accounts
    const actions = yield* Actions
    const port = yield* AgentPort
    const account = yield* accounts.create("acme")
    const run = (name: string, input: Record<string, unknown>) => actions.execute(account.id as AccountId, name, input) as Effect.Effect<any, any>

    const network = yield* run("system_sdwan_create_network", { name: "prod", handle: "prod", pod_subnet_prefix: "10.42.0.0/16" })
    const template = yield* run("system_create_template", { name: "k3s-prod-server" })
    yield* run("system_assign_module_to_template", { template_id: template.id, module_name: "k3s-server" })
    const node = yield* run("system_create_node", { hostname: "k3s-prod-server-1", node_template_id: template.id })
    const instance = yield* run("system_provision_instance", { node_id: node.id })
    yield* run("system_sdwan_attach_peer", { network_id: network.id, node_instance_id: instance.id })

    const identity = yield* port.authenticate(instance.id, instance.agent_credential)
    yield* port.hello(identity, { wireguard_keys: [{ network_id: network.id, public_key: publicKey() }], applied: [], held_vips: [] })
    const joined = yield* port.joinRequest(identity, { request_id: "r", module_name: "k3s-server", target_cluster_id: null })
    yield* port.statusReport(identity, { k3s: { service: "active", node_ready: true }, modules: [] })

    // A typed domain error, recovered by tag.
    const refused = yield* run("system_sdwan_create_network", { name: "dup", handle: "dup", pod_subnet_prefix: "10.42.0.0/16" }).pipe(
      Effect.catchTag("ConflictError", (error: { code: string }) => Effect.succeed(error.code))
    )
    const cluster = yield* run("kubernetes_get_cluster", { id: joined.accepted ? joined.cluster_id : "" })
    log(`[effect] ${cluster.name}: ${cluster.status}; an overlapping network was refused with ${refused}`)
    return { status: cluster.status as string, refused: refused as string }
  }).pipe(Effect.provide(fleetLayer({ database: ":memory:" })))
