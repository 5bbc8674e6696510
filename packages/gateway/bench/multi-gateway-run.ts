/** `pnpm bench:gateways`: only the several-gateways figures (bench/multi-gateway.ts), on a throwaway PostgreSQL. */
import { describeAcrossGateways, measureAcrossGateways } from "./multi-gateway"
// @ts-expect-error: a plain-JS script shared with the tests' globalSetup
import { startPostgres } from "../../../scripts/throwaway-postgres.mjs"

const postgres = await startPostgres()
try {
  console.log(describeAcrossGateways(await measureAcrossGateways(postgres.url)))
} finally {
  postgres.stop()
}
process.exit(0)
