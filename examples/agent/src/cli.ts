/** `fleetplane-agent`: the reference agent as a command. */
import { readFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { AGENT_VERSION, startReferenceAgent } from "./reference-agent"

const HELP = `Usage: fleetplane-agent --gateway <wss://host:7443/v1/agent> --state-dir <dir> [options]

Keeps a session with a Fleetplane gateway, writes the WireGuard and k3s configs it receives
under --root, runs the apply commands, and reports k3s and WireGuard state in heartbeats.

Options:
  --gateway <url>            the gateway's agent endpoint; repeat for several gateways (the first
                             is preferred; the agent moves to the next when one fails or drains,
                             and learns the others a gateway names, keeping them in the state
                             directory for the next start)
  --gateways-file <file>     gateway endpoints, one per line (after any --gateway)
  --state-dir <dir>          credential, WireGuard keys (0600), applied versions
  --instance <id>            instance id (first start only)
  --credential-file <file>   a file holding the agent credential (first start, or to replace a
                             refused one); or the FLEETPLANE_AGENT_CREDENTIAL environment variable.
                             Never on the command line: every user of the machine can read it.
                             A stored credential that works is never replaced by a given one.
  --root <dir>               where configs are written (default /)
  --module <name>            override: join as k3s-server or k3s-agent (default: what the
                             template assigns; the gateway refuses a disagreement)
  --target-cluster <id>      override: the cluster to join (default: the assignment's)
  --endpoint <host[:port]>   the WireGuard endpoint peers should use to reach this node: its
                             public address (the network's listen port is added) or host:port
                             as a NAT forwards it (default: the node's first global address)
  --simulate                 stand in for k3s and WireGuard: write files, run no commands,
                             become ready after --ready-delay ms
  --ready-delay <ms>         simulation only (default 1000)
  --fail-upgrade-to <id>     simulation only: fail module upgrades to this version id
  --ca <file>                trust this CA for wss://
  -V, --version              print the version
  -h, --help                 this help
`

const parsed = (() => {
  try {
    return parseArgs({
      options: {
        gateway: { type: "string", multiple: true },
        "gateways-file": { type: "string" },
        "state-dir": { type: "string" },
        instance: { type: "string" },
        credential: { type: "string" },
        "credential-file": { type: "string" },
        root: { type: "string", default: "/" },
        module: { type: "string" },
        "target-cluster": { type: "string" },
        simulate: { type: "boolean", default: false },
        "ready-delay": { type: "string", default: "1000" },
        ca: { type: "string" },
        "fail-upgrade-to": { type: "string", multiple: true },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
        endpoint: { type: "string" }
      }
    })
  } catch (error) {
    process.stderr.write(`fleetplane-agent: ${error instanceof Error ? error.message : String(error)}\n\n${HELP}`)
    process.exit(2)
  }
})()
const { values } = parsed

if (values.version) {
  process.stdout.write(`${AGENT_VERSION}\n`)
  process.exit(0)
}

const readGatewaysFile = (path: string): Array<string> => {
  try {
    return readFileSync(path, "utf8")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#"))
  } catch (error) {
    process.stderr.write(`fleetplane-agent: cannot read --gateways-file ${path}: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(2)
  }
}
const gateways = [...(values.gateway ?? []), ...(values["gateways-file"] === undefined ? [] : readGatewaysFile(values["gateways-file"]))]
const badGateway = gateways.find((url) => !/^wss?:\/\/\S+$/.test(url))
if (badGateway !== undefined) {
  process.stderr.write(`fleetplane-agent: "${badGateway.slice(0, 100)}" is not a gateway endpoint; expected ws:// or wss://host:7443/v1/agent\n`)
  process.exit(2)
}

if (values.help || gateways.length === 0 || values["state-dir"] === undefined) {
  process.stdout.write(HELP)
  process.exit(values.help ? 0 : 2)
}
if (values.module !== undefined && values.module !== "k3s-server" && values.module !== "k3s-agent") {
  process.stderr.write("--module must be k3s-server or k3s-agent\n")
  process.exit(2)
}

if (values.credential !== undefined) {
  process.stderr.write(
    "fleetplane-agent: --credential is not accepted: a command line is readable by every user of the machine (ps, /proc/<pid>/cmdline). Put the credential in a file only root can read and pass --credential-file, or set FLEETPLANE_AGENT_CREDENTIAL.\n"
  )
  process.exit(2)
}
const readCredentialFile = (path: string) => {
  try {
    const text = readFileSync(path, "utf8").trim()
    if (text === "") throw new Error("the file is empty")
    return text
  } catch (error) {
    process.stderr.write(`fleetplane-agent: cannot read --credential-file ${path}: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(2)
  }
}
const credential = values["credential-file"] === undefined ? process.env.FLEETPLANE_AGENT_CREDENTIAL : readCredentialFile(values["credential-file"])
const agent = await startReferenceAgent({
  gatewayUrl: gateways,
  stateDir: values["state-dir"],
  root: values.root,
  simulate: values.simulate,
  readyDelayMs: Number(values["ready-delay"]),
  ...(values.instance === undefined ? {} : { instanceId: values.instance }),
  ...(credential === undefined ? {} : { credential }),
  ...(values.module === undefined ? {} : { module: values.module as "k3s-server" | "k3s-agent" }),
  ...(values["target-cluster"] === undefined ? {} : { targetClusterId: values["target-cluster"] }),
  ...(values.ca === undefined ? {} : { ca: readFileSync(values.ca) }),
  ...(values.endpoint === undefined ? {} : { endpoint: values.endpoint }),
  ...(values["fail-upgrade-to"] === undefined ? {} : { failUpgradesTo: values["fail-upgrade-to"] })
})
const stop = () => {
  agent.stop()
  process.exit(0)
}
process.on("SIGINT", stop)
process.on("SIGTERM", stop)
void agent.joined.then((accepted) => process.stderr.write(`joined cluster ${accepted.cluster_id} as ${accepted.role}\n`))
