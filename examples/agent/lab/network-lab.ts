/**
 * Real nodes on one machine: a Linux network namespace per node, each joined by a veth pair to
 * a bridge on the host, where the gateway listens. Each node also gets its own mount namespace
 * with a private /run/wireguard: wireguard-go and `wg` find an interface by its socket there,
 * and every node's interface has the same name (one machine per node never shares it). In each namespace the reference agent runs
 * in its real mode (wg-quick, wireguard-go, ip), with only k3s replaced by a stand-in reached
 * through a stand-in `systemctl` (node-stand-ins/), and a prober that answers and makes TCP
 * connects from inside the node. Packet loss is nftables in the node's namespace.
 *
 * Needs root, `ip netns`, /dev/net/tun, `wireguard-go`, `wg-quick`, `nft` (`npm test` installs
 * the packages). Without them `requireNetworkLab` throws, saying what is missing: the tests
 * fail, never skip.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"

const STAND_INS = new URL("./node-stand-ins/", import.meta.url).pathname
const AGENT_BIN = new URL("../bin/fleetplane-agent.js", import.meta.url).pathname

/**
 * Commands are asynchronous: the gateway under test usually shares this process, and a
 * synchronous child process would stall its event loop (and look like agents falling silent).
 */
const sh = (argv: ReadonlyArray<string>, input?: string) =>
  new Promise<string>((resolve, reject) => {
    const child = execFile(argv[0]!, argv.slice(1), { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`${argv.join(" ")}: ${stderr.trim() || error.message}`))
    )
    if (input !== undefined) child.stdin!.end(input)
  })
const trySh = (argv: ReadonlyArray<string>) => sh(argv).catch(() => "")
/** Only for set-up checks before anything runs, and for clean-up at exit. */
const trySync = (argv: ReadonlyArray<string>) => spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" })

/** Throws with every missing piece named, so a machine that cannot run the lab fails loudly. */
export const requireNetworkLab = () => {
  const missing: Array<string> = []
  if (process.platform !== "linux") missing.push("Linux (network namespaces)")
  if (process.getuid?.() !== 0) missing.push("root (network namespaces, WireGuard interfaces)")
  for (const tool of ["ip", "wg", "wg-quick", "wireguard-go", "nft"]) {
    if (trySync(["sh", "-c", `command -v ${tool}`]).status !== 0) missing.push(`${tool} (apt-get install ${tool === "ip" ? "iproute2" : tool === "nft" ? "nftables" : tool === "wireguard-go" ? "wireguard-go" : "wireguard-tools"})`)
  }
  if (!existsSync("/dev/net/tun")) missing.push("/dev/net/tun (wireguard-go needs a TUN device)")
  if (missing.length === 0) {
    const probe = `fpprobe${process.pid}`
    const made = trySync(["ip", "netns", "add", probe])
    if (made.status !== 0) missing.push(`network namespaces (ip netns add failed: ${made.stderr.trim()})`)
    else trySync(["ip", "netns", "del", probe])
  }
  if (missing.length > 0) throw new Error(`the real data-plane test needs: ${missing.join("; ")}`)
}

export interface LabNode {
  readonly name: string
  readonly namespace: string
  /** The node's address on the lab's LAN (what its agent advertises as its WireGuard endpoint). */
  readonly lanAddress: string
  /** Its agent's --root and --state-dir. */
  readonly root: string
  readonly stateDir: string
  agent: ChildProcess | undefined
  readonly agentLog: Array<string>
  /** Connects from inside this node: `{ ok, answer, ms }`. */
  readonly connect: (host: string, port: number, timeoutMs?: number) => Promise<{ readonly ok: boolean; readonly answer: string; readonly ms: number }>
  /** Runs a command inside the node's namespaces; its stdout. */
  readonly exec: (argv: ReadonlyArray<string>) => Promise<string>
  /** The argv that runs `argv` inside the node's namespaces (for spawning). */
  readonly enter: (argv: ReadonlyArray<string>) => Array<string>
}

export interface AgentStart {
  readonly gatewayUrl: string
  readonly instanceId: string
  readonly credential: string
  /** The pod subnet the k3s stand-in reports (what the controller-manager would assign). */
  readonly podSubnet?: string
}

/** A lab of nodes; `close()` removes every namespace, interface and process it made. */
export const createNetworkLab = async (labId = `${process.pid % 10000}`) => {
  const bridge = `fpbr${labId}`
  const subnet = `10.${77 + (Number(labId) % 100)}.${Math.floor(Number(labId) / 100) % 250}`
  const hostAddress = `${subnet}.1`
  const nodes = new Map<string, LabNode>()
  const probers: Array<ChildProcess> = []
  const holders: Array<ChildProcess> = []
  const scratch = mkdtempSync(join(tmpdir(), "fleetplane-lab-"))

  await sh(["ip", "link", "add", bridge, "type", "bridge"])
  await sh(["ip", "address", "add", `${hostAddress}/24`, "dev", bridge])
  await sh(["ip", "link", "set", bridge, "up"])

  const addNode = async (name: string): Promise<LabNode> => {
    const index = nodes.size + 10
    const namespace = `fp${labId}-${name}`.slice(0, 30)
    const hostVeth = `fpv${labId}n${index}`
    nodes.set(name, undefined as never) // reserve the index while the namespace is made
    await sh(["ip", "netns", "add", namespace])
    await sh(["ip", "link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "netns", namespace])
    await sh(["ip", "link", "set", hostVeth, "master", bridge, "up"])
    // A process that holds the node's mount namespace (private /run/wireguard) for its lifetime;
    // `ip netns exec`, unshare, sh and sleep exec one another, so its pid is the holder's.
    const holder = spawn(
      "ip",
      ["netns", "exec", namespace, "unshare", "--mount", "--propagation", "private", "sh", "-c", "mkdir -p /run/wireguard && mount -t tmpfs fleetplane-lab /run/wireguard && exec sleep infinity"],
      { stdio: "ignore" }
    )
    holders.push(holder)
    const deadline = Date.now() + 5_000
    while ((await trySh(["cat", `/proc/${holder.pid}/comm`])).trim() !== "sleep") {
      if (Date.now() > deadline) throw new Error(`could not make a mount namespace for ${name} (unshare --mount)`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const enter = (argv: ReadonlyArray<string>) => ["nsenter", "--target", String(holder.pid), "--mount", "--net", "--", ...argv]
    const inNs = (argv: ReadonlyArray<string>) => sh(enter(argv))
    await inNs(["ip", "link", "set", "lo", "up"])
    await inNs(["ip", "address", "add", `${subnet}.${index}/24`, "dev", "eth0"])
    await inNs(["ip", "link", "set", "eth0", "up"])
    const root = mkdtempSync(join(scratch, `${name}-root-`))
    const stateDir = mkdtempSync(join(scratch, `${name}-state-`))

    // The prober: one process for the node's lifetime, answering on 7946 and connecting on request.
    const [command, ...args] = enter([process.execPath, join(STAND_INS, "prober.mjs"), name])
    const prober = spawn(command!, args, { stdio: ["pipe", "pipe", "inherit"] })
    probers.push(prober)
    const pending = new Map<string, (line: string) => void>()
    createInterface({ input: prober.stdout! }).on("line", (line) => {
      const [id, ...rest] = line.split(" ")
      pending.get(id!)?.(rest.join(" "))
      pending.delete(id!)
    })
    let probeIds = 0
    const connect = (host: string, port: number, timeoutMs = 1_000) =>
      new Promise<{ ok: boolean; answer: string; ms: number }>((resolve) => {
        const id = String(++probeIds)
        pending.set(id, (result) => {
          const parts = result.split(" ")
          resolve({ ok: parts[0] === "ok", answer: parts.slice(1, -1).join(" "), ms: Number(parts.at(-1)) })
        })
        prober.stdin!.write(`${id} ${host} ${port} ${timeoutMs}\n`)
      })

    const node: LabNode = { name, namespace, lanAddress: `${subnet}.${index}`, root, stateDir, agent: undefined, agentLog: [], connect, exec: inNs, enter }
    nodes.set(name, node)
    return node
  }

  /** Starts (or restarts) the node's reference agent in its real mode. */
  const startAgent = (node: LabNode, start: AgentStart) => {
    const [command, ...args] = node.enter([
      process.execPath, AGENT_BIN,
      "--gateway", start.gatewayUrl, "--state-dir", node.stateDir, "--root", node.root,
      "--instance", start.instanceId
    ])
    const child = spawn(command!, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        // The stand-in systemctl comes first on PATH; everything else (wg-quick, ip) is real.
        PATH: `${STAND_INS}:${process.env.PATH}`,
        FLEETPLANE_NODE_ROOT: node.root,
        // The credential goes by environment, never argv (readable by every user of the node).
        FLEETPLANE_AGENT_CREDENTIAL: start.credential,
        ...(start.podSubnet === undefined ? {} : { STAND_IN_POD_SUBNET: start.podSubnet })
      }
    })
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => {
        // wireguard-go's banner ("not required because this kernel has...") says nothing here.
        if (/[│┌└]/.test(line)) return
        node.agentLog.push(line)
        if (node.agentLog.length > 2_000) node.agentLog.shift()
      })
    }
    node.agent = child
    return child
  }

  /** The node dies: its agent is killed and its WireGuard interfaces (and wireguard-go) go with it. */
  const killNode = async (node: LabNode) => {
    node.agent?.kill("SIGKILL")
    node.agent = undefined
    const links = await trySh(["ip", "-n", node.namespace, "-o", "link", "show"])
    await Promise.all(
      links
        .split("\n")
        .flatMap((line) => /^\d+: (wg-sdwan-[^:@\s]+)/.exec(line)?.[1] ?? [])
        .map((name) => trySh(["ip", "-n", node.namespace, "link", "del", name]))
    )
    // wireguard-go exits when its TUN device is deleted; make sure of it.
    for (const pid of (await trySh(["ip", "netns", "pids", node.namespace])).split("\n").filter(Boolean)) {
      if ((await trySh(["cat", `/proc/${pid}/comm`])).trim().startsWith("wireguard-go")) await trySh(["kill", "-9", pid])
    }
  }

  /** Drops `percent`% of the node's packets to and from `address` (both directions), with nftables in its namespace. */
  const dropPackets = async (node: LabNode, address: string, percent: number) => {
    // numgen's range is 0-99: 100% is a plain drop (a cut link).
    const loss = percent >= 100 ? "" : `numgen random mod 100 < ${percent} `
    const rules = `table inet fleetplane_loss {
  chain out { type filter hook output priority 0; ip daddr ${address} ${loss}drop; }
  chain in { type filter hook input priority 0; ip saddr ${address} ${loss}drop; }
}`
    await sh(["ip", "netns", "exec", node.namespace, "nft", "-f", "-"], rules)
  }
  const stopDropping = (node: LabNode) => trySh(["ip", "netns", "exec", node.namespace, "nft", "delete", "table", "inet", "fleetplane_loss"])

  const close = () => {
    for (const node of nodes.values()) {
      if (node === undefined) continue
      node.agent?.kill("SIGKILL")
      for (const pid of trySync(["ip", "netns", "pids", node.namespace]).stdout.split("\n").filter(Boolean)) trySync(["kill", "-9", pid])
    }
    for (const prober of probers) prober.kill("SIGKILL")
    for (const holder of holders) holder.kill("SIGKILL")
    for (const node of nodes.values()) if (node !== undefined) trySync(["ip", "netns", "del", node.namespace])
    trySync(["ip", "link", "del", bridge])
    rmSync(scratch, { recursive: true, force: true })
  }

  return { hostAddress, nodes, addNode, startAgent, killNode, dropPackets, stopDropping, close }
}

export type NetworkLab = Awaited<ReturnType<typeof createNetworkLab>>
