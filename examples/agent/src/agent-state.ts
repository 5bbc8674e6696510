/**
 * What the agent keeps on disk (its state directory): the instance credential, one
 * WireGuard key pair per network (private keys mode 0600, never sent anywhere), the config
 * versions it applied and the VIPs it holds — so a restarted agent resumes exactly where it was.
 */
import { generateKeyPairSync } from "node:crypto"
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeFileSync, writeSync } from "node:fs"
import { join } from "node:path"
import type { AppliedConfig, HeldVip, PeerSetState, VipRoutesPayload, WireguardPayload } from "@fleetplane/agent-protocol"

/** A network's interface as last pushed, and the agent's copy of its peer set (deltas apply to it). */
export interface StoredPeerSet {
  readonly own: Omit<WireguardPayload, "peers">
  readonly peers: PeerSetState
}

export interface WireguardKeyPair {
  readonly publicKey: string
  readonly privateKey: string
}

const writePrivate = (path: string, content: string) => {
  writeFileSync(path, content, { mode: 0o600 })
  chmodSync(path, 0o600)
}

/** An instance id and its credential, as stored in `identity.json` (0600). */
export interface StoredIdentity {
  readonly instanceId: string
  readonly credential: string
  /** The credential before a rotation, kept until the new one has worked once. */
  readonly previousCredential?: string
}

/** A VIP the node holds: its epoch and the addresses it put on its loopback. */
export interface HeldVipState {
  readonly epoch: number
  readonly addresses: ReadonlyArray<string>
}

/** A network as the last welcome described it (to advertise an endpoint before any config arrives). */
export interface KnownNetwork {
  readonly network_id: string
  readonly interface_name?: string
  readonly listen_port?: number
}

export class AgentState {
  private readonly applied = new Map<string, AppliedConfig>()
  private readonly vips = new Map<string, HeldVipState>()

  constructor(readonly dir: string) {
    // The state dir holds the credential and private keys: owner only, even if it already existed.
    mkdirSync(join(dir, "wireguard"), { recursive: true, mode: 0o700 })
    chmodSync(dir, 0o700)
    chmodSync(join(dir, "wireguard"), 0o700)
    const appliedFile = join(dir, "applied.json")
    if (existsSync(appliedFile)) for (const entry of JSON.parse(readFileSync(appliedFile, "utf8")) as Array<AppliedConfig>) this.applied.set(`${entry.kind}/${entry.key}`, entry)
    const vipsFile = join(dir, "vips.json")
    if (existsSync(vipsFile)) {
      for (const vip of JSON.parse(readFileSync(vipsFile, "utf8")) as Array<HeldVip & { addresses?: Array<string> }>) {
        this.vips.set(vip.vip_id, { epoch: vip.epoch, addresses: vip.addresses ?? [] })
      }
    }
  }

  /** The identity the agent last authenticated with (and the credential before it, after a rotation). */
  storedIdentity(): StoredIdentity | undefined {
    const file = join(this.dir, "identity.json")
    if (!existsSync(file)) return undefined
    const stored = JSON.parse(readFileSync(file, "utf8")) as { instance_id: string; credential: string; previous_credential?: string }
    return { instanceId: stored.instance_id, credential: stored.credential, ...(stored.previous_credential === undefined ? {} : { previousCredential: stored.previous_credential }) }
  }

  /** Replaces the stored identity atomically: a crash leaves the old file or the new one, never a torn one. */
  saveIdentity(identity: StoredIdentity) {
    const file = join(this.dir, "identity.json")
    const content = JSON.stringify({
      instance_id: identity.instanceId,
      credential: identity.credential,
      ...(identity.previousCredential === undefined ? {} : { previous_credential: identity.previousCredential })
    })
    const temporary = `${file}.${process.pid}.tmp`
    const fd = openSync(temporary, "w", 0o600)
    try {
      writeSync(fd, content)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(temporary, file)
  }

  /** The key pair for a network, made with Node's crypto (X25519) the first time it is needed. */
  wireguardKey(networkId: string): WireguardKeyPair {
    const privateFile = join(this.dir, "wireguard", `${networkId}.key`)
    const publicFile = join(this.dir, "wireguard", `${networkId}.pub`)
    if (!existsSync(privateFile)) {
      const { publicKey, privateKey } = generateKeyPairSync("x25519")
      writePrivate(privateFile, `${privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32).toString("base64")}\n`)
      writeFileSync(publicFile, `${publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64")}\n`)
    }
    return { privateKey: readFileSync(privateFile, "utf8").trim(), publicKey: readFileSync(publicFile, "utf8").trim() }
  }

  /** Public keys of every network the agent has a key for. */
  wireguardPublicKeys(): Array<{ network_id: string; public_key: string }> {
    const dir = join(this.dir, "wireguard")
    return (existsSync(dir) ? readdirSync(dir) : [])
      .filter((name) => name.endsWith(".pub"))
      .map((name) => ({ network_id: name.slice(0, -4), public_key: readFileSync(join(dir, name), "utf8").trim() }))
  }

  appliedConfigs(): Array<AppliedConfig> {
    return [...this.applied.values()]
  }

  recordApplied(entry: AppliedConfig) {
    this.applied.set(`${entry.kind}/${entry.key}`, entry)
    writeFileSync(join(this.dir, "applied.json"), JSON.stringify(this.appliedConfigs()))
  }

  /**
   * The two halves of a network's WireGuard config as last applied — the interface and peer set
   * (`wireguard` pushes) and the VIP routes (`vip_routes` push) — so either can change alone,
   * also after a restart. A peer list saved before peer sets (rendered text) reads as none: the
   * gateway then sends the full set.
   */
  wireguardParts(networkId: string): { base: StoredPeerSet | undefined; routes: VipRoutesPayload | undefined } {
    const read = <T>(name: string) => {
      const file = join(this.dir, "wireguard", `${networkId}.${name}.json`)
      return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as T) : undefined
    }
    const base = read<StoredPeerSet>("peers")
    return { base: typeof base?.peers?.version === "number" ? base : undefined, routes: read<VipRoutesPayload>("routes") }
  }

  /** The peer-set version the node has of each network, for the hello (changes then arrive as deltas). */
  peerVersions(): Array<{ network_id: string; version: number }> {
    return this.appliedInterfaces().map(({ networkId }) => ({ network_id: networkId, version: this.wireguardParts(networkId).base!.peers.version }))
  }

  saveWireguardPart(networkId: string, part: { peers: StoredPeerSet } | { routes: VipRoutesPayload }) {
    const [name, value] = "peers" in part ? ["peers", part.peers] : ["routes", part.routes]
    writeFileSync(join(this.dir, "wireguard", `${networkId}.${name}.json`), JSON.stringify(value), { mode: 0o600 })
  }

  heldVips(): Array<HeldVip> {
    return [...this.vips].map(([vip_id, { epoch }]) => ({ vip_id, epoch }))
  }

  /** The addresses of a VIP the node holds (what releasing it must remove), or none. */
  vipAddresses(vipId: string): ReadonlyArray<string> {
    return this.vips.get(vipId)?.addresses ?? []
  }

  setVip(vipId: string, epoch: number, held: boolean, addresses: ReadonlyArray<string> = []) {
    if (held) this.vips.set(vipId, { epoch, addresses })
    else this.vips.delete(vipId)
    const rows = [...this.vips].map(([vip_id, vip]) => ({ vip_id, epoch: vip.epoch, addresses: vip.addresses }))
    writeFileSync(join(this.dir, "vips.json"), JSON.stringify(rows))
  }

  /** Networks from the last welcome (interface name and listen port), remembered across restarts. */
  knownNetworks(): Array<KnownNetwork> {
    const file = join(this.dir, "networks.json")
    return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Array<KnownNetwork>) : []
  }

  setKnownNetworks(networks: ReadonlyArray<KnownNetwork>) {
    writeFileSync(join(this.dir, "networks.json"), JSON.stringify(networks))
  }

  /** Gateways learnt from welcome, so a restarted agent whose configured gateway is down still has somewhere to go. */
  knownGateways(): Array<string> {
    const file = join(this.dir, "gateways.json")
    return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Array<string>) : []
  }

  setKnownGateways(urls: ReadonlyArray<string>) {
    writeFileSync(join(this.dir, "gateways.json"), JSON.stringify(urls))
  }

  /** Interface names of the networks whose WireGuard config the node applied. */
  appliedInterfaces(): Array<{ networkId: string; interfaceName: string }> {
    const dir = join(this.dir, "wireguard")
    return (existsSync(dir) ? readdirSync(dir) : [])
      .filter((name) => name.endsWith(".peers.json"))
      .flatMap((name) => {
        const networkId = name.slice(0, -".peers.json".length)
        const base = this.wireguardParts(networkId).base
        return base === undefined ? [] : [{ networkId, interfaceName: base.own.interface_name }]
      })
  }
}
