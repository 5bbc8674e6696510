// A stand-in for k3s on a test node (k3s itself cannot run here). It does what the rest of the
// system can observe of k3s: refuses to start on a config k3s would refuse (mixed IP families,
// k3s pkg/agent/run.go), writes the node's pod subnet where k3s's flannel does
// (/run/flannel/subnet.env), and on servers listens on the API port on every address, as
// kube-apiserver does, answering with the node's name — so a test can see who holds the VIP.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"

const [root, unit] = process.argv.slice(2)
const config = readFileSync(join(root, "etc/rancher/k3s/config.yaml"), "utf8")
const field = (name) => new RegExp(`^${name}: (.+)$`, "m").exec(config)?.[1]?.trim()
const nodeName = field("node-name")
const nodeIp = field("node-ip")
const clusterCidr = field("cluster-cidr")
const family = (value) => (value === undefined ? undefined : value.includes(":") ? 6 : 4)
if (clusterCidr !== undefined && family(clusterCidr) !== family(nodeIp)) {
  console.error(`cluster-cidr: [${clusterCidr}] and node-ip: [${nodeIp}], must share the same IP version (IPv4, IPv6 or dual-stack)`)
  process.exit(1)
}
const podSubnet = process.env.STAND_IN_POD_SUBNET
if (podSubnet !== undefined) {
  // flannel writes the subnet's first address with the subnet's length.
  const [network, length] = podSubnet.split("/")
  const first = network.includes(":") ? `${network.replace(/::$/, "::")}1` : network.replace(/\.0$/, ".1")
  mkdirSync(join(root, "run/flannel"), { recursive: true })
  writeFileSync(join(root, "run/flannel/subnet.env"), `FLANNEL_NETWORK=${clusterCidr ?? ""}\nFLANNEL_SUBNET=${first}/${length}\nFLANNEL_MTU=1420\nFLANNEL_IPMASQ=true\n`)
}
if (unit === "k3s") {
  // A client that resets the connection (a VIP probe closes on the first byte) must not kill the
  // API server: kube-apiserver logs such a reset and carries on.
  const server = createServer((socket) => {
    socket.on("error", () => undefined)
    socket.end(`${nodeName}\n`)
  })
  server.listen({ port: 6443, host: "::", ipv6Only: false })
}
setInterval(() => undefined, 60_000)
