/**
 * Group commit for config acks: the acks that arrive within one turn of the event loop (a
 * fan-out to 1,000 peers brings 1,000 of them at once) are recorded in one transaction, at most
 * `maxBatch` each, instead of one transaction per ack. Each caller still waits for its own ack
 * to be committed, so a session's work stays in order.
 */
import type { AgentIdentity, AgentPortService, Fleet } from "@fleetplane/sdk"
import type { ConfigAckBody } from "@fleetplane/agent-protocol"

interface Waiting {
  readonly identity: AgentIdentity
  readonly ack: ConfigAckBody
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
}

export const createAckBatcher = (deps: { readonly fleet: Fleet; readonly port: AgentPortService }, maxBatch = 500) => {
  let waiting: Array<Waiting> = []
  let scheduled = false
  const commit = async () => {
    scheduled = false
    while (waiting.length > 0) {
      const batch = waiting.slice(0, maxBatch)
      waiting = waiting.slice(batch.length)
      try {
        await deps.fleet.run(deps.port.configAcks(batch.map(({ identity, ack }) => ({ identity, ack }))))
        for (const entry of batch) entry.resolve()
      } catch (error) {
        for (const entry of batch) entry.reject(error)
      }
    }
  }
  return {
    /** Resolves once this ack is committed (with the others of its turn). */
    record: (identity: AgentIdentity, ack: ConfigAckBody) =>
      new Promise<void>((resolve, reject) => {
        waiting.push({ identity, ack, resolve, reject })
        if (!scheduled) {
          scheduled = true
          setImmediate(() => void commit())
        }
      })
  }
}

export type AckBatcher = ReturnType<typeof createAckBatcher>
