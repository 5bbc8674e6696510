/** Runs the runbook's phases 1-3 twice: through the Promise facade, then through Effect layers. */
import { Effect } from "effect"
import { phasesWithEffect } from "./with-effect"
import { phasesWithPromises } from "./with-promises"

const log = (line: string) => process.stdout.write(`${line}\n`)
await phasesWithPromises(log)
await Effect.runPromise(phasesWithEffect(log))
