/**
 * What the store keeps beyond the public entities: the owning account on every row and
 * the secrets that must never reach a result, a log or an event.
 */
import type { ConfigKind } from "@fleetplane/agent-protocol"
import type {
  Approval,
  KubernetesCluster,
  KubernetesNode,
  Network,
  Node,
  NodeInstance,
  Peer,
  SkillRunStatus,
  Template,
  VirtualIp
} from "../model/entities"
import type { AccountId, InstanceId } from "../model/ids"

export interface Owned {
  readonly account_id: AccountId
}

export type TemplateRecord = Template & Owned
export type NodeRecord = Node & Owned
export type InstanceRecord = NodeInstance &
  Owned & {
    readonly credential_hash: string
    /** After a rotation, the credential the agent had: accepted until the agent confirms the new one or the grace ends. */
    readonly previous_credential_hash?: string | null
    readonly previous_credential_valid_until?: string | null
  }
export type NetworkRecord = Network &
  Owned & {
    /** Set when the overlay /64 was allocated from the account's ULA /48 (not chosen by the operator). */
    readonly ula_global_id: string | null
    readonly subnet_index: number | null
  }
export type PeerRecord = Peer & Owned
export type VipRecord = VirtualIp &
  Owned & {
    /** The epoch at which the holder's silence was last reported (one event per incident, R15). */
    readonly silent_epoch: number | null
    /** When the current holder got the VIP (ISO 8601); null on rows from before it was recorded. */
    readonly holder_since: string | null
    /**
     * What the incident at `silent_epoch` is, or the last one was (R26); null on rows from before
     * it was recorded, which were all `holder_silent`, and after a promotion.
     */
    readonly incident: VipIncident | null
    /** R26: the instances that probe the VIP (the sample last published in `vip_routes`), by instance id. */
    readonly probe_reporters: ReadonlyArray<InstanceId>
  }

/**
 * R26: `holder_silent` — the holder stopped heartbeating and the peers do not say the VIP answers
 * (the failover skill ran); `gateway_unreachable` — silent, but most reporting peers still reach
 * the VIP (no failover); `vip_unreachable` — heartbeating, but most reporting peers have not
 * reached the VIP for the threshold (the failover skill ran).
 */
export type VipIncident = "holder_silent" | "gateway_unreachable" | "vip_unreachable"
export type ClusterRecord = KubernetesCluster &
  Owned & {
    readonly bootstrap_instance_id: InstanceId
    readonly ca_cert_pem: string
    readonly ca_key_pem: string
    readonly token_secret: string
    readonly token_version: number
    /** The admin client certificate pushed to control-plane nodes in their kubeconfig. */
    readonly admin_cert_pem: string
    readonly admin_key_pem: string
  }
/** A cluster as lists read it: everything but its key material and certificates, which never leave the store on a list. */
export type ClusterSummary = Omit<ClusterRecord, "ca_cert_pem" | "ca_key_pem" | "token_secret" | "admin_cert_pem" | "admin_key_pem">
export type KubernetesNodeRecord = KubernetesNode & Owned
export type ApprovalRecord = Approval & Owned

/** The desired version of one config for one instance, and what the agent acknowledged. */
export interface DesiredConfigRecord {
  readonly instance_id: InstanceId
  readonly kind: ConfigKind
  readonly key: string
  readonly version: number
  readonly payload: unknown
  readonly updated_at: string
  readonly acked_version: number | null
  readonly ack_error: string | null
}

export interface ConfirmationRecord {
  readonly token_hash: string
  readonly account_id: AccountId
  readonly action: string
  readonly input_hash: string
  readonly expires_at: number
}

export interface SkillRunRecord extends Owned {
  readonly id: string
  readonly skill: string
  readonly status: SkillRunStatus
  readonly inputs: unknown
  readonly state: unknown
  readonly created_at: string
  readonly updated_at: string
}

export interface ApiKeyRecord extends Owned {
  readonly id: string
  readonly name: string
  readonly role: "read" | "operate" | "admin"
  readonly key_hash: string
  readonly created_at: string
  readonly revoked_at: string | null
}
