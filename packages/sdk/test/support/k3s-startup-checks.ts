/**
 * The start-up validations k3s and kube-apiserver apply to a node's configuration, mirrored
 * here because k3s itself cannot run on this machine. Each check cites the source it mirrors;
 * a config that fails one would make the real k3s (or its apiserver) exit at start.
 * (Source paths are from k3s-io/k3s and kubernetes/kubernetes.)
 */
import { createHash } from "node:crypto"
import { X509Certificate } from "node:crypto"
import { parse } from "yaml"
import { parseCidr } from "../../src/index"

export interface K3sNodeConfig {
  readonly role: "bootstrap-server" | "server" | "agent"
  /** `/etc/rancher/k3s/config.yaml` as pushed. */
  readonly content: string
  /** The cluster CA the token must pin (the `server-ca.crt` pushed to servers). */
  readonly caCertPem: string
  /** The cluster's API endpoint (`https://<vip>:6443`), which nodes and kubectl dial. */
  readonly apiEndpoint: string
  /**
   * The servers' cluster-cidr: an agent's config has none, it learns it from the server
   * (k3s pkg/agent/config `get()` reads the server's /v1-k3s/config). `null`: k3s's default.
   */
  readonly serverClusterCidr: string | null
}

const familyOfIp = (ip: string): 4 | 6 | undefined => {
  const parsed = parseCidr(`${ip}/${ip.includes(":") ? 128 : 32}`)
  return parsed.ok ? parsed.cidr.family : undefined
}

const familyOfCidr = (cidr: string): 4 | 6 | undefined => {
  const parsed = parseCidr(cidr)
  return parsed.ok ? parsed.cidr.family : undefined
}

/** k3s's `util.SplitStringSlice`: a flag given as a list or as comma-separated text. */
const values = (value: unknown): Array<string> =>
  value === undefined ? [] : (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(",")).map((v) => v.trim()).filter(Boolean)

/** The errors k3s would exit with for this config (empty: it starts). */
export const k3sStartupErrors = (node: K3sNodeConfig): Array<string> => {
  const errors: Array<string> = []
  const config = parse(node.content) as Record<string, unknown>
  const isServer = node.role !== "agent"
  // k3s pkg/cli/server/server.go: the defaults when the flags are absent (10.42.0.0/16, 10.43.0.0/16).
  const clusterCidrs = values((isServer ? config["cluster-cidr"] : node.serverClusterCidr) ?? "10.42.0.0/16")
  const serviceCidrs = values(config["service-cidr"] ?? "10.43.0.0/16")
  const nodeIps = values(config["node-ip"])

  // k3s pkg/cli/server/server.go run(): `net.ParseCIDR` of every cluster-cidr and service-cidr,
  // "invalid cluster-cidr %s" / "invalid service-cidr %s".
  for (const cidr of [...clusterCidrs, ...serviceCidrs]) if (familyOfCidr(cidr) === undefined) errors.push(`invalid cidr ${cidr}`)
  for (const ip of nodeIps) if (familyOfIp(ip) === undefined) errors.push(`invalid node-ip ${ip}`)

  const clusterFamilies = new Set(clusterCidrs.map(familyOfCidr))
  const serviceFamilies = new Set(serviceCidrs.map(familyOfCidr))
  const nodeFamilies = new Set(nodeIps.map(familyOfIp))
  const same = (a: Set<unknown>, b: Set<unknown>) => a.size === b.size && [...a].every((x) => b.has(x))

  // k3s pkg/agent/run.go run(): "cluster-cidr: %v and service-cidr: %v, must share the same IP
  // version (IPv4, IPv6 or dual-stack)".
  if (isServer && !same(clusterFamilies, serviceFamilies)) {
    errors.push(`cluster-cidr: ${clusterCidrs} and service-cidr: ${serviceCidrs}, must share the same IP version`)
  }
  // k3s pkg/agent/run.go run(): "cluster-cidr: %v and node-ip: %v, must share the same IP
  // version" — node-ip must have every family of cluster-cidr (an agent's is the servers').
  if (nodeIps.length === 0) errors.push("node-ip missing: k3s would pick the default-route interface, not the overlay")
  else if (![...clusterFamilies].every((family) => nodeFamilies.has(family))) {
    errors.push(`cluster-cidr: ${clusterCidrs} and node-ip: ${nodeIps}, must share the same IP version`)
  }

  if (isServer) {
    // kubernetes pkg/controlplane/apiserver/options/validation.go
    // validatePublicIPServiceClusterIPRangeIPFamilies: "service IP family %q must match public
    // address family %q" (k3s passes advertise-address as --advertise-address).
    const advertise = config["advertise-address"] === undefined ? nodeIps[0] : String(config["advertise-address"])
    if (advertise === undefined || familyOfIp(advertise) !== familyOfCidr(serviceCidrs[0]!)) {
      errors.push(`service IP family "${serviceCidrs[0]}" must match public address family "${advertise}"`)
    }
  }

  // k3s pkg/agent/run.go createProxyAndValidateToken: the supervisor proxy to `server` is set up
  // for node-ip's family (`isIPv6 := utilsnet.IsIPv6(... cfg.NodeIP)`), so the server URL must be
  // reachable in it: the VIP of the cluster's family.
  if (config.server !== undefined) {
    const url = new URL(String(config.server))
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1")
    if (url.protocol !== "https:" || url.port !== "6443") errors.push(`server ${config.server} is not https://<vip>:6443`)
    if (familyOfIp(host) !== familyOfIp(nodeIps[0] ?? "")) errors.push(`server ${config.server} is not of node-ip ${nodeIps[0]}'s family`)
  }

  // k3s pkg/etcd/etcd.go: a server with no `server` URL and cluster-init starts a new etcd cluster
  // (`newCluster`, State "new"); one with a `server` joins the existing members. So exactly the
  // bootstrap server has cluster-init and no server URL, every other node a server URL and no
  // cluster-init (else it would start a second, one-member cluster of its own).
  if (node.role === "bootstrap-server") {
    if (config["cluster-init"] !== true) errors.push("the bootstrap server lacks cluster-init")
    if (config.server !== undefined) errors.push("the bootstrap server has a server URL")
  } else {
    if (config["cluster-init"] !== undefined) errors.push(`a ${node.role} has cluster-init: it would start its own cluster`)
    if (config.server === undefined) errors.push(`a ${node.role} has no server URL to join`)
  }

  // k3s pkg/clientaccess/token.go: `tokenPrefix = "K10"`, `caHashLength = sha256.Size * 2`, then
  // "::" and `user:password`; ParseAndValidateToken compares the hash with the CA the server
  // presents, so it must be the SHA-256 (hex) of the cluster CA.
  const token = String(config.token ?? "")
  const match = /^K10([0-9a-f]{64})::([^:]+):(.+)$/.exec(token)
  if (match === null) errors.push("token is not in k3s secure format K10<sha256>::<user>:<password>")
  else if (match[1] !== createHash("sha256").update(node.caCertPem).digest("hex")) errors.push("token does not pin the cluster CA")

  // k3s pkg/cli/server/server.go: the apiserver certificate's SANs are tls-san plus localhost and
  // the node's IPs; nodes and kubectl dial the VIP (the server URL), so it must be a SAN.
  if (isServer) {
    const sans = values(config["tls-san"])
    const vip = new URL(node.apiEndpoint).hostname.replace(/^\[(.*)\]$/, "$1")
    if (!sans.includes(vip)) errors.push(`tls-san ${sans} lacks the VIP ${vip}`)
    for (const san of sans) if (familyOfIp(san) !== undefined && familyOfIp(san) !== familyOfIp(nodeIps[0] ?? "")) errors.push(`tls-san ${san} is not of the cluster's family`)
  }

  // Linux IFNAMSIZ (16 with the NUL): flannel-iface must name an interface that can exist.
  if (config["flannel-iface"] !== undefined && Buffer.byteLength(String(config["flannel-iface"])) > 15) errors.push("flannel-iface longer than 15 bytes")
  return errors
}

/** Whether a PEM is a CA certificate (what k3s adopts from server-ca.crt). */
export const isCaCertificate = (pem: string) => new X509Certificate(pem).ca
