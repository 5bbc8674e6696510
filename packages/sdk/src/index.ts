/**
 * @fleetplane/sdk — the Fleetplane domain: accounts, SD-WAN networks, K3s clusters,
 * VIP failover, tokens and config generators.
 */
export * from "./model/ids"
