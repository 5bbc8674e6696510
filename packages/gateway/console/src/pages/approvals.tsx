/** Approvals: pending decisions with their summaries; approve or reject (when the key's role allows). */
import { useState } from "preact/hooks"
import { approve, reject, run } from "../api"
import { useCatalog } from "../catalog"
import { useLive } from "../live"
import { Alert } from "../ui"

interface Approval {
  readonly id: string
  readonly summary: string
  readonly cluster_id: string
  readonly epoch: number
  readonly created_at: string
}

export const ApprovalsPage = () => {
  const catalog = useCatalog()
  const [error, setError] = useState<string>()
  const approvals = useLive(
    () => run("system_list_approvals", { status: "pending" }).then((r: { approvals: Array<Approval> }) => r.approvals),
    (e) => e.type.startsWith("system.approval") || e.type.startsWith("sdwan.vip")
  )
  const decide = async (decision: () => Promise<unknown>) => {
    setError(undefined)
    try {
      await decision()
      approvals.reload()
    } catch (e) {
      setError((e as Error).message)
    }
  }
  return (
    <section aria-labelledby="approvals-title">
      <h1 id="approvals-title">Approvals</h1>
      <Alert message={approvals.error ?? error} />
      {approvals.value === undefined ? (
        <p class="muted">Loading…</p>
      ) : approvals.value.length === 0 ? (
        <p class="muted">Nothing waits for a decision.</p>
      ) : (
        <ul>
          {approvals.value.map((approval) => (
            <li data-approval={approval.id}>
              <p>{approval.summary}</p>
              <p class="muted">
                requested {approval.created_at} · epoch {approval.epoch}
              </p>
              {catalog.may("system_approve") && (
                <div class="actions">
                  <button type="button" class="primary" onClick={() => decide(() => approve(approval.id))}>
                    Approve
                  </button>
                  <button type="button" onClick={() => decide(() => reject(approval.id, "rejected in the console"))}>
                    Reject
                  </button>
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}
