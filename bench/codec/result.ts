/** The row type of the codec benchmark, shared by its report and its charts. */
import type { Size } from "./data.js";
import type { Op } from "./peers.js";

/** One row of the benchmark: a library (variant) doing one operation on one fixture. */
export interface Result {
  size: Size;
  op: Op;
  /** Library, and variant when it has several rows for the op ("meridian encodeTo"). */
  label: string;
  library: string;
  /** Calls per second, from the mean latency (1e6 / meanUs). */
  opsPerSec: number;
  meanUs: number;
  p50Us: number;
  p99Us: number;
  /** Relative margin of error of the mean, percent. */
  rmePct: number;
  /** Latency samples taken in the reported round; each is the mean of `callsPerSample` calls. */
  samples: number;
  callsPerSample: number;
  /** Mean and p99 of every round (NaN where the round failed); the row reports the median round. */
  rounds: { meanUs: number; p99Us: number }[];
  /**
   * This row against the baseline's row of the same size and op: the median over the rounds of
   * the ratio within each round (a round runs both a few seconds apart, so a slow phase of the
   * machine hits both). Absent without a baseline.
   */
  vsBaseline?: { opsPerSec: number; p99: number };
  /** Set when the task threw; the figures are then NaN. */
  error?: string;
}
