/**
 * Allocation per call of an encode, in steady state.
 *
 * Method. After a warm-up (slabs and pools in steady state, code optimized), the call runs N times
 * and then 2N times, each after a full GC, keeping every output alive in a preallocated array;
 * the figures are the differences of the two runs divided by N, which cancels what a measurement
 * costs by itself (the GC profiler, the first call of a code path). The whole is repeated and the
 * median kept.
 * - heap bytes/call: V8 heap growth, plus what every GC in the window freed (v8.GCProfiler
 *   reports each GC's heap before and after), so collections during the loop do not hide
 *   allocations. JS objects only: ArrayBuffer contents live outside the V8 heap.
 * - ArrayBuffers/call: distinct ArrayBuffers behind the outputs. A pooled encoder that hands out
 *   views of a large slab scores a fraction (one slab per so many calls); a fresh buffer per call
 *   scores 1.
 * - ArrayBuffer bytes/call: the sizes of those ArrayBuffers added up: the slab bytes a pooled
 *   encoder consumes per call, or the buffer a non-pooled one allocates.
 * Both count only ArrayBuffers that an output keeps: temporary ones an encoder drops before
 * returning are not seen. (process.memoryUsage().arrayBuffers would see them, but it moves when
 * the background sweeper frees buffers of earlier garbage, which made it too noisy to use.)
 */
import v8 from "node:v8";
import { runInNewContext } from "node:vm";

/** Allocation per call of one encode. */
export interface Allocation {
  /** V8 heap bytes allocated per call. */
  heapBytes: number;
  /** New ArrayBuffers behind the outputs, per call. */
  arrayBuffers: number;
  /** Bytes of those ArrayBuffers, per call. */
  arrayBufferBytes: number;
  /** N of the method above. */
  calls: number;
}

/** The figures of one measurement. */
type Figures = Omit<Allocation, "calls">;

function byKey(value: (k: keyof Figures) => number): Figures {
  return { heapBytes: value("heapBytes"), arrayBuffers: value("arrayBuffers"), arrayBufferBytes: value("arrayBufferBytes") };
}

let gcFn: (() => void) | undefined;

/** A full, synchronous GC (node's --expose-gc, switched on at run time). */
function gc(): void {
  if (!gcFn) {
    v8.setFlagsFromString("--expose-gc");
    gcFn = runInNewContext("gc") as () => void;
  }
  gcFn();
}

function sample(encode: () => Uint8Array, n: number): Figures {
  const out = new Array<Uint8Array | undefined>(n).fill(undefined);
  gc();
  const profiler = new v8.GCProfiler();
  profiler.start();
  const heap0 = v8.getHeapStatistics().used_heap_size;
  for (let i = 0; i < n; i++) out[i] = encode();
  const heap1 = v8.getHeapStatistics().used_heap_size;
  const { statistics } = profiler.stop();
  let freed = 0;
  for (const s of statistics) freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
  const buffers = new Set<ArrayBufferLike>();
  for (const o of out) buffers.add(o!.buffer);
  let bytes = 0;
  for (const b of buffers) bytes += b.byteLength;
  return { heapBytes: heap1 - heap0 + freed, arrayBuffers: buffers.size, arrayBufferBytes: bytes };
}

/**
 * Measures the allocation per call of `encode` (see the module comment for the method), as the
 * median of `repeats` measurements: a GC that starts inside a window now and then skews one.
 */
export function measureAllocation(encode: () => Uint8Array, calls: number, repeats = 3): Allocation {
  for (let i = 0; i < Math.max(200, calls); i++) encode();
  const figures: Figures[] = [];
  for (let i = 0; i < repeats; i++) {
    const once = sample(encode, calls);
    const twice = sample(encode, 2 * calls);
    figures.push(byKey((k) => Math.max(0, (twice[k] - once[k]) / calls)));
  }
  const mid = (repeats - 1) >> 1;
  return { ...byKey((k) => figures.map((f) => f[k]).sort((a, b) => a - b)[mid]!), calls };
}
