/** Gateway metrics in Prometheus text format: plain counters, gauges and one histogram. */
export class Metrics {
  readonly counters = new Map<string, { help: string; value: number }>()
  private readonly gauges = new Map<string, { help: string; read: () => number }>()
  private readonly histogram = {
    name: "fleetplane_push_ack_latency_seconds",
    help: "Time from sending a config push to receiving its ack.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    counts: new Array<number>(12).fill(0),
    sum: 0,
    count: 0
  }

  counter(name: string, help: string) {
    const entry = { help, value: 0 }
    this.counters.set(name, entry)
    return {
      inc: (by = 1) => {
        entry.value += by
      },
      get value() {
        return entry.value
      }
    }
  }

  gauge(name: string, help: string, read: () => number) {
    this.gauges.set(name, { help, read })
  }

  observePushLatency(seconds: number) {
    const h = this.histogram
    const index = h.buckets.findIndex((bound) => seconds <= bound)
    h.counts[index === -1 ? h.buckets.length : index]! += 1
    h.sum += seconds
    h.count += 1
  }

  render(): string {
    const lines: Array<string> = []
    for (const [name, { help, value }] of this.counters) lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`)
    for (const [name, { help, read }] of this.gauges) lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${read()}`)
    const h = this.histogram
    lines.push(`# HELP ${h.name} ${h.help}`, `# TYPE ${h.name} histogram`)
    let cumulative = 0
    h.buckets.forEach((bound, i) => {
      cumulative += h.counts[i]!
      lines.push(`${h.name}_bucket{le="${bound}"} ${cumulative}`)
    })
    lines.push(`${h.name}_bucket{le="+Inf"} ${h.count}`, `${h.name}_sum ${h.sum}`, `${h.name}_count ${h.count}`)
    return `${lines.join("\n")}\n`
  }
}

/** The gateway's named metrics, created once. */
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
    pushesSent: metrics.counter("fleetplane_pushes_sent_total", "Config pushes sent to agents."),
    pushesAcked: metrics.counter("fleetplane_pushes_acked_total", "Config pushes acknowledged as applied."),
    pushesFailed: metrics.counter("fleetplane_pushes_failed_total", "Config pushes acknowledged as failed."),
    joinsAccepted: metrics.counter("fleetplane_joins_accepted_total", "Join requests accepted."),
    joinsRejected: metrics.counter("fleetplane_joins_rejected_total", "Join requests rejected.")
  }
}
export type GatewayMetrics = ReturnType<typeof gatewayMetrics>
