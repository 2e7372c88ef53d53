import { timerDelay } from "../../runtime/transport.js";

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

/** Something with a deadline, linked into a {@link DeadlineQueue} (intrusive: no wrapper objects). */
export interface DeadlineEntry {
  /** Absolute time (Date.now() based, ms) at which `expire` is called. */
  dlAt: number;
  dlPrev: DeadlineEntry | undefined;
  dlNext: DeadlineEntry | undefined;
  dlQueued: boolean;
  /** Called once, when the deadline passes while the entry is still queued. */
  expire(): void;
}

/**
 * Calls `expire()` on entries whose deadline has passed, with one timer for all of them.
 *
 * Entries sit in a list sorted by deadline. Calls of one client mostly share a timeout, so a new
 * deadline is almost always the latest and is appended at the tail in O(1); removal is an O(1)
 * unlink. The single timer is armed for the head; it is not re-armed when the head is removed
 * (it fires, finds nothing due, and re-arms for the new head), so a call that completes costs two
 * pointer updates instead of a setTimeout/clearTimeout pair.
 */
export class DeadlineQueue {
  private head: DeadlineEntry | undefined;
  private tail: DeadlineEntry | undefined;
  private timer: NodeJS.Timeout | undefined;
  private armedAt = Infinity;
  private readonly onTimer = (): void => this.fire();

  /** Number of queued entries. */
  size = 0;

  /** Queues `e` (which must not be queued already) for its `dlAt`. */
  add(e: DeadlineEntry): void {
    e.dlQueued = true;
    this.size++;
    let after = this.tail;
    while (after !== undefined && after.dlAt > e.dlAt) after = after.dlPrev;
    e.dlPrev = after;
    if (after === undefined) {
      e.dlNext = this.head;
      if (this.head !== undefined) this.head.dlPrev = e;
      this.head = e;
      if (this.tail === undefined) this.tail = e;
      this.arm(e.dlAt);
    } else {
      e.dlNext = after.dlNext;
      if (after.dlNext !== undefined) after.dlNext.dlPrev = e;
      else this.tail = e;
      after.dlNext = e;
    }
  }

  /** Takes `e` out of the queue, if it is queued. */
  remove(e: DeadlineEntry): void {
    if (!e.dlQueued) return;
    e.dlQueued = false;
    this.size--;
    const { dlPrev, dlNext } = e;
    if (dlPrev !== undefined) dlPrev.dlNext = dlNext;
    else this.head = dlNext;
    if (dlNext !== undefined) dlNext.dlPrev = dlPrev;
    else this.tail = dlPrev;
    e.dlPrev = e.dlNext = undefined;
  }

  /** Stops the timer (entries stay queued but will not expire until something is added). */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
  }

  private arm(at: number): void {
    if (this.timer !== undefined && this.armedAt <= at) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedAt = at;
    // A deadline past setTimeout's range (a huge timeout, ours or a peer's) fires early and
    // finds nothing due; fire() then re-arms for what is left.
    this.timer = setTimeout(this.onTimer, timerDelay(at - Date.now()));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = Date.now();
    let e = this.head;
    while (e !== undefined && e.dlAt <= now) {
      this.remove(e);
      e.expire();
      e = this.head;
    }
    if (this.head !== undefined) this.arm(this.head.dlAt);
  }
}
