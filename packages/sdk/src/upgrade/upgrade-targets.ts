/**
 * What a rolling module upgrade (R19) may touch, decided before anything starts. A run
 * targets a template's instances (the module must be assigned on it) or a whole cluster
 * (every member running that module, whatever its template — a cluster whose bootstrap
 * server has its own template is still upgraded as one cluster). The version is one
 * argument on the node, never shell text: it must match a strict pattern.
 */
import { Effect } from "effect"
import type { TxContext } from "../domain/transactor"
import { invalidInput, stateError } from "../model/errors"
import type { ModuleName } from "../model/entities"
import type { AccountId, InstanceId } from "../model/ids"
import { requireTemplate } from "../inventory/inventory-lookups"
import { requireCluster } from "../cluster/lifecycle"
import type { UpgradeTarget } from "./rolling-upgrade-plan"

/** `v1.31.0+k3s1`, `v-k3s-1.31.0`: letters, digits and `.+_-`, starting with a letter or digit. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$/
/** `k3s-server`, or the runbook's `mod-k3s-server`. */
const MODULE_ID_PATTERN = /^(?:mod-)?(k3s-server|k3s-agent)$/

export interface UpgradeScope {
  readonly module_name: ModuleName
  readonly targets: ReadonlyArray<UpgradeTarget>
  /** Control-plane servers of the clusters touched (the etcd quorum the plan protects). */
  readonly cluster_servers: number
  /** Each cluster touched, with the instances of it the run upgrades. */
  readonly clusters: Readonly<Record<string, ReadonlyArray<string>>>
}

export const validateUpgradeVersion = (version: string) =>
  VERSION_PATTERN.test(version)
    ? Effect.succeed(version)
    : Effect.fail(
        invalidInput(
          "invalid_version",
          `target_version_id must be 1-64 letters, digits and ".+_-", starting with a letter or digit (such as v1.31.0+k3s1); it reaches the node as one argument`,
          { target_version_id: version.slice(0, 80) }
        )
      )

export const moduleOfId = (moduleId: string) => {
  const match = MODULE_ID_PATTERN.exec(moduleId)
  return match === null
    ? Effect.fail(invalidInput("unknown_module", `module_id must name k3s-server or k3s-agent (as mod-k3s-server or k3s-server)`, { module_id: moduleId.slice(0, 80) }))
    : Effect.succeed(match[1] as ModuleName)
}

const roleOfModule = (module: ModuleName) => (module === "k3s-server" ? "control-plane" : "worker")

/** The instances a run upgrades, from a template (`template_id`) or a cluster (`cluster_id`). */
export const resolveUpgradeScope = (ctx: TxContext, accountId: AccountId, inputs: { readonly template_id?: string; readonly cluster_id?: string; readonly module_id: string }) =>
  Effect.gen(function* () {
    const moduleName = yield* moduleOfId(inputs.module_id)
    if ((inputs.template_id === undefined) === (inputs.cluster_id === undefined)) {
      return yield* invalidInput("invalid_input", "give exactly one of template_id (its instances) and cluster_id (every member running the module)", {})
    }
    const targets: Array<UpgradeTarget> = []
    const clusters: Record<string, Array<string>> = {}
    if (inputs.template_id !== undefined) {
      const template = yield* requireTemplate(ctx, accountId, inputs.template_id)
      if (!template.modules.some((m) => m.module_name === moduleName)) {
        return yield* stateError(
          "module_not_assigned",
          `template "${template.name}" does not assign ${moduleName} (it assigns ${template.modules.map((m) => m.module_name).join(", ") || "nothing"}); there is nothing to upgrade`,
          { template_id: template.id, module_name: moduleName }
        )
      }
      for (const instance of yield* ctx.tx.listInstancesOfTemplate(accountId, template.id)) {
        const membership = yield* ctx.tx.findKubernetesNodeOfInstance(accountId, instance.id)
        targets.push({ instance_id: instance.id, role: membership?.role ?? null })
        if (membership !== undefined) (clusters[membership.cluster_id] ??= []).push(instance.id)
      }
    } else {
      const cluster = yield* requireCluster(ctx, accountId, inputs.cluster_id!)
      if (cluster.status === "decommissioned") return yield* stateError("cluster_decommissioned", `cluster ${cluster.name} is decommissioned`, { cluster_id: cluster.id })
      for (const member of yield* ctx.tx.listKubernetesNodes(accountId, cluster.id)) {
        if (member.role !== roleOfModule(moduleName)) continue
        targets.push({ instance_id: member.instance_id, role: member.role })
        ;(clusters[cluster.id] ??= []).push(member.instance_id)
      }
    }
    let clusterServers = 0
    for (const clusterId of Object.keys(clusters)) {
      clusterServers += (yield* ctx.tx.listKubernetesNodes(accountId, clusterId as never)).filter((n) => n.role === "control-plane").length
    }
    return { module_name: moduleName, targets, cluster_servers: clusterServers, clusters } satisfies UpgradeScope
  })

/** When a run completes: each cluster whose targeted members all upgraded now runs that version. */
export const recordClusterVersions = (ctx: TxContext, accountId: AccountId, clusters: Readonly<Record<string, ReadonlyArray<string>>>, completed: ReadonlyArray<string>, version: string) =>
  Effect.gen(function* () {
    const done = new Set(completed)
    for (const [clusterId, instances] of Object.entries(clusters)) {
      if (instances.length === 0 || !instances.every((id) => done.has(id))) continue
      const cluster = yield* ctx.tx.getCluster(accountId, clusterId as never)
      if (cluster === undefined || cluster.version === version) continue
      yield* ctx.tx.updateCluster(accountId, cluster.id, { version })
      yield* ctx.emit(accountId, "kubernetes.cluster_version_changed", { cluster_id: cluster.id, from: cluster.version, to: version })
    }
  })

export type { InstanceId }
