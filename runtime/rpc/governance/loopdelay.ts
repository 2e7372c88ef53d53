/**
 * How late the event loop runs: a timer due every `periodMs` notes how late it fires. Read at
 * any moment, the delay is the larger of how overdue the timer is now (the loop is busy and has
 * not come round to it) and the worst lateness seen within the last `windowMs`, so a stall is
 * seen by the first call read after it, before the timer itself has run. One per server, when
 * admission sheds on the event loop's delay (AdmissionOptions.maxEventLoopDelayMs).
 */
export class LoopDelay {
  /** When the timer is due (performance.now()). */
  private due = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The worst lateness within the window, and when it was seen. */
  private worst = 0;
  private worstAt = -Infinity;

  constructor(
    readonly windowMs: number,
    readonly periodMs = 10,
  ) {}

  /** Starts sampling (idempotent). The timer does not keep the process alive. */
  start(): void {
    if (this.timer !== undefined) return;
    this.arm(performance.now());
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** How late the event loop is now, or was at worst within the last window, ms. */
  delayMs(now = performance.now()): number {
    if (this.timer === undefined) return 0;
    const recent = now - this.worstAt <= this.windowMs ? this.worst : 0;
    return Math.max(now - this.due, recent, 0);
  }

  private arm(now: number): void {
    this.due = now + this.periodMs;
    this.timer = setTimeout(this.tick, this.periodMs);
    this.timer.unref();
  }

  private readonly tick = (): void => {
    const now = performance.now();
    const late = now - this.due;
    if (late >= this.worst || now - this.worstAt > this.windowMs) {
      this.worst = late;
      this.worstAt = now;
    }
    this.arm(now);
  };
}
