/**
 * A cluster: its nodes with live liveness (re-read on agent and node events), the VIP's
 * candidates and scores from a dry run, the kubeconfig, and token rotation and decommission
 * behind their confirmation summaries. Buttons appear only when the key's role allows them.
 */
import { useState } from "preact/hooks"
import { run } from "../api"
import { useCatalog } from "../catalog"
import { useLive } from "../live"
import { DestructiveButton } from "./confirm"
import { Alert, Table } from "../ui"

interface ClusterDetail {
  readonly id: string
  readonly name: string
  readonly status: string
  readonly api_endpoint: string | null
  readonly version: string | null
  readonly warnings: ReadonlyArray<string>
  readonly virtual_ip: { id: string; address: string; address_ipv4: string | null; holder_hostname: string | null; epoch: number; policy: string } | null
}
interface NodeRow {
  readonly instance_id: string
  readonly hostname: string | null
  readonly role: string
  readonly status: string
  readonly agent: string
  readonly last_heartbeat_at: string | null
}
interface Candidate {
  readonly hostname: string | null
  readonly peer: string
  readonly score: number
  readonly disqualified: string | null
}

const download = (name: string, text: string) => {
  const url = URL.createObjectURL(new Blob([text], { type: "application/yaml" }))
  const link = Object.assign(document.createElement("a"), { href: url, download: name })
  link.click()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}

export const ClusterPage = ({ id }: { id: string }) => {
  const catalog = useCatalog()
  const [message, setMessage] = useState<string>()
  const [error, setError] = useState<string>()
  const cluster = useLive(
    () => run("kubernetes_get_cluster", { id }) as Promise<ClusterDetail>,
    (e) => e.data.cluster_id === id,
    [id]
  )
  const nodes = useLive(
    () => run("kubernetes_list_nodes", { cluster_id: id }).then((r: { nodes: Array<NodeRow> }) => r.nodes),
    (e) => e.data.cluster_id === id || e.type.startsWith("agent."),
    [id]
  )
  const vipId = cluster.value?.virtual_ip?.id
  const candidates = useLive(
    () =>
      vipId === undefined
        ? Promise.resolve(undefined)
        : (run("system_sdwan_failover_virtual_ip", { virtual_ip_id: vipId, dry_run: true }) as Promise<{ candidates: Array<Candidate> }>).then(
            (r) => r.candidates
          ),
    (e) => e.data.cluster_id === id || e.type.startsWith("agent."),
    [vipId]
  )
  const c = cluster.value
  return (
    <section aria-labelledby="cluster-title">
      <p>
        <a href="#/fleet">← Fleet</a>
      </p>
      <Alert message={cluster.error} />
      {c === undefined ? (
        <p class="muted">Loading…</p>
      ) : (
        <>
          <h1 id="cluster-title">
            {c.name} <span class={`status-${c.status}`}>{c.status}</span>
          </h1>
          <p class="muted">
            API {c.api_endpoint ?? "—"} · k3s {c.version ?? "—"}
            {c.virtual_ip !== null &&
              ` · VIP ${c.virtual_ip.address_ipv4 ?? c.virtual_ip.address} held by ${c.virtual_ip.holder_hostname ?? "nobody"} (epoch ${c.virtual_ip.epoch}, ${c.virtual_ip.policy})`}
          </p>
          {c.warnings.map((w) => (
            <p class="warn" role="note">
              {w}
            </p>
          ))}
          <div class="actions">
            {catalog.may("kubernetes_get_kubeconfig") && (
              <button
                type="button"
                onClick={async () => {
                  setError(undefined)
                  try {
                    const answer = (await run("kubernetes_get_kubeconfig", { cluster_id: id })) as { kubeconfig: string }
                    download(`${c.name}.kubeconfig.yaml`, answer.kubeconfig)
                  } catch (e) {
                    setError((e as Error).message)
                  }
                }}
              >
                Download kubeconfig
              </button>
            )}
            {catalog.may("kubernetes_rotate_token") && (
              <DestructiveButton
                action="kubernetes_rotate_token"
                input={{ cluster_id: id }}
                label="Rotate join token"
                onDone={() => setMessage("The join token was rotated.")}
              />
            )}
            {catalog.may("kubernetes_decommission_cluster") && (
              <DestructiveButton
                action="kubernetes_decommission_cluster"
                input={{ cluster_id: id }}
                label="Decommission"
                onDone={() => setMessage("The cluster is being decommissioned.")}
              />
            )}
          </div>
          {message !== undefined && <p role="status">{message}</p>}
          <Alert message={error} />
        </>
      )}
      <h2>Nodes</h2>
      <Alert message={nodes.error} />
      <Table columns={["Hostname", "Role", "Status", "Agent", "Last heartbeat", ...(catalog.canOpenTerminals ? [""] : [])]}>
        {(nodes.value ?? []).map((node) => (
          <tr data-node={node.hostname ?? node.instance_id}>
            <td>{node.hostname ?? node.instance_id}</td>
            <td>{node.role}</td>
            <td class={`status-${node.status}`}>{node.status}</td>
            <td class={`status-${node.agent}`}>{node.agent}</td>
            <td>{node.last_heartbeat_at ?? "—"}</td>
            {catalog.canOpenTerminals && (
              <td>{node.agent === "heartbeating" && <a href={`/console/terminal.html#/${encodeURIComponent(node.instance_id)}`}>Terminal</a>}</td>
            )}
          </tr>
        ))}
      </Table>
      {candidates.value !== undefined && (
        <>
          <h2>VIP failover candidates (dry run)</h2>
          <Table columns={["Node", "Score", "Disqualified"]}>
            {candidates.value.map((candidate) => (
              <tr>
                <td>{candidate.hostname ?? candidate.peer}</td>
                <td>{candidate.score.toFixed(2)}</td>
                <td>{candidate.disqualified ?? ""}</td>
              </tr>
            ))}
          </Table>
        </>
      )}
    </section>
  )
}
