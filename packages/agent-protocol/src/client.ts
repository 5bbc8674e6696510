/**
 * @fleetplane/agent-protocol/client — the agent side of a session (connect, hello,
 * heartbeats, pushes and acks, VIP directives, reconnect with backoff and jitter).
 */
export { AgentClient, backoffDelay, DEFAULT_BACKOFF, type AgentClientOptions, type AgentHandlers, type BackoffOptions, type NodeState, type TerminalChannel, type WelcomeNetwork } from "./client/agent-client"
export { GatewayList, MAX_ADDRESSES_PER_NAME, MAX_KNOWN_GATEWAYS, resolveAllAddresses, type DialTarget, type ResolveAddresses } from "./client/gateway-list"
export { MAX_PROBE_TIMEOUT_MS, probeForAnswer, probeTimeoutMs, VipProber, type AnswerProbe, type VipProberOptions } from "./client/vip-prober"
