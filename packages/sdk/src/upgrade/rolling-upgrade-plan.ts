/**
 * R19: the plan of a rolling module upgrade. Batches hold `ceil(batch_pct% of n)` instances
 * of the template, but never more control-plane servers than etcd can lose at once:
 * `max(1, floor((servers - 1) / 2))`, whatever `batch_pct` says. With two servers any
 * restart costs quorum, and the plan says so before anything starts.
 */
import type { KubernetesNodeRole } from "../model/entities"

export interface UpgradeTarget {
  readonly instance_id: string
  readonly role: KubernetesNodeRole | null
}

export interface RollingUpgradePlan {
  readonly total: number
  readonly batch_size: number
  /** Most control-plane servers down at once. */
  readonly server_cap: number
  readonly max_consecutive_failures: number
  readonly batches: ReadonlyArray<ReadonlyArray<string>>
  readonly warnings: ReadonlyArray<string>
}

export const planRollingUpgrade = (
  targets: ReadonlyArray<UpgradeTarget>,
  clusterServers: number,
  batchPct: number,
  maxConsecutiveFailures: number
): RollingUpgradePlan => {
  const total = targets.length
  const batchSize = Math.max(1, Math.ceil((batchPct / 100) * total))
  const serverCap = Math.max(1, Math.floor((clusterServers - 1) / 2))
  const batches: Array<Array<string>> = []
  // Workers fill batches freely; servers go in as far as the cap allows, in their own order.
  const pending = [...targets]
  while (pending.length > 0) {
    const batch: Array<string> = []
    let servers = 0
    for (let i = 0; i < pending.length && batch.length < batchSize; ) {
      const target = pending[i]!
      if (target.role === "control-plane") {
        if (servers >= serverCap) {
          i++
          continue
        }
        servers++
      }
      batch.push(target.instance_id)
      pending.splice(i, 1)
    }
    batches.push(batch)
  }
  const warnings: Array<string> = []
  const upgradesServers = targets.some((t) => t.role === "control-plane")
  if (upgradesServers && clusterServers === 1) {
    warnings.push("the cluster has one server: its API is down while that server upgrades")
  } else if (upgradesServers && clusterServers === 2) {
    warnings.push("the cluster has two servers: any server restart costs etcd quorum, so the API is unavailable while each server upgrades; add a third server first")
  }
  if (upgradesServers && batchSize > serverCap) {
    warnings.push(`batch_pct allows ${batchSize} instances per batch, but at most ${serverCap} control-plane server(s) go down at once (etcd quorum)`)
  }
  return { total, batch_size: batchSize, server_cap: serverCap, max_consecutive_failures: maxConsecutiveFailures, batches, warnings }
}
