/**
 * Gives memory back after a fan-out (#20: RSS back within 20% of its level before a fan-out,
 * within 30 s). A burst of pushes (a fleet coming up) grows V8's heap; the garbage it leaves is
 * collected only when the heap next fills, and the pages it freed are returned only by V8's
 * memory reducer — with heartbeats still allocating, minutes later (measured: 30 s after 1,000
 * agents were configured, 240 MB of heap of which ~70 MB live).
 *
 * So: when the heap has grown by `growthBytes` over its size after the last collection and the
 * pushes have gone quiet, one full collection. It frees the fan-out's garbage at once (measured:
 * heap used 180 -> 70 MB, 47 ms pause, at 1,000 agents) but does not compact, so the heap's pages
 * come back when V8's memory reducer follows it, some 15-20 s later instead of a minute or more.
 * The pause blocks the event loop, so it runs at most once per `growthBytes` of growth and never
 * during a burst. It needs V8's `gc` (node --expose-gc; the systemd unit sets NODE_OPTIONS);
 * without it, V8 returns the memory on its own schedule.
 */
import { getHeapStatistics } from "node:v8"
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
}

const MIB = 2 ** 20

/** One look (the gateway calls it every few seconds): answers whether it collected. */
export const makeMemoryReclaim = (options: MemoryReclaimOptions) => {
  const heapBytes = options.heapBytes ?? (() => getHeapStatistics().total_heap_size)
  const growthBytes = options.growthBytes ?? 64 * MIB
  const quietPushes = options.quietPushes ?? 100
  let floor = heapBytes()
  let pushesBefore = options.pushesSent()
  return (): boolean => {
    const heap = heapBytes()
    const pushes = options.pushesSent()
    const quiet = pushes - pushesBefore < quietPushes
    pushesBefore = pushes
    // It came down by itself: measure growth from there.
    if (heap < floor) floor = heap
    if (heap < floor + growthBytes || !quiet) return false
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

/** The V8 full collection this process was given (node --expose-gc), if any. */
export const exposedGc = (): (() => void) | undefined => {
  const gc = (globalThis as { gc?: unknown }).gc
  return typeof gc === "function" ? () => void gc() : undefined
}
