/** Entry point of the `fleetplane` binary. */
import { createInterface } from "node:readline/promises"
import { runCli } from "./cli/main"

const ask = process.stdin.isTTY
  ? async (question: string) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr })
      try {
        return await rl.question(question)
      } finally {
        rl.close()
      }
    }
  : undefined

const code = await runCli(process.argv.slice(2), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), ask })
process.exitCode = code
