import { Code, ConfigError, type RpcError } from "../errors.js";
import { queueRefusal, type AdmissionOptions, type QueueShedder } from "./admission.js";
import type { Priority } from "./priority.js";

/** The defaults of the run queue's {@link AdmissionOptions}. */
export const DEFAULT_RUN_QUEUE: Required<Pick<AdmissionOptions, "maxQueued" | "sliceMs" | "order">> = { maxQueued: 8192, sliceMs: 1, order: "fifo" };

/** A call waiting in the run queue. */
export interface QueuedCall {
  /** The call's absolute deadline (Date.now() clock), if any. */
  readonly deadline: number | undefined;
  /** How long it had waited when it was queued, ms (before it was read, and since). */
  readonly waitedMs: number;
  /** Its priority class: how long the shedder lets it wait. */
  readonly priority?: Priority;
  /** Who sent it (`IncomingCall.peer`): the shedder spares the calls of peers that send little. */
  readonly peer?: string;
  /** When it was queued (Date.now()). */
  queuedAt: number;
  /** Starts its handler; `t0` is when its start began (performance.now(), see RunQueue.startNow). */
  run(t0: number): void;
  /** Answers it with `err` instead, without running its handler. */
  refuse(err: RpcError): void;
}

/** Weight of the newest sample in the average time a handler takes to start (an EWMA). */
const EWMA_WEIGHT = 0.1;
/**
 * Starts before the estimate predicts waits: until then a call is admitted on the time it
 * really waited, and judged again at the head of the queue. A fresh server's first starts run
 * code not yet optimized, ten to a hundred times slower than later ones, and a burst is admitted
 * faster than starts happen, so an estimate of them predicts waits the queue never has: with 8,
 * a burst of 500 calls on each of eight connections had 2687 of its 4000 calls predicted to wait
 * over a second and shed at admission in one run of two, though the queue drained in under a
 * second (with 512, none in eight runs).
 */
const WARM_STARTS = 512;
/**
 * Past a few starts, one counts as at most this many times the estimate. One start that a
 * garbage collection or a compilation stretched to 7 ms, among starts of 2-10 us, raised the
 * estimate a hundredfold for the next dozen starts: 2000 calls queued by a burst were each
 * predicted to wait 1.5 s and shed at admission, though the queue drained in 40 ms. Starts that
 * really grow still move it: by up to 30% a start.
 */
const OUTLIER_FACTOR = 4;

/**
 * Light peers' calls start first, but at most this many in a row while others wait: light peers
 * send under a quarter of what the server reads, but a flood spread thin over thousands of
 * connections can make that quarter more than the server serves, and the others' calls then
 * still get a fifth of the starts.
 */
const LIGHT_RUN = 4;

/**
 * Queued calls in arrival order, in a ring that grows by doubling, each with when it first had
 * its turn (see {@link CallRing.stampTurns}).
 */
class CallRing {
  private calls: (QueuedCall | undefined)[] = new Array<QueuedCall | undefined>(16);
  /** When each call first had its turn (Date.now()), NaN until then; the unstamped are the newest. */
  private turns = new Float64Array(16).fill(NaN);
  private head = 0;
  count = 0;
  /** The first turn of the call last taken (NaN if it had none). */
  turn = NaN;

  push(call: QueuedCall): void {
    if (this.count === this.calls.length) this.grow();
    const i = (this.head + this.count) & (this.calls.length - 1);
    this.calls[i] = call;
    this.turns[i] = NaN;
    this.count++;
  }

  /** Takes the oldest call (the newest with `newest`); its first turn is left in {@link turn}. */
  take(newest: boolean): QueuedCall {
    const mask = this.calls.length - 1;
    let i: number;
    if (newest) i = (this.head + this.count - 1) & mask;
    else {
      i = this.head;
      this.head = (this.head + 1) & mask;
    }
    this.count--;
    const call = this.calls[i] as QueuedCall;
    this.calls[i] = undefined;
    this.turn = this.turns[i]!;
    return call;
  }

  /**
   * Stamps the calls that have not had a turn yet with `now`, the start of a drain: their first
   * turn. A call waits for it while the event loop reads the rest of what it read with it: a
   * burst of calls read in one go (150 gRPC streams take 20-40 ms to read on a slow machine) waits
   * that long before the queue can start any of them. That wait is the read's, and it ends
   * whatever the queue does, so the shedder does not count it: it judges what a call waited since
   * its first turn (behind the handlers before it, and the reads between slices), plus what it
   * waited before it was read. Shedding on the read's time refused all but the first few calls
   * of such a burst, on a server with nothing else to do.
   */
  stampTurns(now: number): void {
    const mask = this.calls.length - 1;
    for (let k = this.count - 1; k >= 0; k--) {
      const i = (this.head + k) & mask;
      if (!Number.isNaN(this.turns[i])) break;
      this.turns[i] = now;
    }
  }

  private grow(): void {
    const old = this.calls;
    const oldTurns = this.turns;
    const calls = new Array<QueuedCall | undefined>(old.length * 2);
    const turns = new Float64Array(old.length * 2).fill(NaN);
    for (let i = 0; i < this.count; i++) {
      const from = (this.head + i) & (old.length - 1);
      calls[i] = old[from];
      turns[i] = oldTurns[from];
    }
    this.calls = calls;
    this.turns = turns;
    this.head = 0;
  }
}

/**
 * A server's run queue: the transport hands calls over as fast as it reads them, admission is
 * decided at once (so a refusal is answered within a read, not once the call reaches the head of
 * the kernel's queue), and admitted handlers start from here, back to back for at most `sliceMs`
 * before the event loop goes back to reading sockets (setImmediate), so reads never wait
 * behind a queue of handlers. A call starts at once while the queue is empty and the current
 * slice has time left, so an idle server adds no hop.
 *
 * Calls from peers that send little lately (light, see PeerShares) start before the others, as
 * FQ-CoDel serves sparse flows first: a client making a few calls is not queued behind a peer
 * that floods the server, however long that peer lets its calls wait. Together the light peers
 * send under a quarter of what the server reads; should that be more than it serves (a flood
 * spread thin over thousands of connections), the others still get one start in five.
 *
 * It knows how long a handler takes to start (the synchronous part of the chain: all of a
 * CPU-bound handler), so it can say how long a call queued now would wait (`expectedWaitMs`),
 * which the shedder judges at admission. At the head of the queue it checks again: a call whose
 * deadline passed is refused DEADLINE_EXCEEDED, one that waited longer than the shedder allows
 * now is shed. One per server.
 */
export class RunQueue {
  readonly maxQueued: number;
  readonly sliceMs: number;
  readonly lifo: boolean;
  /** The average time a handler took to start, ms. */
  startMs = 0;
  /** Handlers started so far: the estimate is used once it rests on `warmStarts`. */
  private starts = 0;
  /** Calls refused because the queue was full. */
  full = 0;
  /** Calls of light peers, started first. */
  private readonly light = new CallRing();
  /** Everyone else's. */
  private readonly rest = new CallRing();
  /** Light calls started in a row while others waited. */
  private lightRun = 0;
  /** A slice is under way (a drain is scheduled) until this time (performance.now()). */
  private sliceEnds = -Infinity;
  /**
   * The latest time read during the current slice (performance.now()): when the last handler
   * started returned, or when the slice opened. `idle` judges the slice by it rather than by
   * reading the clock again for every call read; it lags the real time by what ran since.
   */
  private clock = -Infinity;
  private scheduled = false;
  /** A start is under way (a handler's synchronous part): see `answering`. */
  private starting = false;
  /** The start under way has its end: `clock` was read by `answering`. */
  private ended = false;
  private readonly drainFn = (): void => this.drain();

  /** `warmStarts`: starts before the estimate predicts waits (WARM_STARTS; tests lower it). */
  constructor(
    private readonly shedder: QueueShedder | undefined,
    options: AdmissionOptions = {},
    private readonly warmStarts = WARM_STARTS,
  ) {
    this.maxQueued = options.maxQueued ?? DEFAULT_RUN_QUEUE.maxQueued;
    this.sliceMs = options.sliceMs ?? DEFAULT_RUN_QUEUE.sliceMs;
    this.lifo = (options.order ?? DEFAULT_RUN_QUEUE.order) === "adaptive-lifo";
    if (!(this.maxQueued >= 1) || !(this.sliceMs > 0) || (options.order !== undefined && options.order !== "fifo" && options.order !== "adaptive-lifo")) {
      throw new ConfigError("INVALID_OPTION", 'admission: maxQueued must be >= 1, sliceMs > 0, order "fifo" or "adaptive-lifo"');
    }
  }

  /** Calls waiting. */
  get size(): number {
    return this.light.count + this.rest.count;
  }

  /** Whether a call handed over now would start at once (nothing queued, time left in the slice). */
  get idle(): boolean {
    return this.size === 0 && (!this.scheduled || this.clock < this.sliceEnds);
  }

  /**
   * How long a call queued now would wait for its handler to start, ms (0 when it would start at
   * once): behind every queued call, or with `light` behind the light peers' calls only.
   */
  expectedWaitMs(light = false): number {
    if (this.idle || this.starts < this.warmStarts) return 0;
    // A light call waits behind the light ones, and one of the others' for every LIGHT_RUN of them.
    const ahead = light ? this.light.count + Math.min(this.rest.count, Math.floor(this.light.count / LIGHT_RUN)) : this.size;
    return (ahead + 1) * this.startMs;
  }

  /** Whether calls from `peer` go ahead of the others: it sends little lately (see PeerShares). */
  isLight(peer: string | undefined, now: number): boolean {
    return peer !== undefined && this.shedder?.peers.light(peer, now) === true;
  }

  /**
   * Starts a call at once (the queue is `idle`): runs `start(a, b, c, t0)`, its handler's
   * synchronous part, within the current slice (or a new one), and returns what it returns. `t0`
   * is when the start began (performance.now()).
   */
  startNow<A, B, C, T>(start: (a: A, b: B, c: C, t0: number) => T, a: A, b: B, c: C): T {
    const from = this.since();
    const t0 = this.openSlice();
    this.starting = true;
    try {
      return start(a, b, c, t0);
    } finally {
      this.learn(from ?? t0);
    }
  }

  /**
   * Where the next start's time is counted from: within a slice under way, the clock as last
   * read (when the start before answered or returned), as for the queue's own starts (see
   * `start`), so that what runs between two starts (the reply before encoded, the next call
   * read) counts towards one of them; undefined for the first start of a slice.
   */
  private since(): number | undefined {
    return this.scheduled ? this.clock : undefined;
  }

  /**
   * The time now (performance.now()), read by a server for a call it answers. A call answered
   * within its start (a handler that did not await) ends its start with it: `learn` takes this
   * reading instead of reading the clock again once the start returns, so a call costs one clock
   * read fewer (40-60 ns on Node 20). What runs after it (the transport encoding the reply) counts
   * towards the next start of the slice, as what runs before a start does (see `since`).
   */
  answering(): number {
    const t = performance.now();
    if (this.starting && !this.ended) {
      this.clock = t;
      this.ended = true;
    }
    return t;
  }

  /**
   * Starts `call` now if the queue is idle, else queues it (refused with RESOURCE_EXHAUSTED when
   * `maxQueued` are waiting): ahead of the others when its peer is light.
   */
  submit(call: QueuedCall): void {
    if (this.idle) {
      const from = this.since();
      const t0 = this.openSlice();
      this.start(call, t0, from ?? t0);
      return;
    }
    if (this.size >= this.maxQueued) {
      this.full++;
      call.refuse(
        queueRefusal(
          Code.RESOURCE_EXHAUSTED,
          `the server is overloaded: ${this.maxQueued} calls are already waiting for a handler (maxQueued); retry it on another instance or later`,
          call.waitedMs,
        ),
      );
      return;
    }
    (this.isLight(call.peer, call.queuedAt) ? this.light : this.rest).push(call);
    this.schedule();
  }

  /**
   * Runs a call's handler (`t0`: when its start began, performance.now()), learning how long a
   * start takes: from `from`, the clock as last read (when the previous start answered or
   * returned, or the slice began). What ran since (taking the call off its ring, the shedder's
   * look at it) counts as part of this start.
   */
  private start(call: QueuedCall, t0: number, from = t0): void {
    this.starting = true;
    try {
      call.run(t0);
    } finally {
      this.learn(from);
    }
  }

  /** Learns from a start that began at `t0` (performance.now()) and has just returned, or answered (see `answering`). */
  private learn(t0: number): void {
    if (!this.ended) this.clock = performance.now();
    this.starting = this.ended = false;
    let took = this.clock - t0;
    this.starts++;
    if (this.starts > 1 / EWMA_WEIGHT && took > OUTLIER_FACTOR * this.startMs) took = OUTLIER_FACTOR * this.startMs;
    // The mean of the first starts, then a moving average: one cold start (the first calls of a
    // server run code not yet compiled, often ten times slower) does not set the estimate alone.
    this.startMs += (took - this.startMs) / Math.min(this.starts, 1 / EWMA_WEIGHT);
  }

  /**
   * A slice begins if none is under way: calls start back to back until it ends. Returns the time
   * now (performance.now()), read once either way.
   */
  private openSlice(): number {
    if (this.scheduled) return performance.now();
    this.clock = performance.now();
    this.sliceEnds = this.clock + this.sliceMs;
    this.schedule();
    return this.clock;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.drainFn);
  }

  /**
   * After the event loop's I/O: starts queued calls for one slice, then yields again if any are
   * left. The clock is read once per call started (when its handler answers or returns: `answering`,
   * `learn`) or refused: the slice's end, the next start's beginning and the time on the Date.now() clock
   * that deadlines and waits are judged by all come from that reading (the two clocks' offset is
   * taken once per slice; it moves by far less than a millisecond in one). Each read costs 60-80
   * ns on Node 20.
   */
  private drain(): void {
    this.scheduled = false;
    this.clock = performance.now();
    this.sliceEnds = this.clock + this.sliceMs;
    const stamp = Date.now();
    const offset = stamp - this.clock;
    this.light.stampTurns(stamp);
    this.rest.stampTurns(stamp);
    let started = 0;
    while (this.size > 0 && (started === 0 || this.clock < this.sliceEnds)) {
      // Light peers' calls first (at most LIGHT_RUN in a row while others wait); the others
      // oldest first, or newest first while the queue is standing in adaptive LIFO.
      const ring = this.light.count > 0 && (this.lightRun < LIGHT_RUN || this.rest.count === 0) ? this.light : this.rest;
      this.lightRun = ring === this.light ? this.lightRun + 1 : 0;
      const call = ring.take(ring === this.rest && this.lifo && this.shedder?.dropping === true);
      const t0 = this.clock;
      const now = t0 + offset;
      // What it waited since its first turn, and before it was read: the shedder's measure (see
      // CallRing#stampTurns). The whole wait still decides whether its deadline passed.
      const behind = call.waitedMs + (Number.isNaN(ring.turn) ? 0 : now - ring.turn);
      const stale = this.refusal(call, call.waitedMs + (now - call.queuedAt), behind, now);
      if (stale !== undefined) {
        call.refuse(stale);
        // A run of refusals takes time too: the slice still ends when it is over.
        this.clock = performance.now();
        continue;
      }
      started++;
      this.start(call, t0);
    }
    // Calls left wait for the next turn of the loop, after its reads. With none left the queue
    // is idle: the next call read starts at once, in a slice of its own.
    if (this.size > 0) this.schedule();
  }

  /**
   * Why a call at the head of the queue must not run now, if it must not: its deadline passed
   * (it waited `waited` ms in all), or the shedder sheds a call that waited `behind` ms since its
   * first turn and before it was read.
   */
  private refusal(call: QueuedCall, waited: number, behind: number, now: number): RpcError | undefined {
    if (call.deadline !== undefined && call.deadline <= now) {
      return queueRefusal(Code.DEADLINE_EXCEEDED, `the call's deadline passed before its handler could start (it waited ${Math.round(waited)} ms)`, waited);
    }
    const budget = call.deadline === undefined ? undefined : call.deadline - call.queuedAt + call.waitedMs;
    return this.shedder?.stale(behind, call.priority, call.peer, now, budget);
  }
}
