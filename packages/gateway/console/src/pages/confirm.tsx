/** A destructive action: its confirmation summary shown first, run with the token only when confirmed. */
import { useState } from "preact/hooks"
import { ApiError, run } from "../api"
import { Alert } from "../ui"

export const DestructiveButton = ({
  action,
  input,
  label,
  onDone
}: {
  action: string
  input: Record<string, unknown>
  label: string
  onDone: (result: unknown) => void
}) => {
  const [pending, setPending] = useState<{ summary: string; token: string }>()
  const [error, setError] = useState<string>()
  const start = async () => {
    setError(undefined)
    try {
      onDone(await run(action, input))
    } catch (e) {
      if (e instanceof ApiError && e.code === "confirmation_required")
        setPending({ summary: String(e.details.summary ?? e.message), token: String(e.details.confirmation_token) })
      else setError((e as Error).message)
    }
  }
  return (
    <span>
      <button type="button" class="danger" onClick={start}>
        {label}
      </button>
      {pending !== undefined && (
        <div role="dialog" aria-modal="true" aria-label={`Confirm ${label}`} class="error">
          <p>{pending.summary}</p>
          <div class="actions">
            <button
              type="button"
              class="danger"
              onClick={async () => {
                const token = pending.token
                setPending(undefined)
                try {
                  onDone(await run(action, { ...input, confirmation_token: token }))
                } catch (e) {
                  setError((e as Error).message)
                }
              }}
            >
              Confirm
            </button>
            <button type="button" onClick={() => setPending(undefined)}>
              Cancel
            </button>
          </div>
        </div>
      )}
      <Alert message={error} />
    </span>
  )
}
