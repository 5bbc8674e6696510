/**
 * A gateway in its own process for tests that kill it (SIGKILL) or run several side by side:
 * `GatewayOptions` as JSON in argv[2]; reports `{ type: "ready", agentUrl, adminUrl }` over IPC.
 */
import { startGateway, type GatewayOptions } from "../../src/index"

const options = JSON.parse(process.argv[2] ?? "{}") as GatewayOptions
const gateway = await startGateway({ logLevel: "error", ...options })
process.send?.({ type: "ready", agentUrl: gateway.agentUrl, adminUrl: gateway.adminUrl })
process.on("SIGTERM", () => void gateway.close().then(() => process.exit(0)))
