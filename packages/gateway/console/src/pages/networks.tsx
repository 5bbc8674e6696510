/**
 * Networks: each SD-WAN network's peers (hostnames, overlay addresses, pod subnets, endpoints)
 * and a picture of its mesh (WireGuard peers all reach each other) with the VIP holders marked.
 */
import { run } from "../api"
import { useLive } from "../live"
import { Alert, Table } from "../ui"

interface Network {
  readonly id: string
  readonly name: string
  readonly handle: string
  readonly overlay_ipv4_prefix: string | null
  readonly overlay_prefix: string
  readonly pod_subnet_prefix: string
}
interface Peer {
  readonly id: string
  readonly hostname: string
  readonly overlay_address: string
  readonly overlay_ipv4_address: string | null
  readonly pod_subnet: string | null
  readonly endpoint: string | null
  readonly public_key: string | null
  readonly holds_vip: boolean
}

const readNetworks = async () => {
  const { networks } = (await run("system_sdwan_list_networks")) as { networks: Array<Network> }
  return Promise.all(
    networks.map(async (network) => ({ network, peers: ((await run("system_sdwan_list_peers", { network_id: network.id })) as { peers: Array<Peer> }).peers }))
  )
}

/** Past this many peers the picture shows the peers without every link (n² lines say nothing). */
const MAX_DRAWN_LINKS = 40

const Mesh = ({ network, peers }: { network: Network; peers: ReadonlyArray<Peer> }) => {
  const size = 320
  const center = size / 2
  const radius = peers.length <= 1 ? 0 : size / 2 - 48
  const at = (i: number) => ({
    x: center + radius * Math.cos((2 * Math.PI * i) / peers.length - Math.PI / 2),
    y: center + radius * Math.sin((2 * Math.PI * i) / peers.length - Math.PI / 2)
  })
  const holders = peers.filter((p) => p.holds_vip).map((p) => p.hostname)
  return (
    <svg
      class="mesh"
      viewBox={`0 0 ${size} ${size}`}
      width={size}
      height={size}
      role="img"
      aria-label={`${network.name}: ${peers.length} peers in a full mesh; VIP held by ${holders.join(", ") || "nobody"}`}
    >
      {peers.length <= MAX_DRAWN_LINKS &&
        peers.flatMap((_, i) =>
          peers.slice(i + 1).map((__, j) => {
            const a = at(i)
            const b = at(i + 1 + j)
            return <line x1={a.x} y1={a.y} x2={b.x} y2={b.y} class="link" />
          })
        )}
      {peers.map((peer, i) => {
        const p = at(i)
        return (
          <g data-peer={peer.hostname} data-holder={peer.holds_vip ? "true" : undefined}>
            <circle cx={p.x} cy={p.y} r={peer.holds_vip ? 11 : 7} class={peer.holds_vip ? "holder" : peer.public_key === null ? "nokey" : "peer"} />
            <text x={p.x} y={p.y + (p.y > center ? 24 : -14)} text-anchor="middle">
              {peer.hostname}
              {peer.holds_vip ? " (VIP)" : ""}
            </text>
          </g>
        )
      })}
    </svg>
  )
}

export const NetworksPage = () => {
  const { value, error } = useLive(readNetworks, (event) => /^(sdwan\.|agent\.)/.test(event.type))
  return (
    <section aria-labelledby="networks-title">
      <h1 id="networks-title">Networks</h1>
      <Alert message={error} />
      {value === undefined ? (
        <p class="muted">Loading…</p>
      ) : value.length === 0 ? (
        <p class="muted">No SD-WAN networks yet.</p>
      ) : (
        value.map(({ network, peers }) => (
          <article aria-labelledby={`net-${network.id}`} data-network={network.handle}>
            <h2 id={`net-${network.id}`}>
              {network.name} <span class="muted">({network.handle})</span>
            </h2>
            <p class="muted">
              overlay {network.overlay_ipv4_prefix ?? "—"} · {network.overlay_prefix} · pods {network.pod_subnet_prefix}
            </p>
            <div class="network">
              <Mesh network={network} peers={peers} />
              <Table columns={["Peer", "Overlay", "Pod subnet", "Endpoint", "VIP"]}>
                {peers.map((peer) => (
                  <tr data-peer-row={peer.hostname}>
                    <td>{peer.hostname}</td>
                    <td>
                      {peer.overlay_ipv4_address ?? ""} {peer.overlay_address}
                    </td>
                    <td>{peer.pod_subnet ?? "—"}</td>
                    <td>{peer.endpoint ?? "—"}</td>
                    <td>{peer.holds_vip ? "holder" : ""}</td>
                  </tr>
                ))}
              </Table>
            </div>
          </article>
        ))
      )}
    </section>
  )
}
