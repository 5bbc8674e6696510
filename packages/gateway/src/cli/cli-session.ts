/**
 * What every `fleetplane` command works with: the resolved connection (flags, environment,
 * context), the admin API client, actions with the confirmation round trip, and output in the
 * format asked for (`-o`). Errors leave here in the operator's words (cli-words.ts).
 */
import type { Command } from "commander"
import { adminApi, CliError, exitCodeFor, fetchTrusting } from "./admin-client"
import { resolveConnection } from "./cli-config"
import { inCliWords } from "./cli-words"
import { asJson, asYaml, type Io, type OutputFormat } from "./output"

export interface GlobalOptions {
  readonly url?: string
  readonly apiKey?: string
  readonly caFile?: string
  readonly context?: string
  readonly json?: boolean
  readonly output?: OutputFormat
}

export interface CliSession {
  readonly io: Io
  readonly env: NodeJS.ProcessEnv
  readonly globals: () => GlobalOptions
  /** `-o`, with `--json` as `-o json`; table by default. */
  readonly format: () => OutputFormat
  readonly connection: () => ReturnType<typeof resolveConnection>
  readonly api: () => ReturnType<typeof adminApi>
  /** Runs an action; a destructive one shows its summary and asks (or needs --yes) before repeating with the token. */
  readonly run: (name: string, input: Record<string, unknown>, options?: { readonly yes?: boolean }) => Promise<any>
  /** JSON or YAML of `value` when asked for; otherwise what `human` makes of it (table, wide and name formats). */
  readonly print: (value: unknown, human: (value: any) => string) => void
  /** The command being run (set before its action), whose flags name the fields in error messages. */
  readonly current: () => Command | undefined
}

export const cliSession = (program: Command, io: Io, env: NodeJS.ProcessEnv): CliSession => {
  let current: Command | undefined
  program.hook("preAction", (_program, command) => {
    current = command
  })
  const globals = () => program.opts<GlobalOptions>()
  const connection = () => resolveConnection(globals(), env)
  const api = () => {
    const { url, apiKey, caFile } = connection()
    return adminApi(url, apiKey, caFile === undefined ? fetch : fetchTrusting(caFile))
  }
  const format = (): OutputFormat => globals().output ?? (globals().json === true ? "json" : "table")
  const failed = (error: { code: string; message: string; category?: string; details: Record<string, unknown> }) =>
    new CliError(inCliWords(error.message, current), exitCodeFor(error.category), error.code, error.details)

  const run = async (name: string, input: Record<string, unknown>, options: { readonly yes?: boolean } = {}) => {
    const client = api()
    const first = await client.action(name, input)
    if (first.ok) return first.result
    if (first.error.code !== "confirmation_required") throw failed(first.error)
    const summary = String(first.error.details.summary ?? name)
    if (options.yes !== true) {
      if (io.ask === undefined) throw new CliError(`${summary}\nThis is destructive: re-run with --yes to confirm.`, 7, "confirmation_required")
      const answer = await io.ask(`${summary}\nType "yes" to continue: `)
      if (answer.trim() !== "yes") throw new CliError("cancelled; nothing was changed", 7, "cancelled")
    }
    const second = await client.action(name, { ...input, confirmation_token: first.error.details.confirmation_token })
    if (second.ok) return second.result
    throw failed(second.error)
  }

  const print = (value: unknown, human: (value: any) => string) => {
    const chosen = format()
    io.out(chosen === "json" ? asJson(value) : chosen === "yaml" ? asYaml(value) : human(value))
  }

  return { io, env, globals, format, connection, api, run, print, current: () => current }
}
