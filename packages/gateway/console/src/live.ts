/** Data that re-reads itself when an event it cares about arrives (no polling). */
import { useEffect, useState } from "preact/hooks"
import { onEvents, type FleetEvent } from "./api"

export const useLive = <T>(read: () => Promise<T>, relevant: (event: FleetEvent) => boolean, deps: ReadonlyArray<unknown> = []) => {
  const [value, setValue] = useState<T>()
  const [error, setError] = useState<string>()
  const [version, setVersion] = useState(0)
  useEffect(() => {
    let current = true
    read().then(
      (v) => current && (setValue(v), setError(undefined)),
      (e: Error) => current && setError(e.message)
    )
    return () => void (current = false)
  }, [version, ...deps])
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined
    // Bursts of events (a failover writes several) cost one re-read.
    return onEvents((event) => {
      if (!relevant(event) || timer !== undefined) return
      timer = setTimeout(() => {
        timer = undefined
        setVersion((v) => v + 1)
      }, 150)
    })
  }, deps)
  return { value, error, reload: () => setVersion((v) => v + 1) }
}
