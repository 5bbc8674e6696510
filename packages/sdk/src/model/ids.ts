/**
 * Entity identifiers: opaque, random, prefixed by kind (`clu_…`, `net_…`), never sequential,
 * so an id reveals neither how many entities exist nor which was created first.
 */
import { randomBytes } from "node:crypto"
import { Schema } from "effect"

export const ID_PREFIXES = {
  account: "acc",
  template: "tpl",
  node: "node",
  instance: "ins",
  network: "net",
  peer: "peer",
  vip: "vip",
  cluster: "clu",
  kubernetesNode: "knode",
  approval: "apr",
  skillRun: "run",
  apiKey: "key"
} as const
export type IdKind = keyof typeof ID_PREFIXES

// Crockford's base32, lowercase: no ambiguous letters, safe in URLs, file names and k3s node names.
const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
const RANDOM_BYTES = 15 // 120 bits -> 24 characters

const randomSuffix = (): string => {
  const bytes = randomBytes(RANDOM_BYTES)
  let out = ""
  let buffer = 0
  let bits = 0
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += ALPHABET[(buffer >> bits) & 31]
    }
  }
  return out
}

const prefixedId = (kind: IdKind) => Schema.String.check(Schema.isPattern(new RegExp(`^${ID_PREFIXES[kind]}_[${ALPHABET}]{24}$`)))

export const AccountId = prefixedId("account").pipe(Schema.brand("AccountId"))
export type AccountId = typeof AccountId.Type
export const TemplateId = prefixedId("template").pipe(Schema.brand("TemplateId"))
export type TemplateId = typeof TemplateId.Type
export const NodeId = prefixedId("node").pipe(Schema.brand("NodeId"))
export type NodeId = typeof NodeId.Type
export const InstanceId = prefixedId("instance").pipe(Schema.brand("InstanceId"))
export type InstanceId = typeof InstanceId.Type
export const NetworkId = prefixedId("network").pipe(Schema.brand("NetworkId"))
export type NetworkId = typeof NetworkId.Type
export const PeerId = prefixedId("peer").pipe(Schema.brand("PeerId"))
export type PeerId = typeof PeerId.Type
export const VipId = prefixedId("vip").pipe(Schema.brand("VipId"))
export type VipId = typeof VipId.Type
export const ClusterId = prefixedId("cluster").pipe(Schema.brand("ClusterId"))
export type ClusterId = typeof ClusterId.Type
export const KubernetesNodeId = prefixedId("kubernetesNode").pipe(Schema.brand("KubernetesNodeId"))
export type KubernetesNodeId = typeof KubernetesNodeId.Type
export const ApprovalId = prefixedId("approval").pipe(Schema.brand("ApprovalId"))
export type ApprovalId = typeof ApprovalId.Type
export const SkillRunId = prefixedId("skillRun").pipe(Schema.brand("SkillRunId"))
export type SkillRunId = typeof SkillRunId.Type
export const ApiKeyId = prefixedId("apiKey").pipe(Schema.brand("ApiKeyId"))
export type ApiKeyId = typeof ApiKeyId.Type

interface IdTypes {
  account: AccountId
  template: TemplateId
  node: NodeId
  instance: InstanceId
  network: NetworkId
  peer: PeerId
  vip: VipId
  cluster: ClusterId
  kubernetesNode: KubernetesNodeId
  approval: ApprovalId
  skillRun: SkillRunId
  apiKey: ApiKeyId
}

/** A new random id of the given kind. */
export const newId = <K extends IdKind>(kind: K): IdTypes[K] => `${ID_PREFIXES[kind]}_${randomSuffix()}` as IdTypes[K]
