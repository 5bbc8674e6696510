/** Upgrades: rolling module upgrade runs with their progress, batch by batch and node by node. */
import { useState } from "preact/hooks"
import { run } from "../api"
import { useCatalog } from "../catalog"
import { useLive } from "../live"
import { Alert } from "../ui"

interface RunRow {
  readonly run_id: string
  readonly status: string
  readonly created_at: string
  readonly progress: { batches: number; next_batch: number; completed: number; failed: number; in_flight: number }
}
interface RunState {
  readonly plan: { batches: ReadonlyArray<ReadonlyArray<string>>; total: number }
  readonly module_name: string
  readonly in_flight: Record<string, unknown>
  readonly completed: ReadonlyArray<string>
  readonly failed: ReadonlyArray<{ instance_id: string; reason: string }>
}

const readRuns = async () => {
  const [{ runs }, { instances }] = (await Promise.all([run("skill_list_runs"), run("system_list_instances")])) as [
    { runs: Array<RunRow> },
    { instances: Array<{ id: string; hostname: string | null }> }
  ]
  const states = await Promise.all(runs.map((r) => run("skill_run_status", { run_id: r.run_id }) as Promise<{ state: RunState }>))
  const hostnames = new Map(instances.map((i) => [i.id, i.hostname ?? i.id]))
  return runs.map((r, i) => ({ ...r, state: states[i]!.state, hostnames }))
}

const instanceState = (state: RunState, id: string) =>
  state.completed.includes(id) ? "upgraded" : state.failed.some((f) => f.instance_id === id) ? "failed" : id in state.in_flight ? "upgrading" : "waiting"

export const UpgradesPage = () => {
  const catalog = useCatalog()
  const [error, setError] = useState<string>()
  const runs = useLive(readRuns, (event) => event.type.startsWith("skill."))
  const change = async (action: "skill_run_abort" | "skill_run_resume", runId: string) => {
    setError(undefined)
    try {
      await run(action, { run_id: runId })
      runs.reload()
    } catch (e) {
      setError((e as Error).message)
    }
  }
  return (
    <section aria-labelledby="upgrades-title">
      <h1 id="upgrades-title">Upgrades</h1>
      <Alert message={runs.error ?? error} />
      {runs.value === undefined ? (
        <p class="muted">Loading…</p>
      ) : runs.value.length === 0 ? (
        <p class="muted">No rolling upgrades yet (fleetplane upgrade start).</p>
      ) : (
        runs.value.map((r) => (
          <article data-run={r.run_id} aria-labelledby={`run-${r.run_id}`}>
            <h2 id={`run-${r.run_id}`}>
              {r.state.module_name} <span class={`status-${r.status}`}>{r.status}</span>
            </h2>
            <p class="muted">
              started {r.created_at} · {r.progress.completed} upgraded, {r.progress.failed} failed, {r.progress.in_flight} upgrading of {r.state.plan.total}
            </p>
            <progress max={r.state.plan.total} value={r.progress.completed + r.progress.failed} aria-label="nodes done" />
            <div class="actions">
              {r.status === "running" && catalog.may("skill_run_abort") && (
                <button type="button" class="danger" onClick={() => change("skill_run_abort", r.run_id)}>
                  Abort
                </button>
              )}
              {r.status === "halted" && catalog.may("skill_run_resume") && (
                <button type="button" onClick={() => change("skill_run_resume", r.run_id)}>
                  Resume
                </button>
              )}
            </div>
            <ol>
              {r.state.plan.batches.map((batch, index) => (
                <li data-batch={index + 1}>
                  Batch {index + 1}:{" "}
                  {batch.map((id) => (
                    <span class={`batch-node status-${instanceState(r.state, id)}`} data-instance={r.hostnames.get(id) ?? id}>
                      {r.hostnames.get(id) ?? id} ({instanceState(r.state, id)}){" "}
                    </span>
                  ))}
                </li>
              ))}
            </ol>
          </article>
        ))
      )}
    </section>
  )
}
