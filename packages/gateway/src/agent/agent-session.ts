/**
 * One authenticated agent connection: what it has applied, what was sent to it and not yet
 * acknowledged, the VIPs it holds, and a bounded, ordered queue of work. Work (an Effect on the
 * fleet's services) runs one task at a time, in arrival order, on a fiber that exists only while
 * there is work: at 10,000 mostly idle sessions a parked fiber per session would cost ~2.5 KB
 * each (measured; BENCHMARKS.md), more than the whole session.
 */
import { randomBytes } from "node:crypto"
import type { WebSocket } from "ws"
import { CloseCode, closeReason, encodeConfigPush, encodeFrame, type AppliedConfig, type ConfigKind, type ConfigPushBody, type GatewayMessage } from "@fleetplane/agent-protocol"
import type { AgentIdentity, FleetServices } from "@fleetplane/sdk"
import { Cause, Effect } from "effect"

/** What the session needs from a terminal bridge (see terminal/terminal-bridge.ts). */
export interface TerminalBridgeLike {
  readonly fromAgentData: (data: Uint8Array) => void
  readonly fromAgentExit: (exitCode: number | null, signal: string | null) => void
  readonly fromAgentClose: (reason: string) => void
  readonly agentGone: () => void
}

const configKey = (kind: string, key: string) => `${kind}\u0000${key}`

/** Tells this process's session ids from an earlier run's in the agents' logs. */
const PROCESS_TAG = randomBytes(4).toString("hex")
let sessionsStarted = 0

/** How long a slow consumer gets to read up to its 4010 close frame before its socket is destroyed. */
export const SLOW_CONSUMER_GRACE_MS = 2_000

/** Work a session does in order: store calls through the SDK, then what it sends. A failure is logged; the session goes on. */
export type SessionTask = Effect.Effect<void, unknown, FleetServices>

/**
 * Tasks a session may have waiting. More means its work is that far behind what the agent and
 * the fleet ask of it: it is closed as a slow consumer (4010) and resumes from the store on
 * reconnect (pushes are level-triggered), which costs less than doing a thousand stale tasks.
 */
export const MAX_QUEUED_TASKS = 1_024

/** What every session of an endpoint shares: its send limit, how its work runs, where its failures are reported. */
export interface SessionHooks {
  readonly maxBufferedBytes: number
  /** Starts the fiber that runs the session's tasks (`nextTask`) until none is left. */
  readonly startWork: (session: AgentSession) => void
  /** A task (or work done at once, `runNowOrEnqueue`) failed: reported; the session goes on. */
  readonly onTaskFailure: (session: AgentSession, cause: Cause.Cause<unknown>) => void
  /** Called once when the session is closed as a slow consumer: too much unsent data, or too much work waiting. */
  readonly onSlowConsumer: (session: AgentSession, backlog: { readonly buffered_bytes?: number; readonly queued_tasks?: number }) => void
}

export class AgentSession {
  // The maps below are made on first use: at 10,000 sessions an empty Map is ~190 bytes each.
  /** Versions the agent has applied (from hello, then from acks). */
  private applied: Map<string, number> | undefined
  /** Versions sent and not yet acknowledged, with when they were sent (for the latency histogram). */
  private inFlight: Map<string, { version: number; sentAt: number }> | undefined
  private held: Map<string, number> | undefined
  private peerSetVersions: Map<string, number> | undefined
  private openTerminals: Map<string, TerminalBridgeLike> | undefined
  /** Set by the ping sweep; a pong sets it back. */
  alive = true
  closed = false
  /** Tasks waiting, in order (made on first use: most sessions only heartbeat). */
  private work: Array<SessionTask> | undefined
  /** Whether a fiber is running this session's tasks. */
  private working = false

  /**
   * The peer-set version the agent has of each network, or will have once what was sent is
   * applied (a session's pushes are applied in order): `wireguard` pushes carry the change from
   * it. Forgotten when a `wireguard` push fails: the next one carries the full set.
   */
  get peerVersions(): Map<string, number> {
    return (this.peerSetVersions ??= new Map())
  }

  /** The VIPs the agent holds, by id, with their epochs (made on first use: most agents hold none). */
  get heldVips(): Map<string, number> {
    return (this.held ??= new Map())
  }

  /** Operator terminals open over this session, by channel id (made on first use). */
  get terminals(): Map<string, TerminalBridgeLike> {
    return (this.openTerminals ??= new Map())
  }

  /** A number, not a string, per session: the id's text is made only when it is sent or logged. */
  private readonly seq = ++sessionsStarted

  /** This session's id (in the welcome and the logs): unique within this gateway process's life. */
  get id(): string {
    return `${PROCESS_TAG}-${this.seq.toString(36)}`
  }

  constructor(
    readonly identity: AgentIdentity,
    readonly socket: WebSocket,
    readonly capabilities: ReadonlyArray<string>,
    /** One object shared by every session of an endpoint (not closures per session). */
    private readonly hooks: SessionHooks
  ) {}

  /** Runs `task` after every earlier task of this session; a closed session takes no more work. */
  enqueue(task: SessionTask): void {
    if (this.closed) return
    const work = (this.work ??= [])
    if (work.length >= MAX_QUEUED_TASKS) {
      this.closeSlowConsumer({ queued_tasks: work.length })
      return
    }
    work.push(task)
    if (!this.working) {
      this.working = true
      this.hooks.startWork(this)
    }
  }

  /**
   * Does `now` at once if no task is queued or running — it then still comes after everything
   * asked of the session before — or else queues `task` to do it in turn. For work that needs no
   * store call when done at once, such as sending pushes already made: `now` answers false when
   * it cannot be done as it stands (`task` is queued instead). An idle session, the usual one in
   * a fan-out, is spared a fiber: at 10,000 sessions starting one each was ~6% of a join's CPU.
   */
  runNowOrEnqueue(now: () => boolean, task: SessionTask): void {
    if (this.closed) return
    if (this.working) return this.enqueue(task)
    let done: boolean
    try {
      done = now()
    } catch (error) {
      this.reportFailure(Cause.die(error))
      return
    }
    if (!done) this.enqueue(task)
  }

  /** Reports a failed task (the session goes on with the next). */
  reportFailure(cause: Cause.Cause<unknown>): void {
    this.hooks.onTaskFailure(this, cause)
  }

  /** The next task for the session's fiber; none once the queue is empty or the session closed (the fiber then ends). */
  nextTask(): SessionTask | undefined {
    const task = this.closed ? undefined : this.work?.shift()
    if (task === undefined) {
      this.work = undefined
      this.working = false
    }
    return task
  }

  /**
   * Sends one message. A reader that falls behind by more than `maxBufferedBytes` is closed
   * with 4010: pushes are level-triggered, so it resumes exactly where it is on reconnect.
   * Its close frame queues behind what it has not read; a reader that is truly stuck is
   * destroyed after a short grace, so its buffer is freed without waiting for TCP.
   */
  send(message: GatewayMessage, onWritten?: () => void): boolean {
    if (!this.admits()) return false
    this.socket.send(encodeFrame(message), { binary: true }, onWritten === undefined ? undefined : () => onWritten())
    return true
  }

  /**
   * Sends one config push. A WireGuard push with a long peer-set change is one WebSocket message
   * in two fragments: the session's own part, then the change, encoded once and shared by every
   * session it reaches — a publish reaching 1,000 sessions holds the change's bytes once, not
   * 1,000 times (a short change is copied into one frame: `encodeConfigPush`).
   */
  sendPush(push: ConfigPushBody): boolean {
    if (!this.admits()) return false
    const pieces = encodeConfigPush(push)
    pieces.forEach((piece, i) => this.socket.send(piece, { binary: true, fin: i === pieces.length - 1 }))
    return true
  }

  /** Whether more may be queued; a reader too far behind is closed as a slow consumer. */
  private admits(): boolean {
    if (this.closed) return false
    const buffered = this.socket.bufferedAmount
    if (buffered > this.hooks.maxBufferedBytes) {
      this.closeSlowConsumer({ buffered_bytes: buffered })
      return false
    }
    return true
  }

  private closeSlowConsumer(backlog: { readonly buffered_bytes?: number; readonly queued_tasks?: number }) {
    this.close(CloseCode.SlowConsumer, "send queue full; reconnect and resume")
    setTimeout(() => this.socket.terminate(), SLOW_CONSUMER_GRACE_MS).unref()
    this.hooks.onSlowConsumer(this, backlog)
  }

  /** Closes the session; its operator terminals end now, not when the agent finishes the close handshake. */
  close(code: number, reason: string) {
    if (this.closed) return
    this.closed = true
    this.socket.close(code, closeReason(reason))
    this.endTerminals()
  }

  endTerminals() {
    if (this.openTerminals === undefined) return
    for (const bridge of [...this.openTerminals.values()]) bridge.agentGone()
  }

  recordApplied(entries: ReadonlyArray<{ readonly kind: string; readonly key: string; readonly version: number }>) {
    if (entries.length === 0) return
    const applied = (this.applied ??= new Map())
    for (const { kind, key, version } of entries) applied.set(configKey(kind, key), version)
  }

  /** Whether the agent has this version (or newer) of the config, applied or on its way. */
  has(push: { readonly kind: string; readonly key: string; readonly version: number }): boolean {
    const composite = configKey(push.kind, push.key)
    return (this.applied?.get(composite) ?? 0) >= push.version || (this.inFlight?.get(composite)?.version ?? 0) >= push.version
  }

  /** Forgets what was applied or sent of one config, so its current version is sent again. */
  forget(config: { readonly kind: string; readonly key: string }) {
    const composite = configKey(config.kind, config.key)
    this.applied?.delete(composite)
    this.inFlight?.delete(composite)
  }

  /** For each (kind, key), the newest version the agent has or is being sent: only newer ones need reading. */
  knownVersions(except?: { readonly kind: string; readonly key: string }): Array<AppliedConfig> {
    const known = new Map<string, AppliedConfig>()
    for (const [composite, version] of [...(this.applied ?? []), ...[...(this.inFlight ?? [])].map(([c, f]) => [c, f.version] as const)]) {
      const [kind, key] = composite.split("\u0000") as [ConfigKind, string]
      if (except !== undefined && except.kind === kind && except.key === key) continue
      if ((known.get(composite)?.version ?? 0) < version) known.set(composite, { kind, key, version })
    }
    return [...known.values()]
  }

  markSent(push: ConfigPushBody, at: number) {
    ;(this.inFlight ??= new Map()).set(configKey(push.kind, push.key), { version: push.version, sentAt: at })
    if (push.kind === "wireguard") this.peerVersions.set(push.payload.network_id, push.payload.peers.version)
  }

  /** Records an ack; returns how long the push took, when it was in flight. */
  markAcked(kind: string, key: string, version: number, applied: boolean, at: number): number | undefined {
    const composite = configKey(kind, key)
    const flight = this.inFlight?.get(composite)
    if (flight !== undefined && flight.version <= version) this.inFlight!.delete(composite)
    if (applied) {
      const known = (this.applied ??= new Map())
      known.set(composite, Math.max(version, known.get(composite) ?? 0))
    }
    return flight !== undefined && flight.version === version ? at - flight.sentAt : undefined
  }

  get pendingPushes() {
    return this.inFlight?.size ?? 0
  }
}

/** A session's work: its tasks one after another, a failure reported and the next run, until its queue is empty (the fiber then ends). */
export const sessionWork = (session: AgentSession) =>
  Effect.gen(function* () {
    for (let task = session.nextTask(); task !== undefined; task = session.nextTask()) {
      yield* Effect.catchCause(task, (cause) => Effect.sync(() => session.reportFailure(cause)))
    }
  })
