/**
 * Tracks a bound on how far a replica's data lags its primary, for the `x-stale-ms` header of
 * the reads it serves (fencingMiddleware's `staleness` option).
 *
 * The replica calls `synced(asOf)` whenever it has applied everything the primary had
 * acknowledged at time `asOf`: the primary's clock reading carried by a replication message or
 * heartbeat (stamped by the primary after the writes it covers were acknowledged), or the time
 * a linearizable read of the primary's state was *issued*, once its result is applied. Then any
 * read served at time `now` reflects every write the primary acknowledged before `asOf`, so it is
 * at most `now - asOf` ms stale. The clocks compared are one machine's in the demo; across
 * machines add the clock skew bound.
 */
export class ReplicaClock {
  private asOf: number | undefined;

  /** Records that the replica reflects every write acknowledged up to `asOfMs` (default now). */
  synced(asOfMs: number = Date.now()): void {
    if (this.asOf === undefined || asOfMs > this.asOf) this.asOf = asOfMs;
  }

  /** Wall-clock ms of the latest sync point, or undefined before the first. */
  get syncedAt(): number | undefined {
    return this.asOf;
  }

  /** How stale the replica's data may be now, ms (0 or more); undefined before the first sync. */
  staleMs(now: number = Date.now()): number | undefined {
    return this.asOf === undefined ? undefined : Math.max(0, now - this.asOf);
  }
}
