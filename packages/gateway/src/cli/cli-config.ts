/**
 * The CLI's config file and contexts, as kubectl and talosctl keep them: several gateways
 * (or accounts) under names, one of them current.
 *
 *   # ~/.config/fleetplane/config.yaml (or $FLEETPLANE_CONFIG), written 0600
 *   current-context: prod-edge
 *   contexts:
 *     - name: prod-edge
 *       url: https://gw.example:7080
 *       api-key-file: /etc/fleetplane/ops.key   # or api-key: fpk_… (kept in this 0600 file)
 *       ca-file: /etc/fleetplane/admin-ca.pem   # an https:// admin API signed by a private CA
 *
 * Precedence, highest first: flags (`--url`, `--api-key`, `--ca-file`, `--context`), environment
 * (`FLEETPLANE_URL`, `FLEETPLANE_API_KEY`, `FLEETPLANE_CA_FILE`, `FLEETPLANE_CONTEXT`), the
 * context, the default.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { homedir } from "node:os"
import { dirname, join } from "node:path"
import { parse, stringify } from "yaml"
import { CliError } from "./admin-client"

export const DEFAULT_ADMIN_URL = "http://127.0.0.1:7080"

export interface CliContext {
  readonly name: string
  readonly url?: string
  readonly "api-key"?: string
  readonly "api-key-file"?: string
  readonly "ca-file"?: string
}

export interface CliConfig {
  readonly "current-context"?: string
  readonly contexts: ReadonlyArray<CliContext>
}

export const configPath = (env: NodeJS.ProcessEnv) =>
  env.FLEETPLANE_CONFIG ?? join(env.XDG_CONFIG_HOME ?? join(env.HOME ?? homedir(), ".config"), "fleetplane", "config.yaml")

export const readCliConfig = (path: string): CliConfig => {
  if (!existsSync(path)) return { contexts: [] }
  let document: unknown
  try {
    document = parse(readFileSync(path, "utf8"))
  } catch (error) {
    throw new CliError(`the config file ${path} is not valid YAML (${(error as Error).message.split("\n")[0]}); fix or remove it`, 2, "invalid_config")
  }
  const config = (document ?? {}) as Partial<CliConfig>
  if (typeof config !== "object" || (config.contexts !== undefined && !Array.isArray(config.contexts))) {
    throw new CliError(`the config file ${path} must hold "contexts:" as a list; fix or remove it`, 2, "invalid_config")
  }
  return { ...config, contexts: (config.contexts ?? []).filter((c): c is CliContext => typeof c?.name === "string") }
}

/** Written whole and atomically, readable by its owner only (it may hold an API key). */
export const writeCliConfig = (path: string, config: CliConfig) => {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const temporary = `${path}.${process.pid}.tmp`
  writeFileSync(temporary, stringify(config), { mode: 0o600 })
  chmodSync(temporary, 0o600)
  renameSync(temporary, path)
}

export interface Connection {
  readonly url: string
  readonly apiKey: string | undefined
  /** A PEM file of the CA that signed an https:// admin API's certificate, if not a public one. */
  readonly caFile: string | undefined
  /** The context used, if any. */
  readonly context: string | undefined
}

/** Where the CLI talks to, and with which key, after flags, environment and the config file. */
export const resolveConnection = (flags: { url?: string; apiKey?: string; caFile?: string; context?: string }, env: NodeJS.ProcessEnv): Connection => {
  const path = configPath(env)
  const config = readCliConfig(path)
  const wanted = flags.context ?? env.FLEETPLANE_CONTEXT ?? config["current-context"]
  const context = wanted === undefined ? undefined : config.contexts.find((c) => c.name === wanted)
  if (wanted !== undefined && context === undefined && (flags.context !== undefined || env.FLEETPLANE_CONTEXT !== undefined)) {
    throw new CliError(`there is no context "${wanted}" in ${path}; fleetplane config get-contexts lists them`, 4, "context_not_found")
  }
  const keyFromFile = () => {
    const file = context?.["api-key-file"]
    if (file === undefined) return undefined
    try {
      return readFileSync(file, "utf8").trim()
    } catch (error) {
      throw new CliError(`cannot read the API key file ${file} of context "${context!.name}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 3, "api_key_file_unreadable")
    }
  }
  return {
    url: flags.url ?? env.FLEETPLANE_URL ?? context?.url ?? DEFAULT_ADMIN_URL,
    apiKey: flags.apiKey ?? env.FLEETPLANE_API_KEY ?? context?.["api-key"] ?? keyFromFile(),
    caFile: flags.caFile ?? env.FLEETPLANE_CA_FILE ?? context?.["ca-file"],
    context: context?.name
  }
}
