/**
 * Run by memory-reclaim.test.ts in its own `node --expose-gc` process: builds a heap whose
 * survivors are spread thinly over its pages (as a fan-out's garbage leaves it), runs the
 * gateway's collection (`exposedGc`), and prints V8's committed heap before and after.
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
collect()
const after = process.memoryUsage().heapTotal
process.stdout.write(JSON.stringify({ before, after, survivors: survivors.length }))
