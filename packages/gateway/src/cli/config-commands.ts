/** `fleetplane config …`: the contexts of the CLI's config file (cli-config.ts). */
import type { Command } from "commander"
import { CliError } from "./admin-client"
import { configPath, DEFAULT_ADMIN_URL, readCliConfig, writeCliConfig, type CliContext } from "./cli-config"
import { table, type Io } from "./output"

export const registerConfigCommands = (
  program: Command,
  { env, io, print, globals }: {
    readonly env: NodeJS.ProcessEnv
    readonly io: Io
    readonly print: (value: unknown, human: (value: any) => string) => void
    readonly globals: () => { readonly url?: string; readonly apiKey?: string; readonly caFile?: string }
  }
) => {
  const config = program.command("config").description("contexts: named gateways and API keys in $XDG_CONFIG_HOME/fleetplane/config.yaml (~/.config/fleetplane/config.yaml by default; or FLEETPLANE_CONFIG)")
  config
    .command("get-contexts")
    .description("list the contexts; * marks the current one")
    .action(() => {
      const file = readCliConfig(configPath(env))
      const rows = file.contexts.map((c) => ({
        current: c.name === file["current-context"] ? "*" : "",
        name: c.name,
        url: c.url ?? DEFAULT_ADMIN_URL,
        "api-key": c["api-key-file"] ?? (c["api-key"] === undefined ? "-" : "(in the config file)"),
        "ca-file": c["ca-file"] ?? "-"
      }))
      print(rows, (r) => (r.length === 0 ? "no contexts yet: fleetplane config set-context <name> --url <admin url> --api-key-file <file>\n" : table(r, ["current", "name", "url", "api-key", "ca-file"])))
    })
  config
    .command("current-context")
    .description("print the current context's name")
    .action(() => {
      const current = readCliConfig(configPath(env))["current-context"]
      if (current === undefined) throw new CliError("no current context: fleetplane config use-context <name>", 4, "no_current_context")
      io.out(`${current}\n`)
    })
  config
    .command("use-context <name>")
    .description("make a context the current one")
    .action((name: string) => {
      const path = configPath(env)
      const file = readCliConfig(path)
      if (!file.contexts.some((c) => c.name === name)) throw new CliError(`there is no context "${name}" in ${path}; fleetplane config get-contexts lists them`, 4, "context_not_found")
      writeCliConfig(path, { ...file, "current-context": name })
      io.out(`switched to context "${name}"\n`)
    })
  config
    .command("set-context <name>")
    .description(
      "create or change a context (the first one becomes current): --url <admin url>, --api-key-file <file> or --api-key <key> (stored in the 0600 config file), and --ca-file <pem> for an admin API signed by a private CA"
    )
    .option("--api-key-file <file>", "a file holding the API key (kept out of the config file)")
    .action((name: string, local: { apiKeyFile?: string }) => {
      // --url and --api-key are the program's own options (commander reads them anywhere on the line).
      const options = { url: globals().url, apiKey: globals().apiKey, caFile: globals().caFile, apiKeyFile: local.apiKeyFile }
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) throw new CliError(`context name "${name.slice(0, 64)}" must be 1-63 letters, digits, ".", "_" or "-"`, 2, "invalid_context_name")
      if (options.apiKey !== undefined && options.apiKeyFile !== undefined) throw new CliError("give --api-key or --api-key-file, not both", 2, "invalid_input")
      const path = configPath(env)
      const file = readCliConfig(path)
      const previous = file.contexts.find((c) => c.name === name)
      const { "api-key": oldKey, "api-key-file": oldKeyFile, ...kept } = previous ?? { name }
      const key = options.apiKey !== undefined ? { "api-key": options.apiKey } : options.apiKeyFile !== undefined ? { "api-key-file": options.apiKeyFile } : { ...(oldKey === undefined ? {} : { "api-key": oldKey }), ...(oldKeyFile === undefined ? {} : { "api-key-file": oldKeyFile }) }
      const context: CliContext = {
        ...kept,
        name,
        ...(options.url === undefined ? {} : { url: options.url }),
        ...key,
        ...(options.caFile === undefined ? {} : { "ca-file": options.caFile })
      }
      writeCliConfig(path, {
        ...file,
        contexts: [...file.contexts.filter((c) => c.name !== name), context],
        ...(file["current-context"] === undefined ? { "current-context": name } : {})
      })
      io.out(`context "${name}" ${previous === undefined ? "created" : "changed"} in ${path}\n`)
    })
  config
    .command("delete-context <name>")
    .description("remove a context")
    .action((name: string) => {
      const path = configPath(env)
      const file = readCliConfig(path)
      if (!file.contexts.some((c) => c.name === name)) throw new CliError(`there is no context "${name}" in ${path}`, 4, "context_not_found")
      const { "current-context": current, ...rest } = file
      writeCliConfig(path, { ...rest, contexts: file.contexts.filter((c) => c.name !== name), ...(current === undefined || current === name ? {} : { "current-context": current }) })
      io.out(`context "${name}" deleted\n`)
    })
}
