/**
 * `npm run demo:real`: the runbook on real WireGuard interfaces, as root, on this machine. Each
 * node is a network namespace with wireguard-go, brought up by the reference agent in its real
 * mode against a real gateway (only k3s is a stand-in: it reports a pod subnet and answers on
 * the API port). Then the prod VIP's holder is killed, and the failover is timed in the data
 * plane: until the VIP answers from every other node. Everything is removed at the end.
 */
import { API_PORT, eventually, startRunbookLab } from "../lab/runbook-lab"

const HEARTBEAT_MS = Number(process.env.DEMO_HEARTBEAT_MS ?? 500)
const SILENCE_MS = Number(process.env.DEMO_SILENCE_MS ?? 1_500)
const say = (line: string) => process.stdout.write(`${line}\n`)

say(`Fleetplane on real nodes: network namespaces, wireguard-go, heartbeats every ${HEARTBEAT_MS} ms, silence after ${SILENCE_MS} ms\n`)
const runbook = await startRunbookLab({ heartbeatIntervalMs: HEARTBEAT_MS, silenceThresholdMs: SILENCE_MS, log: (line) => say(`  ${line}`) })
try {
  const { ops, prod, staging } = runbook
  for (const cluster of (await ops.actions.kubernetes_list_clusters({})).clusters) {
    const detail = await ops.actions.kubernetes_get_cluster({ id: cluster.id })
    say(`\ncluster ${cluster.name} (${cluster.ip_family}): ${cluster.status}, API ${cluster.api_endpoint}, cluster CIDR ${cluster.cluster_cidr}, services ${cluster.service_cidr}`)
    for (const node of (await ops.actions.kubernetes_list_nodes({ cluster_id: cluster.id })).nodes) say(`  ${node.hostname ?? node.instance_id}  ${node.role}  ${node.status}`)
    for (const warning of detail.warnings) say(`  warning: ${warning}`)
  }
  const members = runbook.clusterMembers("k3s-prod")
  const holderName = await eventually(() => runbook.vipAnswer(members[0]!, prod.vip), "the prod VIP")
  say(`\nfrom every prod node, ${prod.vip}:${API_PORT} answers: ${holderName}`)
  if (staging !== undefined) say(`from every staging node, [${staging.vip}]:${API_PORT} answers: ${await runbook.vipAnswer(runbook.clusterMembers("k3s-staging")[0]!, staging.vip)}`)

  const holder = runbook.members.get(holderName)!
  const observers = members.filter((m) => m !== holder)
  say(`\nkilling ${holderName}: its agent and its WireGuard interface`)
  const died = performance.now()
  await runbook.lab.killNode(holder.node)
  const newHolder = await eventually(
    async () => {
      const answers = await Promise.all(observers.map((m) => runbook.vipAnswer(m, prod.vip, 200)))
      return answers[0] !== undefined && answers[0] !== holderName && answers.every((a) => a === answers[0]) ? answers[0] : undefined
    },
    "the VIP answering from a new holder",
    SILENCE_MS + 30_000,
    20
  )
  const failoverMs = performance.now() - died
  say(`the VIP answers again from every other node, now from ${newHolder}: ${Math.round(failoverMs)} ms after the holder died`)
  say(`(silence threshold ${SILENCE_MS} ms; target: within threshold + 1 s = ${SILENCE_MS + 1_000} ms: ${failoverMs <= SILENCE_MS + 1_000 ? "met" : "missed"})`)
  const events = (await ops.actions.system_list_events({ limit: 1000 })).events.filter((e) => e.type.startsWith("sdwan.vip_"))
  for (const event of events.slice(-4)) say(`  event ${event.type} ${JSON.stringify(event.data).slice(0, 160)}`)
} finally {
  await runbook.close()
}
say("\nlab removed.")
process.exit(0)
