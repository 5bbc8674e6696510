/**
 * @fleetplane/gateway — the edge gateway: persistent agent sessions over WebSocket,
 * silence detection, config push, the admin API and the `fleetplane` CLI.
 */
export { AuthThrottle, DEFAULT_AUTH_THROTTLE, type AuthThrottleOptions, type ThrottleVerdict } from "./agent/auth-throttle"
