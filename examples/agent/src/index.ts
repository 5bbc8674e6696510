/** The Fleetplane reference agent, as a library (the `fleetplane-agent` CLI wraps it). */
export { startReferenceAgent, type ReferenceAgent, type ReferenceAgentOptions } from "./reference-agent"
export { AgentState } from "./agent-state"
export { DEFAULT_APPLY_COMMANDS, K3S_CONFIG_PATH, K3S_TOKEN_PATH, kubeconfigPath, wireguardPath, type ApplyCommands } from "./config-appliers"
