/**
 * What an API key may do, by role (chosen when the key is created):
 * - `read`: lists, gets, events, dry runs — nothing changes;
 * - `operate`: also every change that is not destructive (inventory, assignments, approvals,
 *   upgrades);
 * - `admin`: also destructive actions, credentials (kubeconfigs, agent credentials: with one a
 *   machine joins a cluster and, as a server, receives its admin kubeconfig), terminals and keys.
 * Each action declares the role it needs (`access` in its definition); the executor checks it
 * before anything else, so every front door — admin API, CLI, a future MCP server — gets the
 * same answer. A host embedding the SDK calls actions with full rights unless it passes a caller.
 */
import { Schema } from "effect"

export const ApiKeyRole = Schema.Literals(["read", "operate", "admin"])
export type ApiKeyRole = typeof ApiKeyRole.Type

const RANK: Record<ApiKeyRole, number> = { read: 0, operate: 1, admin: 2 }

export const roleAllows = (role: ApiKeyRole, needed: ApiKeyRole) => RANK[role] >= RANK[needed]

/** Who runs an action: an API key (its role decides), or the embedding host itself. */
export interface ActionCaller {
  readonly role: ApiKeyRole
  readonly api_key_id?: string
  /** The key's name, for audit records and certificates issued to it. */
  readonly name?: string
}

/** The embedding host: its own code, trusted with everything. */
export const HOST_CALLER: ActionCaller = { role: "admin", name: "host" }
