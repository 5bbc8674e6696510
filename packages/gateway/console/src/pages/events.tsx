/** Events: the account's log, live, filterable by type and cluster. */
import { useEffect, useState } from "preact/hooks"
import { onEvents, run, type FleetEvent } from "../api"
import { Alert, Table } from "../ui"

const KEEP = 500

export const EventsPage = () => {
  const [events, setEvents] = useState<ReadonlyArray<FleetEvent>>([])
  const [type, setType] = useState("")
  const [cluster, setCluster] = useState("")
  const [error, setError] = useState<string>()
  useEffect(() => {
    run("system_list_events", { latest: true, limit: 100 }).then(
      (page: { events: Array<FleetEvent> }) => setEvents((live) => merge(page.events, live)),
      (e: Error) => setError(e.message)
    )
    return onEvents((event) => setEvents((current) => merge(current, [event])))
  }, [])
  const shown = events.filter((e) => (type === "" || e.type.includes(type)) && (cluster === "" || String(e.data.cluster_id ?? "").includes(cluster)))
  return (
    <section aria-labelledby="events-title">
      <h1 id="events-title">Events</h1>
      <Alert message={error} />
      <div class="filters">
        <label>
          Type contains
          <input value={type} onInput={(e) => setType((e.target as HTMLInputElement).value)} placeholder="agent." />
        </label>
        <label>
          Cluster id contains
          <input value={cluster} onInput={(e) => setCluster((e.target as HTMLInputElement).value)} placeholder="clu_" />
        </label>
      </div>
      <Table columns={["#", "Time", "Type", "Data"]}>
        {[...shown].reverse().map((event) => (
          <tr data-event={event.type}>
            <td>{event.seq}</td>
            <td>{event.at}</td>
            <td>{event.type}</td>
            <td>
              <code>{JSON.stringify(event.data)}</code>
            </td>
          </tr>
        ))}
      </Table>
    </section>
  )
}

/** By sequence number, each once, the newest KEEP. */
const merge = (a: ReadonlyArray<FleetEvent>, b: ReadonlyArray<FleetEvent>) => {
  const bySeq = new Map<number, FleetEvent>()
  for (const event of [...a, ...b]) bySeq.set(event.seq, event)
  return [...bySeq.values()].sort((x, y) => x.seq - y.seq).slice(-KEEP)
}
