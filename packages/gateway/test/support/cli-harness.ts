/** Runs `fleetplane ...args` in-process, as the CLI tests do: its exit code and output. */
import { runCli } from "../../src/index"

export const runFleetplane = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  let out = ""
  let err = ""
  const code = await runCli(args, { out: (t) => (out += t), err: (t) => (err += t), ask: undefined }, env)
  return { code, out, err, json: () => JSON.parse(out) }
}
