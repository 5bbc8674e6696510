/**
 * Gives memory back after a fan-out (#20: RSS back within 20% of its level before a fan-out,
 * within 30 s), or after a fleet reconnects (a gateway restarted: thousands of hellos). A burst
 * of pushes (a fleet coming up) or of sessions opening grows V8's heap; the garbage it leaves is
 * collected only when the heap next fills, and the pages it freed are returned only by V8's
 * memory reducer — with heartbeats still allocating, minutes later (measured: 30 s after 1,000
 * agents were configured, 240 MB of heap of which ~70 MB live).
 *
 * So, after a burst (a check that saw at least `burstAtLeast` pushes and new sessions since the
 * one before), at the first check that finds it quiet, if the heap has grown by `growthBytes` over
 * its size after the last collection: one full collection that compacts (decided then, once). A
 * plain one frees the garbage but leaves the survivors spread over the heap's pages, which stay
 * committed until V8's memory reducer compacts 15-20 s later (measured: heap used 180 -> 70 MB,
 * committed 176 -> 168 MB). Compacting releases the empty pages at once (measured at 1,000 agents:
 * committed 287 -> 104 MB, RSS 448 -> 265 MB within 0.5 s).
 *
 * The pause blocks the event loop (~170 ms at 1,000 agents, ~270 ms at 10,000 sessions), so it
 * is taken once per burst, never during one, and never on growth alone: with 10,000 sessions
 * heartbeating, V8's heap regrows 64 MiB within a minute of a compaction with no burst at all
 * (measured: 137 -> 206 MB, and it collected again), so collecting on growth would pause the
 * gateway each time the heap regrew. A trickle of pushes (acks, renewals) or of agents
 * reconnecting never adds up to a burst. It needs V8's `gc` (node --expose-gc; the systemd unit
 * sets NODE_OPTIONS); without it, V8 returns the memory on its own schedule.
 */
import { getHeapStatistics, setFlagsFromString } from "node:v8"
import type { Logger } from "./log"

export interface MemoryReclaimOptions {
  /** V8's full collection (`globalThis.gc` under --expose-gc). */
  readonly gc: () => void
  /**
   * Pushes sent plus agent sessions opened so far (the gateway's counters): a burst is going on
   * while it moves. 10,000 agents connecting left RSS ~130 MB above its level after a compacting
   * collection (BENCHMARKS.md, "Memory per session, a sixth time"), as a fan-out does.
   */
  readonly work: () => number
  readonly log: Logger
  /** The heap's size now (default: V8's total heap size). */
  readonly heapBytes?: () => number
  /** Growth over the size after the last collection that calls for one (default 64 MiB). */
  readonly growthBytes?: number
  /** Less work than this since the last check: quiet (default 100). */
  readonly quietBelow?: number
  /** At least this much work between two checks: a fan-out or a reconnecting fleet (default 500). */
  readonly burstAtLeast?: number
}

const MIB = 2 ** 20

/** One look (the gateway calls it every few seconds): answers whether it collected. */
export const makeMemoryReclaim = (options: MemoryReclaimOptions) => {
  const heapBytes = options.heapBytes ?? (() => getHeapStatistics().total_heap_size)
  const growthBytes = options.growthBytes ?? 64 * MIB
  const quietBelow = options.quietBelow ?? 100
  const burstAtLeast = options.burstAtLeast ?? 500
  let floor = heapBytes()
  let workBefore = options.work()
  // A burst happened that the next quiet check decides on.
  let burst = false
  return (): boolean => {
    const heap = heapBytes()
    const work = options.work()
    const quiet = work - workBefore < quietBelow
    if (work - workBefore >= burstAtLeast) burst = true
    workBefore = work
    // It came down by itself: measure growth from there.
    if (heap < floor) floor = heap
    if (!burst || !quiet) return false
    // The burst is over: what it left is in the heap now (or V8 collected it along the way).
    // Decided once: later growth (heartbeats) is not the burst's, and a collection then would be
    // a pause at a random moment under load.
    burst = false
    if (heap < floor + growthBytes) return false
    const started = performance.now()
    options.gc()
    const after = heapBytes()
    floor = after
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
