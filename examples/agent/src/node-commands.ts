/**
 * Running commands on the node. Always an argument list through `execFile`, never a shell:
 * values from the gateway (interface names, addresses, versions) are single arguments, so no
 * field of any message can inject a command. A failure carries the command and its stderr,
 * which the agent reports in the config's ack. In simulation nothing runs: the command is
 * recorded (and answered as a real one would be where the agent needs an answer).
 */
import { execFile } from "node:child_process"

export class CommandFailedError extends Error {
  constructor(
    readonly argv: ReadonlyArray<string>,
    readonly exitCode: number | null,
    readonly stderr: string
  ) {
    super(`\`${argv.join(" ")}\` failed${exitCode === null ? "" : ` (exit ${exitCode})`}: ${stderr.trim().slice(0, 2000) || "no output"}`)
    this.name = "CommandFailedError"
  }
}

export interface CommandResult {
  readonly stdout: string
  readonly stderr: string
}

export interface NodeCommands {
  /** Runs `argv` (with `input` on its stdin); rejects with `CommandFailedError` on a non-zero exit. */
  readonly run: (argv: ReadonlyArray<string>, input?: string) => Promise<CommandResult>
  /** Runs `argv` and reports whether it succeeded (for probes such as "does this interface exist"). */
  readonly succeeds: (argv: ReadonlyArray<string>) => Promise<boolean>
  /** Every command run (or, in simulation, that would have run), as one line each. */
  readonly executed: Array<string>
}

export const createNodeCommands = (options: { readonly simulate: boolean; readonly log: (line: string) => void; readonly env?: NodeJS.ProcessEnv }): NodeCommands => {
  const executed: Array<string> = []
  const run = (argv: ReadonlyArray<string>, input?: string): Promise<CommandResult> => {
    executed.push(argv.join(" "))
    if (options.simulate) {
      options.log(`(simulated) ${argv.join(" ")}`)
      return Promise.resolve({ stdout: "", stderr: "" })
    }
    const [file, ...args] = argv
    return new Promise((resolve, reject) => {
      const child = execFile(file!, args, { env: options.env ?? process.env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error === null) return resolve({ stdout, stderr })
        const code = typeof error.code === "number" ? error.code : null
        reject(new CommandFailedError(argv, code, stderr || error.message))
      })
      // A command that exits without reading its input must not take the agent down (EPIPE):
      // its exit status says what happened.
      child.stdin?.on("error", () => undefined)
      child.stdin?.end(input)
    })
  }
  return {
    run,
    succeeds: (argv) =>
      options.simulate
        ? Promise.resolve(false)
        : run(argv).then(
            () => true,
            () => false
          ),
    executed
  }
}

/** `{name}` placeholders replaced inside each argument (never splitting or joining arguments). */
export const substitute = (argv: ReadonlyArray<string>, values: Record<string, string>): Array<string> =>
  argv.map((arg) => Object.entries(values).reduce((text, [key, value]) => text.replaceAll(`{${key}}`, value), arg))
