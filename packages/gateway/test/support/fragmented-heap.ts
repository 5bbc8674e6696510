/**
 * Run by memory-reclaim.test.ts in its own `node --expose-gc` process: builds a heap whose
 * survivors are spread thinly over its pages (as a fan-out's garbage leaves it), runs the
 * gateway's collection (`exposedGc`), and prints V8's committed heap before, after a plain full
 * collection, and after the gateway's.
 */
import { exposedGc } from "../../src/memory-reclaim"

const collect = exposedGc()
if (collect === undefined) throw new Error("run with node --expose-gc")
const survivors: Array<unknown> = []
for (let round = 0; round < 30; round++) {
  const burst: Array<unknown> = []
  for (let i = 0; i < 100_000; i++) {
    const frame = { seq: i, peer: `peer-${i}`, allowed: [i, i + 1] }
    burst.push(frame)
    // One in twenty outlives the burst.
    if (i % 20 === 0) survivors.push(frame)
  }
}
const before = process.memoryUsage().heapTotal
// The baseline in the same heap: a plain full collection frees the garbage but keeps its pages.
;(globalThis as unknown as { gc: () => void }).gc()
const plain = process.memoryUsage().heapTotal
const plainUsed = process.memoryUsage().heapUsed
collect()
const after = process.memoryUsage().heapTotal
const used = process.memoryUsage().heapUsed
process.stdout.write(JSON.stringify({ before, plain, plainUsed, after, used, survivors: survivors.length }))
