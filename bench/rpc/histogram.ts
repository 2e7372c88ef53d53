/**
 * A latency histogram in the HDR style: log-linear buckets, 64 per power of two (values within
 * 1.6%), from 1 ns to 2^32 ns (4.3 s, larger values are clamped). Recording is an increment.
 */
export class Histogram {
  private readonly counts = new Float64Array(128 + 26 * 64);
  count = 0;
  private sum = 0;
  max = 0;

  /** Records one value in nanoseconds. */
  record(ns: number): void {
    let v = ns < 1 ? 1 : ns > 0xffffffff ? 0xffffffff : Math.round(ns);
    if (v > 0xffffffff) v = 0xffffffff;
    this.counts[bucketOf(v)]!++;
    this.count++;
    this.sum += ns;
    if (ns > this.max) this.max = ns;
  }

  /** The value below which `q` (0..1) of the recorded values fall, in nanoseconds. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(valueOf(i), this.max);
    }
    return this.max;
  }

  /** Mean in nanoseconds. */
  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }
}

function bucketOf(v: number): number {
  if (v < 128) return v;
  const m = 31 - Math.clz32(v); // 7..31
  const shift = m - 6;
  return 128 + (m - 7) * 64 + ((v >>> shift) - 64);
}

/** The middle of bucket `i`. */
function valueOf(i: number): number {
  if (i < 128) return i;
  const m = Math.floor((i - 128) / 64) + 7;
  const sub = ((i - 128) % 64) + 64;
  const shift = m - 6;
  return sub * 2 ** shift + 2 ** (shift - 1);
}
