/**
 * What the overload benchmark's processes share: the peers, and the open-loop run they exchange
 * (run.ts asks, load.ts answers).
 */

/** The servers compared: Meridian over TCP with its default admission control, without it, and grpc-js. */
export const OVERLOAD_PEERS = ["meridian", "meridian-no-admission", "grpc-js"] as const;
export type OverloadPeer = (typeof OVERLOAD_PEERS)[number];

/** An open-loop run: `rate` calls per second for `ms`, each with `timeoutMs`; during bursts the rate is `burst.factor` times higher. */
export interface OpenSpec {
  address: string;
  rate: number;
  ms: number;
  timeoutMs: number;
  burst?: { factor: number; everyMs: number; lengthMs: number };
}

/** What an open-loop run measured on the client side (latencies in ms). */
export interface OpenResult {
  sent: number;
  seconds: number;
  /** Answered OK within the deadline. */
  ok: number;
  okP50Ms: number;
  okP99Ms: number;
  /** Refused by the server before its handler ran (shed, or expired in its queue). */
  refused: number;
  refusedP50Ms: number;
  refusedP99Ms: number;
  /** p99 of how long refused calls had waited when the server refused them, as it says (`x-queue-delay-ms`); Meridian only. */
  refusedWaitP99Ms?: number;
  /**
   * p99 of the time from sending an attempt to the server's refusal of it, requeued attempts
   * included (`refusedP99Ms` is to the end of a refused call, after the client's requeue gave up);
   * Meridian only.
   */
  refusedAttemptP99Ms?: number;
  /**
   * p99 of the load generator's own event-loop delay while it sent: when it is high, the
   * generator was the bottleneck, and its calls were sent late and their answers read late.
   */
  loadEventLoopDelayP99Ms?: number;
  /** No answer within the deadline. */
  timedOut: number;
  otherErrors: number;
  firstError?: string;
}
