/**
 * Rotating an agent's credential without locking the agent out. The new credential is stored
 * (hashed) at once and delivered over the agent's session as an `agent_credential` push; the
 * previous one keeps working until the agent confirms it has the new one (it acks the push,
 * or authenticates with it) or the grace the operator chose runs out. Once confirmed, the
 * stored push is emptied: the database keeps only the hash, as at provisioning (R20).
 */
import { Effect } from "effect"
import type { AgentIdentity } from "../model/entities"
import type { AccountId, InstanceId } from "../model/ids"
import type { TxContext } from "../domain/transactor"
import type { InstanceRecord } from "../store/records"
import { putDesired } from "../config/desired-configs"
import { credentialMatches, hashSecret, newAgentCredential } from "./credentials"

/** The push's (kind, key): one per instance, each rotation a new version. */
export const AGENT_CREDENTIAL_KIND = "agent_credential"
export const AGENT_CREDENTIAL_KEY = "agent"

/** Which of an instance's credentials was presented; both are compared, so timing tells nothing. */
export const matchAgentCredential = (instance: InstanceRecord | undefined, credential: string, nowIso: string): "current" | "previous" | undefined => {
  const current = credentialMatches(credential, instance?.credential_hash)
  const previous = credentialMatches(credential, instance?.previous_credential_hash ?? undefined)
  if (current) return "current"
  const stillValid = (instance?.previous_credential_valid_until ?? "") > nowIso
  return previous && stillValid ? "previous" : undefined
}

export const rotateAgentCredential = (ctx: TxContext, accountId: AccountId, instance: InstanceRecord, hostname: string | null, graceHours: number, by: string | null) =>
  Effect.gen(function* () {
    const credential = newAgentCredential()
    const previousValidUntil = new Date(Date.parse(ctx.nowIso) + graceHours * 3_600_000).toISOString()
    yield* ctx.tx.rotateInstanceCredential(accountId, instance.id, hashSecret(credential), previousValidUntil, ctx.nowIso)
    yield* putDesired(ctx, instance.id, AGENT_CREDENTIAL_KIND, AGENT_CREDENTIAL_KEY, { credential })
    // The event says who rotated and until when the old credential works; never the credential.
    yield* ctx.emit(accountId, "system.agent_credential_rotated", { instance_id: instance.id, hostname, previous_valid_until: previousValidUntil, by })
    return { credential, previousValidUntil }
  })

/**
 * The agent has the newest rotated credential: it acked that push (`version`), or authenticated
 * with it (`version` undefined). The previous credential stops working and the stored push is
 * emptied. An ack of an older rotation confirms nothing: the agent does not have the newest yet.
 */
export const confirmAgentCredential = (ctx: TxContext, identity: AgentIdentity, version: number | undefined) =>
  Effect.gen(function* () {
    const current = yield* ctx.tx.redactDesiredConfig(identity.instanceId as InstanceId, AGENT_CREDENTIAL_KIND, AGENT_CREDENTIAL_KEY, version, {})
    if (!current && version !== undefined) return
    yield* ctx.tx.retirePreviousCredential(identity.instanceId as InstanceId)
    yield* ctx.emit(identity.accountId, "agent.credential_confirmed", { instance_id: identity.instanceId, hostname: identity.hostname })
  })
