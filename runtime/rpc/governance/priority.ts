import type { Headers } from "../transport.js";

/**
 * A call's priority class, for shedding under overload (after Google's criticality and Envoy's
 * priorities): "critical" calls are shed last, "sheddable" ones first, "normal" (the default) in
 * between. A caller sets it with the `x-priority` request header.
 */
export type Priority = "critical" | "normal" | "sheddable";

/** The request header that carries a call's {@link Priority}. */
export const PRIORITY_HEADER = "x-priority";

/** The priority a call's headers ask for: "normal" when absent or not one of the classes. */
export function priorityOf(headers: Headers): Priority {
  const p = headers[PRIORITY_HEADER];
  return p === "critical" || p === "sheddable" ? p : "normal";
}

/**
 * How much of a concurrency limit `limit` a call of priority `p` may use: sheddable calls half,
 * normal calls all of it, critical calls a quarter more (at least one more), so that under a
 * limit the critical calls are the last refused.
 */
export function shareOf(limit: number, p: Priority): number {
  if (p === "sheddable") return Math.max(1, Math.floor(limit / 2));
  if (p === "critical") return Math.max(limit + 1, Math.ceil(limit * 1.25));
  return limit;
}
