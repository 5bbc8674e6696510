/**
 * What the agent keeps on disk (its state directory): the instance credential, one
 * WireGuard key pair per network (private keys mode 0600, never sent anywhere), the config
 * versions it applied and the VIPs it holds — so a restarted agent resumes exactly where it was.
 */
import { generateKeyPairSync } from "node:crypto"
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { AppliedConfig, HeldVip, VipRoutesPayload, WireguardPayload } from "@fleetplane/agent-protocol"

export interface WireguardKeyPair {
  readonly publicKey: string
  readonly privateKey: string
}

const writePrivate = (path: string, content: string) => {
  writeFileSync(path, content, { mode: 0o600 })
  chmodSync(path, 0o600)
}

export class AgentState {
  private readonly applied = new Map<string, AppliedConfig>()
  private readonly vips = new Map<string, number>()

  constructor(readonly dir: string) {
    mkdirSync(join(dir, "wireguard"), { recursive: true, mode: 0o700 })
    const appliedFile = join(dir, "applied.json")
    if (existsSync(appliedFile)) for (const entry of JSON.parse(readFileSync(appliedFile, "utf8")) as Array<AppliedConfig>) this.applied.set(`${entry.kind}/${entry.key}`, entry)
    const vipsFile = join(dir, "vips.json")
    if (existsSync(vipsFile)) for (const vip of JSON.parse(readFileSync(vipsFile, "utf8")) as Array<HeldVip>) this.vips.set(vip.vip_id, vip.epoch)
  }

  /** The instance id and credential, given once (first start) and remembered. */
  identity(given: { instanceId?: string | undefined; credential?: string | undefined } = {}): { instanceId: string; credential: string } {
    const file = join(this.dir, "identity.json")
    if (given.instanceId !== undefined && given.credential !== undefined) {
      writePrivate(file, JSON.stringify({ instance_id: given.instanceId, credential: given.credential }))
    }
    if (!existsSync(file)) throw new Error(`no identity in ${this.dir}: pass --instance and --credential the first time`)
    const stored = JSON.parse(readFileSync(file, "utf8")) as { instance_id: string; credential: string }
    return { instanceId: stored.instance_id, credential: stored.credential }
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
   * The two halves of a network's WireGuard config as last applied — the peer list
   * (`wireguard` push) and the VIP routes (`vip_routes` push) — so either can change alone,
   * also after a restart.
   */
  wireguardParts(networkId: string): { base: WireguardPayload | undefined; routes: VipRoutesPayload | undefined } {
    const read = <T>(name: string) => {
      const file = join(this.dir, "wireguard", `${networkId}.${name}.json`)
      return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as T) : undefined
    }
    return { base: read<WireguardPayload>("peers"), routes: read<VipRoutesPayload>("routes") }
  }

  saveWireguardPart(networkId: string, part: { peers: WireguardPayload } | { routes: VipRoutesPayload }) {
    const [name, value] = "peers" in part ? ["peers", part.peers] : ["routes", part.routes]
    writeFileSync(join(this.dir, "wireguard", `${networkId}.${name}.json`), JSON.stringify(value), { mode: 0o600 })
  }

  heldVips(): Array<HeldVip> {
    return [...this.vips].map(([vip_id, epoch]) => ({ vip_id, epoch }))
  }

  setVip(vipId: string, epoch: number, held: boolean) {
    if (held) this.vips.set(vipId, epoch)
    else this.vips.delete(vipId)
    writeFileSync(join(this.dir, "vips.json"), JSON.stringify(this.heldVips()))
  }
}
