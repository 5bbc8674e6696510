/**
 * R17: what a cluster's control plane can survive, stated truthfully. The VIP needs two
 * servers to fail over; embedded etcd needs three to lose one (a quorum of 2 needs both).
 */
import { Effect } from "effect"
import type { TxContext } from "../domain/transactor"
import type { ClusterRecord } from "../store/records"

export const haWarnings = (controlPlaneServers: number): Array<string> => {
  if (controlPlaneServers <= 1) {
    return [
      "not HA: the cluster has one server, so the VIP cannot fail over and losing that server takes the API down; add a second and a third k3s-server"
    ]
  }
  if (controlPlaneServers === 2) {
    return [
      "VIP failover works, but embedded etcd cannot survive losing a server: a quorum of 2 needs both; add a third k3s-server"
    ]
  }
  return []
}

/** R17: recomputes the HA warnings from the current control-plane count. */
export const refreshHaWarnings = (ctx: TxContext, cluster: ClusterRecord) =>
  Effect.gen(function* () {
    const servers = (yield* ctx.tx.listKubernetesNodes(cluster.account_id, cluster.id)).filter((n) => n.role === "control-plane").length
    const kept = cluster.warnings.filter((w) => !w.startsWith("not HA") && !w.startsWith("VIP failover works"))
    yield* ctx.tx.updateCluster(cluster.account_id, cluster.id, { warnings: [...kept, ...haWarnings(servers)] })
  })
