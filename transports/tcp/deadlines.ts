/**
 * The longest timeout TTHeader carries, in ms (about 292 years): Kitex reads RPCTimeout and
 * StreamTimeout into a Go time.Duration, int64 nanoseconds. A longer deadline is sent as this.
 */
export const MAX_WIRE_TIMEOUT_MS = 9_223_372_036_854;

/**
 * What a call with `deadline` puts in RPCTimeout (StreamTimeout for a stream): the ms left,
 * rounded up, at most MAX_WIRE_TIMEOUT_MS. 0 or less: the deadline has passed, send nothing.
 */
export function wireTimeout(deadline: number, now: number = Date.now()): number {
  const ms = Math.ceil(deadline - now);
  return ms < MAX_WIRE_TIMEOUT_MS ? ms : MAX_WIRE_TIMEOUT_MS;
}
