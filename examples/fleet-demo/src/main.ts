/** `npm run demo`: the runbook end to end. `--fast` for shorter timings, `--verbose` for agent logs. */
import { resolve } from "node:path"
import { parseArgs } from "node:util"
import { runDemo } from "./demo"

const { values } = parseArgs({
  options: {
    fast: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
    dir: { type: "string", default: ".demo" },
    console: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false }
  }
})

if (values.help) {
  process.stdout.write(`Usage: npm run demo [-- --fast] [-- --verbose] [-- --dir <dir>] [-- --console]

Starts a Fleetplane gateway on 127.0.0.1 with an embedded SQLite file and simulated agents
(real WebSocket clients), then walks the multi-cluster K3s runbook: two clusters, targeted
workers (and one refused), a second prod server, the prod VIP holder killed, the silence
event, the approval, the promotion and its convergence, kubeconfigs written to <dir>, and
staging decommissioned with its instances still running.

  --fast      shorter heartbeats and thresholds
  --verbose   print what every agent does
  --dir       where the database, agent state and kubeconfigs go (default ./.demo)
  --console   keep the fleet running afterwards and open it in the web console (the
              address and a file with a sign-in key are printed); Ctrl+C stops it
`)
  process.exit(0)
}

try {
  // npm runs scripts from the package root; keep ./.demo relative to where `npm run demo` was typed.
  const summary = await runDemo({ dir: resolve(process.env.INIT_CWD ?? process.cwd(), values.dir), fast: values.fast, verbose: values.verbose, keepRunning: values.console })
  const running = summary.running
  if (running !== undefined) {
    process.stdout.write(`\nThe fleet keeps running. Web console: ${running.consoleUrl}\nSign in with the API key in ${running.apiKeyFile} (cat it). Ctrl+C stops the gateway and the agents.\n`)
    const stop = () => void running.stop().finally(() => process.exit(0))
    process.once("SIGINT", stop)
    process.once("SIGTERM", stop)
  } else {
    process.exit(0)
  }
} catch (error) {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
}
