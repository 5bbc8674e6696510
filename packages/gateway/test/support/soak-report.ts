/**
 * The reliability suites' figures, one row per suite, for the table `pnpm test:soak` prints
 * at the end (scripts/workspace.mjs). Rows go to FLEETPLANE_SOAK_REPORT when it is set.
 */
import { appendFileSync } from "node:fs"

export interface SoakRow {
  readonly suite: string
  /** Faults injected: kills, silences, dropped sessions, restarts, hostile frames... */
  readonly faults: number
  /** Inputs tried: operator requests, commands, fuzzed frames... */
  readonly inputs: number
  /** Agent sessions held during the run. */
  readonly sessions: number
  readonly violations: number
  readonly lost: number
}

export const recordSoak = (row: SoakRow) => {
  const target = process.env.FLEETPLANE_SOAK_REPORT
  if (target !== undefined && target !== "") appendFileSync(target, `${JSON.stringify(row)}\n`)
}
