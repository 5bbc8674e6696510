/**
 * `fleetplane`: run a gateway, manage accounts and API keys on its database, and drive every
 * runbook step through the admin API. Tables for people, `-o json|yaml|name` for scripts,
 * `--help` everywhere. Exit codes follow the SDK's error categories (2 invalid input,
 * 3 unauthorized, 4 not found, 5 conflict, 6 state, 7 confirmation needed, 8 a wait timed
 * out, 10 unavailable).
 *
 * The commands live beside this file, one concern each: local-commands.ts (the gateway box),
 * operate-commands.ts (changes and waits), resources.ts (list/get/describe/delete for every
 * kind), config-commands.ts (contexts), terminal-command.ts (terminal, mcp).
 */
import { Argument, Command, CommanderError, Option } from "commander"
import { GATEWAY_VERSION } from "../version"
import { CliError } from "./admin-client"
import { DEFAULT_ADMIN_URL } from "./cli-config"
import { cliSession, type GlobalOptions } from "./cli-session"
import { inCliWords } from "./cli-words"
import { COMPLETION_SHELLS, completionScript, type CompletionShell } from "./completion"
import { registerConfigCommands } from "./config-commands"
import { registerLocalCommands } from "./local-commands"
import { registerOperateCommands } from "./operate-commands"
import { OUTPUT_FORMATS, type Io } from "./output"
import { cliReference } from "./reference"
import { registerResourceCommands } from "./resources"
import { registerTerminalCommands } from "./terminal-command"

/** Set by `fleetplane terminal`: the remote program's exit status becomes the CLI's. */
let terminalExitCode: number | undefined

export const buildProgram = (io: Io, env: NodeJS.ProcessEnv = process.env) => {
  const program = new Command("fleetplane")
    .description("Run many K3s clusters over a WireGuard SD-WAN: the Fleetplane gateway and operator CLI.")
    .addOption(new Option("--url <url>", `admin API of the gateway (or FLEETPLANE_URL, or the context's; default ${DEFAULT_ADMIN_URL})`))
    .addOption(new Option("--api-key <key>", "account API key (or FLEETPLANE_API_KEY, or the context's)"))
    .addOption(new Option("--ca-file <pem>", "the CA that signed an https:// admin API's certificate (or FLEETPLANE_CA_FILE, or the context's)"))
    .addOption(new Option("--context <name>", "a context of the config file (or FLEETPLANE_CONTEXT; default: its current context)"))
    .addOption(new Option("-o, --output <format>", "table (default), wide, json, yaml, or name (kind/name per line)").choices(OUTPUT_FORMATS))
    .option("--json", "the same as -o json")
    .addHelpText("after", "\nfleetplane --version prints the version.")
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()
    .showHelpAfterError()

  const session = cliSession(program, io, env)
  registerLocalCommands(program, session)
  registerOperateCommands(program, session)
  registerResourceCommands(program, session)
  registerTerminalCommands(program, session, (code) => (terminalExitCode = code))
  registerConfigCommands(program, { env, io, print: session.print, globals: session.globals })
  program
    .command("reference")
    .description("print this reference in Markdown (packages/gateway/CLI.md is its output)")
    .action(() => io.out(cliReference(program)))
  program
    .command("completion")
    .description("print a shell completion script: source <(fleetplane completion bash), or zsh, or fleetplane completion fish | source")
    .addArgument(new Argument("<shell>", "the shell").choices(COMPLETION_SHELLS))
    .action((shell: CompletionShell) => io.out(completionScript(program, shell)))
  return Object.assign(program, { session })
}

/** Runs the CLI; resolves to the process exit code. */
export const runCli = async (argv: ReadonlyArray<string>, io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> => {
  const program = buildProgram(io, env)
  terminalExitCode = undefined
  // Commander's program-level --version is recognised after subcommands too, where it would swallow
  // `upgrade start --version <id>`: answer it only when no subcommand is named.
  const commandNames = new Set(program.commands.flatMap((c) => [c.name(), ...c.aliases()]))
  if (argv.some((a) => a === "--version" || a === "-V") && !argv.some((a) => commandNames.has(a))) {
    io.out(`${GATEWAY_VERSION}\n`)
    return 0
  }
  try {
    await program.parseAsync([...argv], { from: "user" })
    return terminalExitCode ?? 0
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2
    const json = program.opts<GlobalOptions>().json === true || program.opts<GlobalOptions>().output === "json"
    if (error instanceof CliError) {
      if (json) io.err(`${JSON.stringify({ error: { code: error.code, message: error.message, details: error.details } })}\n`)
      else io.err(`error: ${error.message}\n`)
      return error.exitCode
    }
    // Errors of the local commands (the SDK's facade) in the operator's words too.
    const fleetError = error as { code?: string; message?: string; exitCode?: number }
    io.err(`error: ${inCliWords(fleetError.message ?? String(error), program.session.current())}\n`)
    return typeof fleetError.exitCode === "number" ? fleetError.exitCode : 1
  }
}
