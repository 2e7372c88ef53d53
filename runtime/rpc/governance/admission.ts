import { Code, ConfigError, RpcError } from "../errors.js";
import { HeaderKeys } from "../transport.js";
import { PeerShares, SHARE_WINDOW_MS } from "./fairness.js";
import { LoopDelay } from "./loopdelay.js";
import type { Priority } from "./priority.js";

/**
 * Options of a server's admission control (createServer's `admission`): which calls are answered
 * at once, without running their handler, because running them is wasted work.
 */
export interface AdmissionOptions {
  /**
   * The queueing delay the server holds a standing queue to, ms. Default 5. A call is queued from
   * when its caller sent it (as far as the transport can tell) to when its handler starts. A call
   * with a timeout may wait a twentieth of it when that is longer (5 ms of a 100 ms timeout), at
   * most 40 x `intervalMs` (the timeout is the caller's to choose), unless its peer sends more
   * than half again its fair share.
   */
  targetMs?: number;
  /**
   * How long the queueing delay must stay above `targetMs` before the server sheds calls that
   * waited longer than `targetMs`; until then (a burst, not a standing queue) it sheds only calls
   * that waited longer than this, or than a quarter of their timeout when that is longer (at
   * most 40 x `intervalMs`).
   * Default 25 ms: a quarter of a typical 100 ms deadline. (Fail at Scale's 100 ms let a backlog
   * as deep as the deadline form at the start of every overload, whose calls were then shed after
   * waiting up to that long.)
   */
  intervalMs?: number;
  /**
   * Calls admitted and waiting in the server's run queue for their handler to start, at most; one
   * more is refused at once with RESOURCE_EXHAUSTED. Default 8192: what eight TCP connections at
   * their own limit of calls (256) can hand over in a few reads, four times over. (1024 refused
   * 70% of a burst of 500 calls on each of eight connections at a fresh server.) The time a call
   * may wait is bounded by the shedder; what it holds, by the transports' byte limits.
   */
  maxQueued?: number;
  /**
   * How long the run queue starts handlers back to back before it lets the event loop read
   * sockets again, ms. Default 1. The event loop's delay and the time to a refusal grow with it.
   */
  sliceMs?: number;
  /**
   * The order queued handlers start in: "fifo", or "adaptive-lifo" (newest first while the queue
   * is standing, as in Facebook's "Fail at Scale": the calls most likely to still be wanted go
   * first). Default "fifo".
   */
  order?: "fifo" | "adaptive-lifo";
  /**
   * Shed calls while the event loop runs later than this, ms: its delay is how late a timer due
   * every 10 ms runs (now, or at worst within the last `intervalMs`). Calls read meanwhile are
   * refused at once with RESOURCE_EXHAUSTED, critical ones excepted (and those of peers that send
   * little, as for a standing queue). Default: off. The queue shedder already sees a stalled loop
   * on TCP, where a call's wait counts from when its caller sent it; this bound also covers
   * transports that cannot tell (gRPC, NATS) and CPU that handlers spend after an await, which the
   * run queue does not slice. 50-100 ms suits most services; below 10 ms it sheds on timer noise.
   */
  maxEventLoopDelayMs?: number;
}

/** The defaults of {@link AdmissionOptions}. */
export const DEFAULT_ADMISSION: Required<Pick<AdmissionOptions, "targetMs" | "intervalMs">> = { targetMs: 5, intervalMs: 25 };

/**
 * The share of its own timeout a call may wait in a standing queue, and in a burst, when that is
 * longer than `targetMs` or `intervalMs`: the shares the defaults give a call of 100 ms.
 */
const STANDING_SHARE = 0.05;
const BURST_SHARE = 0.25;
/**
 * The most a share may come to, as a multiple of `intervalMs` (1 s by default). The timeout is
 * the caller's to choose: uncapped, a peer flooding with calls of a 30-day timeout was never shed,
 * and filled the queue that every other peer's calls waited in (a light client's p90 went from
 * 12 ms, next to a flood of 100 ms calls at four times capacity, to 743 ms). A cap of 100 ms in a
 * standing queue shed 150 of the 4000 calls (60 s timeouts) of a burst on eight connections at a
 * fresh server on a loaded machine, for waits of 108 ms.
 */
const CAP_INTERVALS = 40;
/**
 * Dropping starts again at once, without a whole interval above the target first, when a call
 * would wait longer than the target in the server's own run queue within this many intervals of
 * dropping's end, as CoDel resumes dropping (an overload rarely ends within one interval). At
 * twice capacity with 0.1 ms handlers, dropping ended and began again about 13 times a second:
 * each time the queue refilled for a whole interval, and the calls admitted meanwhile were shed
 * at its head after waiting 30-80 ms. A wait before the read alone does not count (see
 * QueueShedder): a closed loop would keep dropping on for as long as it runs.
 */
const REENTRY_INTERVALS = 16;

/**
 * Sheds calls from a standing queue, after Facebook's controlled delay ("Fail at Scale", 2015)
 * and CoDel: while the queue comes and goes, only calls that waited longer than `intervalMs` are
 * shed, so a burst is absorbed. Once no call has started within `targetMs` of being sent for
 * `intervalMs`, the queue is standing and the shedder starts dropping: every call that waited
 * longer than `targetMs` is shed, so the queue drains to the target and the calls that are served
 * are served fast. It stops dropping once no call has waited longer than `targetMs` for
 * `intervalMs` (the overload is over), so a queue that the dropping keeps short does not flip it
 * back to admitting old calls, or once the server's own run queue has been empty for `intervalMs`
 * (the calls' wait is then spent before the server reads them, where shedding does not shorten
 * it: a closed loop of one client keeps such a wait standing however many calls are refused).
 * Within 16 intervals of that end, a call that would wait past the target in the server's own run
 * queue starts dropping again at once, as CoDel resumes dropping.
 * Calls from peers that send little (a quarter of their fair share of what the server reads, see
 * PeerShares) are spared: the queue is not theirs, and a client making a few small calls keeps
 * being served while other connections flood the server. One per server.
 */
export class QueueShedder {
  readonly targetMs: number;
  readonly intervalMs: number;
  /** Shedding every call over `targetMs` (a standing queue). */
  dropping = false;
  /** When a call last started within `targetMs` of being sent (Date.now() clock). */
  private lastShort: number;
  /** When a call last had waited longer than `targetMs`. */
  private lastLong = -Infinity;
  /** When a call was last checked. */
  private lastSample: number;
  /** When dropping last ended (Date.now() clock). */
  private droppedAt = -Infinity;
  /** When a call last found calls waiting in the server's own run queue. */
  private lastQueuedHere: number;
  /** Calls shed so far. */
  shed = 0;
  /** Calls it would have shed but spared, their peer being light. */
  spared = 0;
  /**
   * What each peer sent lately: the shedder spares the calls of peers that send less than a
   * quarter of their fair share (see PeerShares). The server records every call read.
   */
  readonly peers: PeerShares;
  /** The bound on the event loop's delay, ms (`maxEventLoopDelayMs`); undefined: off. */
  readonly maxEventLoopDelayMs: number | undefined;
  /** The event loop's delay, sampled while the server listens, when it is bounded. */
  private readonly loop: LoopDelay | undefined;

  constructor(options: AdmissionOptions = {}, now = Date.now()) {
    this.targetMs = options.targetMs ?? DEFAULT_ADMISSION.targetMs;
    this.intervalMs = options.intervalMs ?? DEFAULT_ADMISSION.intervalMs;
    if (!(this.targetMs > 0) || !(this.intervalMs >= this.targetMs)) {
      throw new ConfigError("INVALID_OPTION", "admission: targetMs must be > 0 and intervalMs >= targetMs");
    }
    this.maxEventLoopDelayMs = options.maxEventLoopDelayMs;
    if (this.maxEventLoopDelayMs !== undefined && !(this.maxEventLoopDelayMs > 0 && Number.isFinite(this.maxEventLoopDelayMs))) {
      throw new ConfigError("INVALID_OPTION", "admission: maxEventLoopDelayMs must be a number > 0 (omit it to not shed on the event loop's delay)");
    }
    this.loop = this.maxEventLoopDelayMs === undefined ? undefined : new LoopDelay(this.intervalMs);
    this.lastShort = now;
    this.lastSample = now;
    this.lastQueuedHere = now;
    this.peers = new PeerShares(SHARE_WINDOW_MS, now);
  }

  /** Starts sampling the event loop's delay, when it is bounded (the server listens). */
  start(): void {
    this.loop?.start();
  }

  /** Stops sampling it (the server closed). */
  stop(): void {
    this.loop?.stop();
  }

  /**
   * The refusal of a call read now, while the event loop runs later than `maxEventLoopDelayMs`:
   * RESOURCE_EXHAUSTED, with the larger of the call's wait and the loop's delay as the load hint.
   * Critical calls are never refused for it; a light peer's are spared, unless sheddable.
   */
  lateLoop(priority: Priority, peer: string | undefined, now: number, queuedMs: number | undefined): RpcError | undefined {
    if (this.loop === undefined || priority === "critical") return undefined;
    const late = this.loop.delayMs();
    if (late <= this.maxEventLoopDelayMs! || this.spares(priority, peer, now)) return undefined;
    this.shed++;
    return queueRefusal(
      Code.RESOURCE_EXHAUSTED,
      `the server is overloaded: its event loop runs ${Math.round(late)} ms late (more than maxEventLoopDelayMs, ${this.maxEventLoopDelayMs} ms), and it sheds calls until it catches up; retry it on another instance or later`,
      Math.max(queuedMs ?? 0, late),
    );
  }

  /**
   * Whether a call that would be shed is spared instead, and counted so: its `peer` sends little
   * lately (see {@link peers}) and it is not sheddable.
   */
  private spares(priority: Priority, peer: string | undefined, now: number): boolean {
    if (peer === undefined || priority === "sheddable" || !this.peers.light(peer, now)) return false;
    this.spared++;
    return true;
  }

  /**
   * The error to answer a call with that waited `queuedMs` before its handler would start at
   * `now`, or undefined to run it. The error is RESOURCE_EXHAUSTED with the delay as a load hint
   * (`x-queue-delay-ms`) and `notSent`, since no handler ran: a client may retry it elsewhere.
   * A call from a `peer` that sends little lately (see {@link peers}) is spared instead of shed,
   * its wait still counted as a sample. `queuedHereMs` is the part of the wait spent in the
   * server's own run queue (all of it unless told): dropping stops once that queue has been empty
   * for an interval. `budgetMs` is the call's timeout, when it has one (see {@link allowedMs}).
   */
  check(queuedMs: number, now: number, priority: Priority = "normal", peer?: string, queuedHereMs = queuedMs, budgetMs?: number): RpcError | undefined {
    if (now - this.lastSample > this.intervalMs) {
      // No call for a whole interval: the server was idle, so no queue stood meanwhile, and the
      // quiet time must not count as time above the target for the next call that waits.
      this.lastShort = now;
      this.dropping = false;
    }
    this.lastSample = now;
    if (queuedHereMs > 0) this.lastQueuedHere = now;
    else if (this.dropping && now - this.lastQueuedHere > this.intervalMs) {
      // The server's own queue has been empty for a whole interval: what calls wait is spent
      // before the server reads them (the caller's batching, the network, the kernel's buffers),
      // which shedding here does not shorten. A closed loop (a client that sends its next call
      // as soon as one ends) keeps that wait standing however many calls are refused: dropping
      // on would refuse a share of its calls for as long as it runs.
      this.dropping = false;
      this.droppedAt = now;
    }
    if (queuedMs <= this.targetMs) {
      this.lastShort = now;
      if (this.dropping && now - this.lastLong > this.intervalMs) {
        this.dropping = false;
        this.droppedAt = now;
      }
      return undefined;
    }
    this.lastLong = now;
    if (!this.dropping && (now - this.lastShort > this.intervalMs || (queuedHereMs > this.targetMs && now - this.droppedAt < REENTRY_INTERVALS * this.intervalMs))) {
      this.dropping = true;
    }
    return this.stale(queuedMs, priority, peer, now, budgetMs);
  }

  /**
   * How long a call of `priority` whose timeout is `budgetMs` may wait now: while dropping,
   * `targetMs` or a twentieth of its timeout, whichever is longer; otherwise `intervalMs` or a
   * quarter of its timeout (the shares the defaults give a call of 100 ms). Sheddable calls
   * always get `targetMs` (shed first), critical ones always the burst's allowance (shed last:
   * only when they waited as long as a burst may last). A call without a timeout gets the
   * floors alone.
   *
   * Held to a share of its own timeout, a call that may wait seconds is not refused for a wait of
   * tens of milliseconds: a burst of 1000 calls with 30 s deadlines at a freshly started server
   * (its code not yet optimized, so each handler took ten times as long to start) was shed all
   * but a few, for waits of 25 to 85 ms. The shares are capped at 40 x `intervalMs`, since the
   * timeout is the caller's to choose, and a heavy peer gets none in a standing queue (see
   * {@link stale}).
   */
  allowedMs(priority: Priority = "normal", budgetMs?: number): number {
    if (priority === "sheddable") return this.targetMs;
    if (priority !== "critical" && this.dropping) {
      return budgetMs === undefined ? this.targetMs : Math.max(this.targetMs, Math.min(budgetMs * STANDING_SHARE, CAP_INTERVALS * this.intervalMs));
    }
    return budgetMs === undefined ? this.intervalMs : Math.max(this.intervalMs, Math.min(budgetMs * BURST_SHARE, CAP_INTERVALS * this.intervalMs));
  }

  /**
   * The refusal of a call that waited `queuedMs`, if the shedder sheds such a call now (longer
   * than {@link allowedMs}), without counting the wait as a sample: for a call checked again at
   * the head of a run queue, whose wait was judged at admission. A call from a light `peer` is
   * spared, unless it is sheddable. A heavy peer's call (see PeerShares) gets no share of its
   * timeout in a standing queue, only the floors: the queue is mostly its own, and its calls'
   * long timeouts would otherwise hold it standing for every other peer, up to the cap (a client
   * sending a fifth of capacity with 1 s timeouts, next to one connection flooding with 30-day
   * calls, would be shed at its own share, 50 ms, while the flood's calls waited longer).
   */
  stale(queuedMs: number, priority: Priority = "normal", peer?: string, now = Date.now(), budgetMs?: number): RpcError | undefined {
    const heavy = this.dropping && queuedMs > this.targetMs && peer !== undefined && this.peers.heavy(peer, now);
    const allowed = this.allowedMs(priority, heavy ? undefined : budgetMs);
    if (queuedMs <= allowed || this.spares(priority, peer, now)) return undefined;
    this.shed++;
    const why = this.dropping
      ? `the server's queue has stood above ${this.targetMs} ms, and it sheds what waited longer than ${Math.round(allowed)} ms until the queue is short again`
      : `it waited longer than ${Math.round(allowed)} ms`;
    return queueRefusal(Code.RESOURCE_EXHAUSTED, `the server is overloaded: this call waited ${Math.round(queuedMs)} ms before its handler could start and was shed (${why}); retry it on another instance or later`, queuedMs);
  }
}

/**
 * A call refused before its handler ran because it waited too long (`code`: RESOURCE_EXHAUSTED
 * when shed, DEADLINE_EXCEEDED when its deadline passed while it waited): `rpc-refused`, so a
 * client may retry it elsewhere, with the queueing delay as a load hint.
 */
export function queueRefusal(code: Code, message: string, queuedMs: number | undefined): RpcError {
  const headers: Record<string, string> = { [HeaderKeys.refused]: "1" };
  if (queuedMs !== undefined) headers[HeaderKeys.queueDelay] = String(Math.round(queuedMs));
  return new RpcError(code, message, { headers, notSent: true });
}

/** How long the minimum of the one-way offset is kept before it may rise again, ms. */
const BASELINE_WINDOW_MS = 10_000;

/**
 * Estimates how long calls waited before a transport read them (in the peer's send queue, the
 * network, the kernel's buffers), from the send time the caller stamped on each (its Date.now())
 * and the local time it was read: the difference is clock offset plus latency plus queueing, and
 * its minimum over a recent window (a call that did not queue) is offset plus latency, so what a
 * call adds over that minimum is its queueing. Works across machines whose clocks differ, as long
 * as they do not drift by more than the target within a window. One per connection.
 */
export class SendDelayEstimator {
  private min = Infinity;
  private nextMin = Infinity;
  private windowEnds = 0;

  /** How long the call sent at `sentAt` (peer clock) and read at `now` (local clock) waited, ms (>= 0). */
  waited(sentAt: number, now: number): number {
    const offset = now - sentAt;
    if (now >= this.windowEnds) {
      // A new window: the minimum may rise to the last window's (clocks drift, routes change).
      this.min = Math.min(this.nextMin, offset);
      this.nextMin = offset;
      this.windowEnds = now + BASELINE_WINDOW_MS;
    } else if (offset < this.nextMin) this.nextMin = offset;
    if (offset < this.min) this.min = offset;
    return offset - this.min;
  }
}
