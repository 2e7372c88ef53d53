import { ConfigError } from "../errors.js";

/** Options of an {@link AdaptiveLimit}. */
export interface AdaptiveLimitOptions {
  /** The limit to start from. Default 20. */
  initialLimit?: number;
  /** The limit never falls below this. Default 4. */
  minLimit?: number;
  /** The limit never rises above this. Default 1000. */
  maxLimit?: number;
  /**
   * How much slower than usual calls may get before the limit comes down: 1.5 lets the recent
   * latency reach 1.5 times the long-term one. Default 1.5.
   */
  tolerance?: number;
  /** How far each sample moves the limit towards its new value (0..1]. Default 0.2. */
  smoothing?: number;
  /** Samples the long-term latency averages over. Default 600. */
  longWindow?: number;
}

/** The defaults of {@link AdaptiveLimitOptions}. */
export const DEFAULT_ADAPTIVE_LIMIT: Required<AdaptiveLimitOptions> = {
  initialLimit: 20,
  minLimit: 4,
  maxLimit: 1000,
  tolerance: 1.5,
  smoothing: 0.2,
  longWindow: 600,
};

/**
 * A concurrency limit that finds itself, after Netflix's concurrency-limits (Gradient2): it
 * compares the latency of recent calls with its long-term average. While they are alike the
 * limit grows by a queue allowance (the square root of the limit), probing for more; once recent
 * calls are slower than `tolerance` times the long-term latency (a queue is building in the
 * handler's dependencies or on the CPU) it shrinks in proportion. A call that failed from
 * overload (a timeout, RESOURCE_EXHAUSTED downstream) counts as a drop and shrinks it too. The
 * limit only grows while it is used: at less than half of it in flight, latency says nothing
 * about a higher limit.
 */
export class AdaptiveLimit {
  readonly minLimit: number;
  readonly maxLimit: number;
  private readonly tolerance: number;
  private readonly smoothing: number;
  private readonly longWeight: number;
  private estimate: number;
  /** The long-term average latency, ms (0 until the first sample). */
  longRtt = 0;

  constructor(options: AdaptiveLimitOptions = {}) {
    const o = { ...DEFAULT_ADAPTIVE_LIMIT, ...options };
    if (!(o.minLimit >= 1) || !(o.maxLimit >= o.minLimit) || !(o.tolerance >= 1) || !(o.smoothing > 0 && o.smoothing <= 1) || !(o.longWindow >= 1)) {
      throw new ConfigError("INVALID_OPTION", "adaptive limit: needs 1 <= minLimit <= maxLimit, tolerance >= 1, 0 < smoothing <= 1, longWindow >= 1");
    }
    this.minLimit = o.minLimit;
    this.maxLimit = o.maxLimit;
    this.tolerance = o.tolerance;
    this.smoothing = o.smoothing;
    this.longWeight = 2 / (o.longWindow + 1);
    this.estimate = Math.min(o.maxLimit, Math.max(o.minLimit, o.initialLimit));
  }

  /** The current limit: calls allowed in flight at once. */
  get limit(): number {
    return Math.floor(this.estimate);
  }

  /**
   * Learns from one finished call: it took `rttMs`, `inflight` calls were in flight when it
   * started, and `dropped` says whether it failed from overload.
   */
  sample(rttMs: number, inflight: number, dropped: boolean): void {
    if (dropped) {
      this.set(this.estimate * 0.9);
      return;
    }
    const rtt = Math.max(rttMs, 0.001);
    if (this.longRtt === 0) this.longRtt = rtt;
    else this.longRtt += this.longWeight * (rtt - this.longRtt);
    // After a long overload the long-term average has crept up; let it come back down quickly
    // once calls are fast again, or the limit would stay high for a whole window.
    if (this.longRtt / rtt > 2) this.longRtt *= 0.95;
    if (inflight < this.estimate / 2) return;
    const gradient = Math.max(0.5, Math.min(1, (this.tolerance * this.longRtt) / rtt));
    const next = this.estimate * gradient + Math.sqrt(this.estimate);
    this.set(this.estimate * (1 - this.smoothing) + next * this.smoothing);
  }

  private set(estimate: number): void {
    this.estimate = Math.min(this.maxLimit, Math.max(this.minLimit, estimate));
  }
}
