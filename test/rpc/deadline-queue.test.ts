/**
 * The deadline queue (one timer for many deadlines) and `timerAt`, the shared queue a call's
 * deadline is armed on: entries expire in deadline order whatever order they came in, never
 * early, removed ones never; a deadline that would walk far into the shared queue takes a timer
 * of its own; pending timers keep the process alive as setTimeout does, and an emptied queue
 * does not.
 */
import { spawn } from "node:child_process";
import { afterEach, describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import { DeadlineQueue, timerAt, type DeadlineEntry } from "meridian-rpc/transport";

afterEach(() => {
  vi.useRealTimers();
});

function fakeClock(): void {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"], now: 1_000_000 });
}

class Entry implements DeadlineEntry {
  dlPrev: DeadlineEntry | undefined = undefined;
  dlNext: DeadlineEntry | undefined = undefined;
  dlQueued = false;
  expiredAt: number | undefined;

  constructor(
    readonly id: number,
    public dlAt: number,
    private readonly log: Entry[],
  ) {}

  expire(): void {
    this.expiredAt = Date.now();
    this.log.push(this);
  }
}

describe("deadline queue", () => {
  it("deadline queue - expires every entry once, in deadline order, never before its deadline; removed ones never", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ after: fc.integer({ min: 0, max: 500 }), removed: fc.boolean() }), { minLength: 1, maxLength: 40 }),
        (specs) => {
          fakeClock();
          try {
            const log: Entry[] = [];
            const queue = new DeadlineQueue();
            const start = Date.now();
            const entries = specs.map((s, i) => new Entry(i, start + s.after, log));
            for (const e of entries) queue.add(e);
            for (const [i, e] of entries.entries()) if (specs[i]!.removed) queue.remove(e);
            vi.advanceTimersByTime(501);
            const kept = entries.filter((_, i) => !specs[i]!.removed);
            expect(log.map((e) => e.id).sort((a, b) => a - b)).toEqual(kept.map((e) => e.id));
            for (let i = 1; i < log.length; i++) expect(log[i]!.dlAt).toBeGreaterThanOrEqual(log[i - 1]!.dlAt);
            for (const e of log) expect(e.expiredAt).toBeGreaterThanOrEqual(e.dlAt);
            expect(queue.size).toBe(0);
            queue.stop();
          } finally {
            vi.useRealTimers();
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it("deadline queue - tryAdd queues within maxWalk of the tail, and refuses (queuing nothing) beyond", () => {
    const log: Entry[] = [];
    const queue = new DeadlineQueue();
    const base = Date.now() + 60_000;
    for (let i = 0; i < 5; i++) queue.add(new Entry(i, base + i, log));
    expect(queue.tryAdd(new Entry(10, base + 10, log), 0)).toBe(true); // the tail: no walk
    expect(queue.tryAdd(new Entry(11, base + 2.5, log), 3)).toBe(true); // past 10, 4, 3
    // The queue: 0, 1, 2, 11, 3, 4, 10. Between 1 and 2: five entries from the tail.
    const between = new Entry(12, base + 1.5, log);
    expect(queue.tryAdd(between, 4)).toBe(false);
    expect(between.dlQueued).toBe(false);
    expect(queue.size).toBe(7);
    expect(queue.tryAdd(between, 5)).toBe(true);
    expect(queue.size).toBe(8);
    queue.stop();
  });
});

describe("timerAt", () => {
  it("timerAt - fires at its time among later and earlier deadlines (an early one beyond the walk takes its own timer)", () => {
    fakeClock();
    const fired: string[] = [];
    const now = Date.now();
    const late = Array.from({ length: 20 }, (_, i) => timerAt(now + 1000 + i, () => fired.push(`late${i}`)));
    const early = timerAt(now + 10, () => fired.push("early"));
    const cancelled = timerAt(now + 5, () => fired.push("cancelled"));
    cancelled.cancel();
    vi.advanceTimersByTime(9);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(["early"]);
    late[3]!.cancel();
    vi.advanceTimersByTime(1100);
    expect(fired).toEqual(["early", ...Array.from({ length: 20 }, (_, i) => `late${i}`).filter((n) => n !== "late3")]);
    early.cancel(); // harmless once fired
  });

  it("timerAt - a time that is not a number fires at once, Infinity never, and neither holds back the deadlines behind it", () => {
    fakeClock();
    const fired: string[] = [];
    timerAt(Number.NaN, () => fired.push("NaN"));
    const never = timerAt(Infinity, () => fired.push("Infinity"));
    timerAt(Date.now() + 10, () => fired.push("10 ms"));
    vi.advanceTimersByTime(0);
    expect(fired).toEqual(["NaN"]);
    vi.advanceTimersByTime(10);
    expect(fired).toEqual(["NaN", "10 ms"]);
    vi.advanceTimersByTime(2 ** 32);
    expect(fired).toEqual(["NaN", "10 ms"]);
    never.cancel();
  });

  it("timerAt - no timer outlives the queue's entries: one cancelled under fake timers leaves nothing that real ones would wait on", async () => {
    fakeClock();
    timerAt(Date.now() + 5, () => undefined).cancel();
    vi.useRealTimers();
    const fired = await new Promise<boolean>((resolve) => {
      timerAt(Date.now() + 20, () => resolve(true));
      setTimeout(() => resolve(false), 2000);
    });
    expect(fired).toBe(true);
  });

  it("timerAt - a pending timer keeps the process alive; once cancelled (the queue empty) the process exits", async () => {
    const run = (body: string): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve, reject) => {
        const script = `import { timerAt } from "meridian-rpc/transport";\n${body}`;
        const child = spawn(process.execPath, ["--conditions=meridian-source", "--import", "tsx", "--input-type=module", "-e", script], {
          stdio: ["ignore", "pipe", "inherit"],
        });
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        const guard = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`the child did not exit: ${out}`));
        }, 20_000);
        child.on("exit", (code) => {
          clearTimeout(guard);
          resolve({ code, out });
        });
      });
    // Kept alive until it fires.
    const kept = await run(`timerAt(Date.now() + 300, () => console.log("fired"));`);
    expect(kept).toEqual({ code: 0, out: "fired\n" });
    // A call's deadline of a minute, cancelled when the call ends: nothing holds the process.
    const done = await run(`const t = timerAt(Date.now() + 60_000, () => console.log("fired")); t.cancel(); console.log("done");`);
    expect(done).toEqual({ code: 0, out: "done\n" });
  }, 30_000);
});
