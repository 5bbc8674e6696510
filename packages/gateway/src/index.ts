/**
 * @fleetplane/gateway — the edge gateway: persistent agent sessions over WebSocket,
 * silence detection, config push, the admin API and the `fleetplane` CLI.
 */
export { startGateway, type Gateway, type GatewayOptions } from "./gateway"
export { AGENT_PATH } from "./agent/agent-endpoint"
export { AuthThrottle, DEFAULT_AUTH_THROTTLE, type AuthThrottleOptions, type ThrottleVerdict } from "./agent/auth-throttle"
export { createLogger, type Logger, type LogLevel } from "./log"
export { buildProgram, runCli } from "./cli/main"
export { AdminApi, ApiKeyAuth, EventStreamItem, DOCS_PATH, OPENAPI_PATH } from "./admin/admin-api"
export { BodyTooLargeError, InternalError, TooManyFailedKeysError, type AdminError } from "./admin/api-errors"
