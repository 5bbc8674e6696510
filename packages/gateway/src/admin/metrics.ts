/**
 * The gateway's Prometheus metrics, through prom-client: its own counters, gauges and the push
 * latency histogram, plus the process and Node.js runtime metrics prom-client collects
 * (CPU, memory, handles, GC, and event-loop lag with its percentiles).
 *
 * Labels: push latency by config kind and, for the network-wide pushes (`wireguard`,
 * `vip_routes`), by network; never by agent (series would grow with the fleet).
 * Counters on the hot path (a heartbeat each) are plain numbers handed to prom-client when
 * scraped, so counting costs an addition.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client"

/** A counter whose increments are plain additions; prom-client reads it at scrape time. */
export interface FastCounter {
  readonly inc: (by?: number) => void
  readonly value: number
}

/** Config kinds whose key is a network id: their push latency is labelled with it. */
const NETWORK_KEYED_KINDS = new Set(["wireguard", "vip_routes"])

export class Metrics {
  readonly registry = new Registry()
  private readonly pushLatency = new Histogram({
    name: "fleetplane_push_ack_latency_seconds",
    help: "Time from sending a config push to receiving its ack, by config kind and (for WireGuard and VIP route pushes) network.",
    labelNames: ["kind", "network_id"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry]
  })

  constructor() {
    collectDefaultMetrics({ register: this.registry })
  }

  counter(name: string, help: string): FastCounter {
    let value = 0
    let reported = 0
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.inc(value - reported)
        reported = value
      }
    })
    return {
      inc: (by = 1) => {
        value += by
      },
      get value() {
        return value
      }
    }
  }

  gauge(name: string, help: string, read: () => number) {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read())
      }
    })
  }

  observePushLatency(kind: string, key: string, seconds: number) {
    this.pushLatency.observe({ kind, network_id: NETWORK_KEYED_KINDS.has(kind) ? key : "" }, seconds)
  }

  get contentType(): string {
    return this.registry.contentType
  }

  render(): Promise<string> {
    return this.registry.metrics()
  }
}

/** The gateway's named metrics, created once per gateway (each has its own registry). */
export const gatewayMetrics = () => {
  const metrics = new Metrics()
  return {
    metrics,
    heartbeats: metrics.counter("fleetplane_heartbeats_received_total", "Heartbeats received from agents."),
    authFailures: metrics.counter("fleetplane_agent_auth_failures_total", "Agent authentications refused."),
    authThrottled: metrics.counter("fleetplane_agent_auth_throttled_total", "Agent hellos refused without a credential check (4008): too many failures from their address."),
    slowConsumers: metrics.counter("fleetplane_agent_slow_consumer_disconnects_total", "Sessions closed with 4010 because the agent stopped reading."),
    terminalCreditViolations: metrics.counter("fleetplane_terminal_credit_violations_total", "Terminals closed because the agent sent output beyond its credit."),
    refusals: metrics.counter("fleetplane_agent_report_refusals_total", "Agent reports refused (pod subnets, WireGuard keys in use, malformed endpoints)."),
    protocolErrors: metrics.counter("fleetplane_agent_protocol_errors_total", "Sessions closed for undecodable or out-of-order frames."),
    silenceIncidents: metrics.counter("fleetplane_silence_incidents_total", "sdwan.vip_holder_silent events."),
    sessionsOpened: metrics.counter("fleetplane_agent_sessions_opened_total", "Agent sessions opened (hellos accepted); a jump is a fleet reconnecting."),
    pushesSent: metrics.counter("fleetplane_pushes_sent_total", "Config pushes sent to agents."),
    pushesAcked: metrics.counter("fleetplane_pushes_acked_total", "Config pushes acknowledged as applied."),
    pushesFailed: metrics.counter("fleetplane_pushes_failed_total", "Config pushes acknowledged as failed."),
    joinsAccepted: metrics.counter("fleetplane_joins_accepted_total", "Join requests accepted."),
    joinsRejected: metrics.counter("fleetplane_joins_rejected_total", "Join requests rejected.")
  }
}
export type GatewayMetrics = ReturnType<typeof gatewayMetrics>
