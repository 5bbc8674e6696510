/**
 * Gives memory back after a fan-out (#20: RSS back within 20% of its level before a fan-out,
 * within 30 s). A burst of pushes (a fleet coming up) grows V8's heap; the garbage it leaves is
 * collected only when the heap next fills, and the pages it freed are returned only by V8's
 * memory reducer — with heartbeats still allocating, minutes later (measured: 30 s after 1,000
 * agents were configured, 240 MB of heap of which ~70 MB live).
 *
 * So, after a fan-out (a check that saw at least `fanOutPushes` pushes since the one before),
 * once the pushes have gone quiet and if the heap has grown by `growthBytes` over its size after
 * the last collection: one full collection that compacts. A plain one frees the garbage but
 * leaves the survivors spread over the heap's pages, which stay committed until V8's memory
 * reducer compacts 15-20 s later (measured: heap used 180 -> 70 MB, committed 176 -> 168 MB).
 * Compacting releases the empty pages at once (measured at 1,000 agents: committed 287 -> 104 MB,
 * RSS 448 -> 265 MB within 0.5 s).
 *
 * The pause blocks the event loop (~170 ms at 1,000 agents, ~270 ms at 10,000 sessions), so it
 * is taken once per fan-out, never during one, and never on growth alone: with 10,000 sessions
 * heartbeating, V8's heap regrows 64 MiB within a minute of a compaction with no fan-out at all
 * (measured: 137 -> 206 MB, and it collected again), so collecting on growth would pause the
 * gateway each time the heap regrew. A trickle of pushes (acks, renewals) never adds up to a
 * fan-out. It needs V8's `gc` (node --expose-gc; the systemd unit sets NODE_OPTIONS); without
 * it, V8 returns the memory on its own schedule.
 */
import { getHeapStatistics, setFlagsFromString } from "node:v8"
import type { Logger } from "./log"

export interface MemoryReclaimOptions {
  /** V8's full collection (`globalThis.gc` under --expose-gc). */
  readonly gc: () => void
  /** Pushes sent so far (the gateway's counter): a burst is going on while it moves. */
  readonly pushesSent: () => number
  readonly log: Logger
  /** The heap's size now (default: V8's total heap size). */
  readonly heapBytes?: () => number
  /** Growth over the size after the last collection that calls for one (default 64 MiB). */
  readonly growthBytes?: number
  /** Fewer pushes than this since the last check: quiet (default 100). */
  readonly quietPushes?: number
  /** At least this many pushes between two checks: a fan-out (default 500). */
  readonly fanOutPushes?: number
}

const MIB = 2 ** 20

/** One look (the gateway calls it every few seconds): answers whether it collected. */
export const makeMemoryReclaim = (options: MemoryReclaimOptions) => {
  const heapBytes = options.heapBytes ?? (() => getHeapStatistics().total_heap_size)
  const growthBytes = options.growthBytes ?? 64 * MIB
  const quietPushes = options.quietPushes ?? 100
  const fanOutPushes = options.fanOutPushes ?? 500
  let floor = heapBytes()
  let pushesBefore = options.pushesSent()
  // A fan-out went out since the last collection.
  let fannedOut = false
  return (): boolean => {
    const heap = heapBytes()
    const pushes = options.pushesSent()
    const quiet = pushes - pushesBefore < quietPushes
    if (pushes - pushesBefore >= fanOutPushes) fannedOut = true
    pushesBefore = pushes
    // It came down by itself: measure growth from there.
    if (heap < floor) floor = heap
    if (!fannedOut || !quiet || heap < floor + growthBytes) return false
    const started = performance.now()
    options.gc()
    const after = heapBytes()
    floor = after
    fannedOut = false
    options.log.info("gateway.memory_reclaimed", {
      heap_before_mb: Math.round(heap / MIB),
      heap_after_mb: Math.round(after / MIB),
      pause_ms: Math.round(performance.now() - started)
    })
    return true
  }
}

/**
 * The compacting full collection, if this process was given V8's `gc` (node --expose-gc).
 * `gc()` alone compacts only where V8's heuristics say; V8's compact-on-every-full-GC flag, set
 * for this one collection, makes it compact everywhere. Changing a V8 flag while running is
 * allowed for this kind of flag (Node starts V8 with --no-freeze-flags-after-init, for
 * `v8.setFlagsFromString`); should a runtime refuse, the collection still runs, uncompacted.
 */
export const exposedGc = (): (() => void) | undefined => {
  const gc = (globalThis as { gc?: unknown }).gc
  if (typeof gc !== "function") return undefined
  return () => {
    const compacting = setV8Flag("--compact-on-every-full-gc")
    try {
      gc()
    } finally {
      if (compacting) setV8Flag("--no-compact-on-every-full-gc")
    }
  }
}

const setV8Flag = (flag: string) => {
  try {
    setFlagsFromString(flag)
    return true
  } catch {
    return false
  }
}
