/** How long one window of {@link PeerShares} lasts, ms: shares are taken over the last one or two. */
export const SHARE_WINDOW_MS = 1000;
/** What a call costs besides its payload, in payload bytes: reading, routing and answering it. */
const CALL_COST_BYTES = 512;
/**
 * A peer is light while its share of what the server read lately is below its fair share (an
 * equal split between the peers it read from) divided by this. Together the light peers' calls
 * are then less than 1/LIGHT_DIVISOR of what the server reads, so sparing them from shedding
 * leaves at least three quarters of the load to the shedder.
 */
const LIGHT_DIVISOR = 4;
/**
 * A peer is heavy while its share is above its fair share times this: with two peers, over three
 * quarters of what the server read; with eight, over three sixteenths. Peers that send alike are
 * never heavy, however many, so a burst spread over many connections is not judged as a flood.
 */
const HEAVY_FACTOR = 1.5;

/**
 * What each peer (a connection, as `IncomingCall.peer` names it) sent a server lately, weighed in
 * bytes read (payload plus a fixed cost per call), so that under overload the shedder spares the
 * peers that send little and sheds the calls of those that cause the queue, as FQ-CoDel spares
 * sparse flows: a client making a few small calls keeps being served while other connections
 * flood the server, and shedding its calls would not have shortened the queue anyway.
 *
 * Counted over two windows of `windowMs` (the current one and the one before), so an old burst
 * is forgotten within two windows. Holds one entry per peer that sent in those windows. One per
 * server.
 */
export class PeerShares {
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  private currentTotal = 0;
  private previousTotal = 0;
  private windowEnds: number;
  /**
   * The peer of the last calls recorded and what they cost, not yet added to `current`: a
   * server reads calls in runs from one connection (a socket read holds many), so a run costs
   * one map update, not one per call.
   */
  private runPeer: string | undefined = undefined;
  private runBytes = 0;

  constructor(
    readonly windowMs = SHARE_WINDOW_MS,
    now = Date.now(),
  ) {
    this.windowEnds = now + windowMs;
  }

  /** Counts a call of `bytes` from `peer`, read at `now`. */
  record(peer: string, bytes: number, now: number): void {
    this.roll(now);
    const cost = bytes + CALL_COST_BYTES;
    if (peer !== this.runPeer) {
      this.endRun();
      this.runPeer = peer;
    }
    this.runBytes += cost;
    this.currentTotal += cost;
  }

  /** Adds the run of calls recorded last to `current`. */
  private endRun(): void {
    const peer = this.runPeer;
    if (peer === undefined) return;
    this.current.set(peer, (this.current.get(peer) ?? 0) + this.runBytes);
    this.runPeer = undefined;
    this.runBytes = 0;
  }

  /**
   * Whether `peer` sent less than a quarter of its fair share lately (never while the server read
   * from it alone).
   */
  light(peer: string, now: number): boolean {
    return this.share(peer, now) * LIGHT_DIVISOR < 1;
  }

  /**
   * Whether `peer` sent more than half again its fair share lately (never while the server read
   * from it alone).
   */
  heavy(peer: string, now: number): boolean {
    return this.share(peer, now) > HEAVY_FACTOR;
  }

  /** What `peer` sent lately as a multiple of its fair share; 1 while the server reads from fewer than two peers. */
  private share(peer: string, now: number): number {
    this.roll(now);
    this.endRun();
    const peers = Math.max(this.current.size, this.previous.size);
    if (peers < 2) return 1;
    const sent = (this.current.get(peer) ?? 0) + (this.previous.get(peer) ?? 0);
    return (sent * peers) / (this.currentTotal + this.previousTotal);
  }

  /** Starts a new window once the current one is over (two: the server was quiet for a whole one). */
  private roll(now: number): void {
    if (now < this.windowEnds) return;
    this.endRun();
    const quiet = now >= this.windowEnds + this.windowMs;
    this.previous = quiet ? new Map() : this.current;
    this.previousTotal = quiet ? 0 : this.currentTotal;
    this.current = new Map();
    this.currentTotal = 0;
    this.windowEnds = now + this.windowMs;
  }
}
