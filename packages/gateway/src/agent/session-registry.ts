/** One live session per instance: a newer authenticated connection replaces the older one (4003). */
import { CloseCode } from "@fleetplane/agent-protocol"
import type { AgentSession } from "./agent-session"

export class SessionRegistry {
  private readonly byInstance = new Map<string, AgentSession>()

  /** Registers a session, closing any earlier session of the same instance. */
  register(session: AgentSession) {
    const previous = this.byInstance.get(session.identity.instanceId)
    this.byInstance.set(session.identity.instanceId, session)
    if (previous !== undefined && previous !== session) previous.close(CloseCode.SessionReplaced, "another connection authenticated as this instance")
  }

  /** Forgets a session, unless a newer one already replaced it. */
  remove(session: AgentSession) {
    if (this.byInstance.get(session.identity.instanceId) === session) this.byInstance.delete(session.identity.instanceId)
  }

  get(instanceId: string): AgentSession | undefined {
    return this.byInstance.get(instanceId)
  }

  all(): IterableIterator<AgentSession> {
    return this.byInstance.values()
  }

  get size() {
    return this.byInstance.size
  }
}
