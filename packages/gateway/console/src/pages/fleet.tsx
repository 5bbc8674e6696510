/** Fleet: every cluster with its status, node counts, VIP holder and epoch, and warnings. */
import { run } from "../api"
import { useLive } from "../live"
import { Alert, Table } from "../ui"

interface ClusterRow {
  readonly id: string
  readonly name: string
  readonly status: string
  readonly warnings: ReadonlyArray<string>
  readonly control_plane_count: number
  readonly worker_count: number
  readonly virtual_ip: { holder_hostname: string | null; epoch: number; address_ipv4: string | null; address: string } | null
}

const readFleet = async (): Promise<ReadonlyArray<ClusterRow>> => {
  const { clusters } = (await run("kubernetes_list_clusters")) as { clusters: Array<{ id: string }> }
  return Promise.all(clusters.map((cluster) => run("kubernetes_get_cluster", { id: cluster.id }) as Promise<ClusterRow>))
}

export const FleetPage = () => {
  const { value: clusters, error } = useLive(readFleet, (event) => /^(kubernetes\.|sdwan\.vip|agent\.)/.test(event.type))
  return (
    <section aria-labelledby="fleet-title">
      <h1 id="fleet-title">Fleet</h1>
      <Alert message={error} />
      {clusters === undefined ? (
        <p class="muted">Loading…</p>
      ) : clusters.length === 0 ? (
        <p class="muted">No clusters yet: a node whose template runs k3s-server bootstraps one when its agent connects.</p>
      ) : (
        <Table columns={["Cluster", "Status", "Servers", "Workers", "VIP holder", "Epoch", "Warnings"]} caption={`${clusters.length} clusters`}>
          {clusters.map((cluster) => (
            <tr data-cluster={cluster.name}>
              <td>
                <a href={`#/clusters/${encodeURIComponent(cluster.id)}`}>{cluster.name}</a>
              </td>
              <td class={`status-${cluster.status}`}>{cluster.status}</td>
              <td>{cluster.control_plane_count}</td>
              <td>{cluster.worker_count}</td>
              <td>{cluster.virtual_ip?.holder_hostname ?? "—"}</td>
              <td>{cluster.virtual_ip?.epoch ?? "—"}</td>
              <td class="warn">
                {cluster.warnings.map((warning) => (
                  <div>{warning}</div>
                ))}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  )
}
