/** A destructive action: its confirmation summary shown first, run with the token only when confirmed. */
import { useEffect, useRef, useState } from "preact/hooks"
import { ApiError, run } from "../api"
import { Alert } from "../ui"

/**
 * The summary in a modal <dialog>: the browser keeps keyboard focus inside it, Escape cancels,
 * and focus goes back to the button that opened it.
 */
const ConfirmDialog = ({ label, summary, onConfirm, onCancel }: { label: string; summary: string; onConfirm: () => void; onCancel: () => void }) => {
  const dialog = useRef<HTMLDialogElement>(null)
  useEffect(() => {
    dialog.current?.showModal()
    return () => dialog.current?.close()
  }, [])
  return (
    <dialog ref={dialog} aria-label={`Confirm ${label}`} onCancel={onCancel}>
      <p>{summary}</p>
      <div class="actions">
        <button type="button" class="danger" onClick={onConfirm}>
          Confirm
        </button>
        <button type="button" onClick={onCancel} autofocus>
          Cancel
        </button>
      </div>
    </dialog>
  )
}

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
        <ConfirmDialog
          label={label}
          summary={pending.summary}
          onCancel={() => setPending(undefined)}
          onConfirm={async () => {
            const token = pending.token
            setPending(undefined)
            try {
              onDone(await run(action, { ...input, confirmation_token: token }))
            } catch (e) {
              setError((e as Error).message)
            }
          }}
        />
      )}
      <Alert message={error} />
    </span>
  )
}
