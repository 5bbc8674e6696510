/**
 * Errors in the operator's words. The SDK and the admin API speak in action names and input
 * fields (`kubernetes_list_clusters`, `batch_pct`, rule numbers); someone who typed
 * `fleetplane upgrade start --batch-pct 0` should read about `--batch-pct` and
 * `fleetplane clusters list`. The error's code and details stay as the API gave them.
 */
import type { Command } from "commander"

/** The CLI command that does what an action does (for "… shows the ids" hints). */
const ACTION_COMMANDS: Record<string, string> = {
  kubernetes_list_clusters: "fleetplane clusters list",
  kubernetes_get_cluster: "fleetplane clusters get <cluster>",
  kubernetes_list_nodes: "fleetplane clusters nodes <cluster>",
  kubernetes_get_kubeconfig: "fleetplane kubeconfig get <cluster>",
  kubernetes_decommission_cluster: "fleetplane clusters decommission <cluster>",
  kubernetes_rotate_token: "fleetplane clusters rotate-token <cluster>",
  system_create_template: "fleetplane templates create",
  system_list_templates: "fleetplane templates list",
  system_assign_module_to_template: "fleetplane templates assign",
  system_create_node: "fleetplane nodes create",
  system_list_nodes: "fleetplane nodes list",
  system_provision_instance: "fleetplane instances provision",
  system_list_instances: "fleetplane instances list",
  system_get_instance: "fleetplane instances get <instance>",
  system_terminate_instance: "fleetplane instances terminate <instance>",
  system_rotate_agent_credential: "fleetplane instances rotate-credential <instance>",
  system_sdwan_create_network: "fleetplane networks create",
  system_sdwan_list_networks: "fleetplane networks list",
  system_sdwan_attach_peer: "fleetplane peers attach",
  system_sdwan_detach_peer: "fleetplane peers detach",
  system_sdwan_list_peers: "fleetplane peers list --network <network>",
  system_sdwan_list_virtual_ips: "fleetplane vips list",
  system_sdwan_failover_virtual_ip: "fleetplane failover <vip>",
  system_list_approvals: "fleetplane approvals list",
  system_approve: "fleetplane approvals approve <approval>",
  system_reject: "fleetplane approvals reject <approval>",
  system_list_events: "fleetplane events",
  execute_skill: "fleetplane upgrade start",
  skill_list_runs: "fleetplane upgrade list",
  skill_run_status: "fleetplane upgrade status <run>",
  skill_run_resume: "fleetplane upgrade resume <run>",
  skill_run_abort: "fleetplane upgrade abort <run>"
}

/** Input fields a command fills from a flag or an argument under another name (`--template` sets template_id). */
const fieldWords = new WeakMap<Command, Record<string, string>>()

/** Declares which flag or argument of `command` each input field comes from, for its errors. */
export const speaks = (command: Command, words: Record<string, string>) => {
  fieldWords.set(command, words)
  return command
}

const snake = (flag: string) => flag.replace(/^--/, "").replace(/-/g, "_")

/** The message with action names as CLI commands, input fields as the flags typed, and no rule numbers. */
export const inCliWords = (message: string, command: Command | undefined): string => {
  const words: Record<string, string> = {}
  for (const option of command?.options ?? []) if (option.long !== undefined) words[snake(option.long)] = option.long
  Object.assign(words, command === undefined ? {} : fieldWords.get(command))
  let text = message.replace(/\s*\(R\d+(?:[-–,]\s*R?\d+)*\)/g, "")
  // "(system_terminate_instance)" → "(`fleetplane instances terminate <instance>`)"; bare names too.
  text = text.replace(/`?\b([a-z]+(?:_[a-z0-9]+)+)\b`?/g, (match, word: string) => {
    if (ACTION_COMMANDS[word] !== undefined) return `\`${ACTION_COMMANDS[word]}\``
    if (words[word] !== undefined) return words[word]!
    return match
  })
  return text
}
