import { execFileSync, spawnSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { KubeConfig } from "@kubernetes/client-node"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import { renderWireguardConfig } from "@fleetplane/agent-protocol"
import { createClusterCa, issueClientCertificate, overlayPrefixesOf, peerEntryOf, renderK3sConfig, renderKubeconfig } from "../src/index"
import { wireguardKeyPair } from "./support/wireguard-keys"

const has = (command: string) => spawnSync("sh", ["-c", `command -v ${command}`]).status === 0
const scratch = () => mkdtempSync(join(tmpdir(), "fleetplane-config-"))

const kubeconfigFor = async (name: string, vip: string) => {
  const ca = await createClusterCa(name, new Date())
  const client = await issueClientCertificate(ca, `fleetplane-admin-${name}`, "system:masters", new Date())
  return { ca, client, text: renderKubeconfig({ clusterName: name, clusterId: `clu_${name}`, apiEndpoint: `https://[${vip}]:6443`, caCertPem: ca.certPem, clientCertPem: client.certPem, clientKeyPem: client.keyPem }) }
}

describe("certificates", () => {
  it("the cluster CA and the admin client certificate verify with openssl", async () => {
    expect(has("openssl"), "openssl is needed to verify certificates (npm test installs it)").toBe(true)
    const dir = scratch()
    const ca = await createClusterCa("k3s-prod-server-1", new Date())
    const client = await issueClientCertificate(ca, "fleetplane-admin-k3s-prod-server-1", "system:masters", new Date())
    writeFileSync(join(dir, "ca.crt"), ca.certPem)
    writeFileSync(join(dir, "client.crt"), client.certPem)
    writeFileSync(join(dir, "client.key"), client.keyPem)
    expect(execFileSync("openssl", ["verify", "-CAfile", join(dir, "ca.crt"), join(dir, "ca.crt")], { encoding: "utf8" })).toContain("OK")
    expect(execFileSync("openssl", ["verify", "-CAfile", join(dir, "ca.crt"), "-purpose", "sslclient", join(dir, "client.crt")], { encoding: "utf8" })).toContain("OK")
    const subject = execFileSync("openssl", ["x509", "-in", join(dir, "client.crt"), "-noout", "-subject"], { encoding: "utf8" })
    expect(subject).toMatch(/O\s*=\s*system:masters/)
    // The key belongs to the certificate.
    const certKey = execFileSync("openssl", ["x509", "-in", join(dir, "client.crt"), "-noout", "-pubkey"], { encoding: "utf8" })
    const keyKey = execFileSync("openssl", ["pkey", "-in", join(dir, "client.key"), "-pubout"], { encoding: "utf8" })
    expect(certKey).toBe(keyKey)
    // A certificate from another cluster's CA does not verify.
    const other = await createClusterCa("other", new Date())
    writeFileSync(join(dir, "other.crt"), other.certPem)
    expect(spawnSync("openssl", ["verify", "-CAfile", join(dir, "other.crt"), join(dir, "client.crt")]).status).not.toBe(0)
  })
})

describe("kubeconfig", () => {
  it("loads in @kubernetes/client-node with the VIP endpoint in brackets, the cluster CA and an admin user", async () => {
    const { ca, text } = await kubeconfigFor("k3s-prod-server-1", "fd00:abcd:1::100")
    const kc = new KubeConfig()
    kc.loadFromString(text)
    expect(kc.getCurrentCluster()?.server).toBe("https://[fd00:abcd:1::100]:6443")
    expect(Buffer.from(kc.getCurrentCluster()!.caData!, "base64").toString()).toBe(ca.certPem)
    expect(kc.getCurrentUser()?.name).toBe("k3s-prod-server-1-clu_k3s-prod-server-1-admin")
    expect(kc.getCurrentContext()).toBe("k3s-prod-server-1")
  })

  it("two clusters' kubeconfigs merge without collision (unlike k3s's own, which name everything default)", async () => {
    const prod = await kubeconfigFor("k3s-prod-server-1", "fd00:abcd:1::100")
    const staging = await kubeconfigFor("k3s-staging-server-1", "fd00:abcd:2::100")
    const merged = new KubeConfig()
    merged.loadFromString(prod.text)
    const second = new KubeConfig()
    second.loadFromString(staging.text)
    merged.mergeConfig(second)
    expect(merged.getContexts().map((c) => c.name).sort()).toEqual(["k3s-prod-server-1", "k3s-staging-server-1"])
    expect(merged.getClusters()).toHaveLength(2)

    // The check is real: k3s-style files with "default" names do collide.
    const k3sStyle = (text: string) => text.replaceAll(/k3s-(prod|staging)-server-1(-admin)?/g, "default")
    const a = new KubeConfig()
    a.loadFromString(k3sStyle(prod.text))
    const b = new KubeConfig()
    b.loadFromString(k3sStyle(staging.text))
    expect(() => a.mergeConfig(b)).toThrow(/Duplicate/)

    if (has("kubectl")) {
      const dir = scratch()
      writeFileSync(join(dir, "prod.yaml"), prod.text)
      writeFileSync(join(dir, "staging.yaml"), staging.text)
      const view = execFileSync("kubectl", ["config", "view", "--merge", "--flatten"], {
        encoding: "utf8",
        env: { ...process.env, KUBECONFIG: `${join(dir, "prod.yaml")}:${join(dir, "staging.yaml")}` }
      })
      expect(parse(view).contexts).toHaveLength(2)
    }
  })
})

describe("WireGuard config", () => {
  /** A peer as the store holds it; its entry (what every other peer lists) comes from the SDK. */
  const peer = (id: string, address: string, key: string | null, podSubnet: string | null = null) =>
    ({
      id,
      hostname: id,
      public_key: key,
      overlay_address: address,
      overlay_ipv4_address: `100.64.0.${address.split(":").pop()}`,
      endpoint: `198.51.100.${id.length}:51820`,
      pod_subnet: podSubnet
    }) as unknown as Parameters<typeof peerEntryOf>[0]
  const interfaceOf = (self: ReturnType<typeof peer>) => ({
    interface_name: "wg-sdwan-prod",
    listen_port: 51820,
    self: { peer_id: self.id, label: self.hostname, addresses: overlayPrefixesOf(self) }
  })
  const entries = (...peers: Array<ReturnType<typeof peer>>) => peers.flatMap((p) => peerEntryOf(p) ?? [])

  it("lists every other peer with its overlay /128 and /32 and pod subnet, the VIP's /128 and /32 on the holder only once routes are merged; no private key", () => {
    const a = wireguardKeyPair()
    const b = wireguardKeyPair()
    const c = wireguardKeyPair()
    const self = peer("self", "fd00:1::1", a.publicKey)
    const peers = entries(self, peer("holder", "fd00:1::2", b.publicKey, "10.42.1.0/24"), peer("other", "fd00:1::3", c.publicKey, "10.42.2.0/24"), peer("nokey", "fd00:1::4", null))
    expect(renderWireguardConfig({ interface: interfaceOf(self), peers })).not.toContain("fd00:1::100")
    const config = renderWireguardConfig({ interface: interfaceOf(self), peers, routes: [{ address: "fd00:1::100", address_ipv4: "100.64.0.100", public_key: b.publicKey }] })
    expect(config).toContain("Address = fd00:1::1/128, 100.64.0.1/32")
    expect(config).toContain(`PublicKey = ${b.publicKey}\nEndpoint = 198.51.100.6:51820\nAllowedIPs = fd00:1::2/128, 100.64.0.2/32, 10.42.1.0/24, fd00:1::100/128, 100.64.0.100/32`)
    expect(config).toContain("AllowedIPs = fd00:1::3/128, 100.64.0.3/32, 10.42.2.0/24\n")
    expect(config).not.toContain("fd00:1::4")
    expect(config).not.toContain(`PublicKey = ${a.publicKey}`) // not itself
    expect(config).not.toMatch(/^PrivateKey/m)
    // Every section parses as key = value lines.
    for (const line of config.split("\n").filter((l) => l !== "" && !l.startsWith("#") && !l.startsWith("["))) expect(line).toMatch(/^[A-Za-z]+ = .+$/)
  })

  it("with the agent's private key added, wg-quick accepts it and wg derives the public key the agent reported", () => {
    const keys = wireguardKeyPair()
    const other = wireguardKeyPair()
    const self = peer("self", "fd00:1::1", keys.publicKey)
    const withKey = renderWireguardConfig({ interface: interfaceOf(self), peers: entries(self, peer("holder", "fd00:1::2", other.publicKey, "10.42.1.0/24")), privateKey: keys.privateKey })
    if (!has("wg")) {
      console.warn("wireguard-tools is not installed: only the structure of the WireGuard config was checked (npm test installs it with apt-get)")
      expect(withKey).toContain(`PrivateKey = ${keys.privateKey}`)
      return
    }
    expect(execFileSync("wg", ["pubkey"], { input: `${keys.privateKey}\n`, encoding: "utf8" }).trim()).toBe(keys.publicKey)
    const dir = scratch()
    const file = join(dir, "wg-sdwan-prod.conf")
    writeFileSync(file, withKey, { mode: 0o600 })
    const stripped = execFileSync("wg-quick", ["strip", file], { encoding: "utf8" })
    expect(stripped).toContain(`PublicKey = ${other.publicKey}`)
    expect(stripped).not.toContain("Address =")
  })
})

describe("k3s config", () => {
  const base = {
    nodeName: "k3s-prod-server-2",
    token: "K10abc::server:def",
    serverUrl: "https://[fd00:1::100]:6443",
    nodeIp: "fd00:1::2",
    vipAddress: "fd00:1::100",
    interfaceName: "wg-sdwan-prod",
    clusterCidr: "10.42.0.0/16",
    serviceCidr: "10.43.0.0/16"
  }

  it("a flannel server runs host-gw over wg-sdwan-<handle> with the network's pod prefix and the VIP in tls-san", () => {
    const config = parse(renderK3sConfig({ ...base, role: "server", cniPlugin: "flannel" }))
    expect(config).toMatchObject({
      server: "https://[fd00:1::100]:6443",
      token: "K10abc::server:def",
      "node-ip": "fd00:1::2",
      "flannel-iface": "wg-sdwan-prod",
      "flannel-backend": "host-gw",
      "cluster-cidr": "10.42.0.0/16",
      "service-cidr": "10.43.0.0/16"
    })
    expect(config["tls-san"]).toContain("fd00:1::100")
    expect(config["cluster-init"]).toBeUndefined()
  })

  it("the bootstrap server initialises the cluster and has no server URL", () => {
    const config = parse(renderK3sConfig({ ...base, role: "bootstrap-server", serverUrl: null, cniPlugin: "flannel" }))
    expect(config["cluster-init"]).toBe(true)
    expect(config.server).toBeUndefined()
  })

  it("an agent gets the VIP server URL, token, node IP and flannel interface only", () => {
    const config = parse(renderK3sConfig({ ...base, role: "agent", cniPlugin: "flannel" }))
    expect(Object.keys(config).sort()).toEqual(["flannel-iface", "node-ip", "node-name", "server", "token"])
  })

  it("ovn-kubernetes ignores the pod prefix and runs no flannel", () => {
    const config = parse(renderK3sConfig({ ...base, role: "server", cniPlugin: "ovn-kubernetes" }))
    expect(config["cluster-cidr"]).toBeUndefined()
    expect(config["flannel-iface"]).toBeUndefined()
    expect(config["flannel-backend"]).toBe("none")
  })
})
