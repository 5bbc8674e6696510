/**
 * Which instance id and credential the agent presents, and when it may change them.
 *
 * - What is stored in the state directory has worked before: it is tried first, and a
 *   credential given at start (file or environment) never overwrites it unverified. The given
 *   one is tried only when the gateway refuses the stored one (4001), and is stored once the
 *   gateway accepts it (a machine re-provisioned as a new instance, a credential replaced by an
 *   operator after the state was lost elsewhere).
 * - A rotated credential (an `agent_credential` push) is stored before it is acked, with the
 *   one it replaces kept as a fallback until the new one has been accepted once.
 */
import type { AgentState, StoredIdentity } from "./agent-state"

export interface Identity {
  readonly instanceId: string
  readonly credential: string
}

export interface AgentIdentityChooser {
  /** What the next hello presents. */
  readonly current: () => Identity
  /** The gateway refused `current()`: move to the next candidate; false when there is none. */
  readonly refused: () => boolean
  /** The gateway accepted `current()` (a welcome): it becomes the stored identity. */
  readonly accepted: () => void
  /** A rotated credential arrived over the session: stored now, presented from the next connect. */
  readonly rotated: (credential: string) => void
}

export const createIdentityChooser = (state: AgentState, given: { instanceId?: string | undefined; credential?: string | undefined }, log: (line: string) => void): AgentIdentityChooser => {
  const stored = state.storedIdentity()
  const candidates: Array<Identity> = []
  if (stored !== undefined) {
    candidates.push({ instanceId: stored.instanceId, credential: stored.credential })
    if (stored.previousCredential !== undefined) candidates.push({ instanceId: stored.instanceId, credential: stored.previousCredential })
  }
  if (given.credential !== undefined) {
    const instanceId = given.instanceId ?? stored?.instanceId
    if (instanceId === undefined) throw new Error("a credential was given without an instance id: pass --instance the first time")
    if (!candidates.some((c) => c.instanceId === instanceId && c.credential === given.credential)) candidates.push({ instanceId, credential: given.credential })
  }
  if (candidates.length === 0) {
    throw new Error(`no identity in ${state.dir}: give --instance and the credential (--credential-file or FLEETPLANE_AGENT_CREDENTIAL) the first time`)
  }
  let index = 0
  let storedNow: StoredIdentity | undefined = stored

  return {
    current: () => candidates[index]!,
    refused: () => {
      if (index + 1 >= candidates.length) return false
      index += 1
      log(`the gateway refused the credential; trying the next one known (${index + 1} of ${candidates.length})`)
      return true
    },
    accepted: () => {
      const identity = candidates[index]!
      if (storedNow?.instanceId === identity.instanceId && storedNow.credential === identity.credential && storedNow.previousCredential === undefined) return
      storedNow = { instanceId: identity.instanceId, credential: identity.credential }
      state.saveIdentity(storedNow)
      // From now on this is what is known to work; the others are not tried again.
      candidates.splice(0, candidates.length, identity)
      index = 0
    },
    rotated: (credential) => {
      const previous = candidates[index]!
      storedNow = { instanceId: previous.instanceId, credential, previousCredential: previous.credential }
      state.saveIdentity(storedNow)
      candidates.splice(0, candidates.length, { instanceId: previous.instanceId, credential }, previous)
      index = 0
    }
  }
}
