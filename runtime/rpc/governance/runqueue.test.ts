import { describe, expect, it } from "vitest";
import { Code, ConfigError, type RpcError } from "../errors.js";
import { HeaderKeys } from "../transport.js";
import { QueueShedder } from "./admission.js";
import { RunQueue, type QueuedCall } from "./runqueue.js";

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** A queued call that records what happened to it under `name`. */
function call(name: string, log: string[], options: { deadline?: number; spinMs?: number; waitedMs?: number; peer?: string } = {}): QueuedCall & { refusal?: RpcError } {
  const c: QueuedCall & { refusal?: RpcError } = {
    deadline: options.deadline,
    waitedMs: options.waitedMs ?? 0,
    peer: options.peer,
    queuedAt: Date.now(),
    run: () => {
      log.push(name);
      if (options.spinMs !== undefined) spin(options.spinMs);
    },
    refuse: (err) => {
      log.push(`refused ${name}`);
      c.refusal = err;
    },
  };
  return c;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Waits until `log` has `n` entries (or 5 s). */
async function until(log: string[], n: number): Promise<void> {
  const end = Date.now() + 5000;
  while (log.length < n && Date.now() < end) await turn();
}

describe("run queue", () => {
  it("run queue - an idle queue starts a call at once; calls past the slice wait for the next turn and start in order", async () => {
    const q = new RunQueue(undefined, { sliceMs: 3 });
    const log: string[] = [];
    q.submit(call("a", log, { spinMs: 5 }));
    expect(log).toEqual(["a"]);
    q.submit(call("b", log));
    q.submit(call("c", log));
    expect(log).toEqual(["a"]);
    expect(q.size).toBe(2);
    expect(q.expectedWaitMs()).toBe(0); // one start seen: no estimate yet (see "it learns how long a start takes")
    await until(log, 3);
    expect(log).toEqual(["a", "b", "c"]);
    expect(q.size).toBe(0);
  });

  it("run queue - the event loop's I/O and timers run between slices, not after the whole queue", async () => {
    const q = new RunQueue(undefined, { sliceMs: 1 });
    const log: string[] = [];
    q.submit(call("first", log, { spinMs: 2 }));
    for (let i = 0; i < 20; i++) q.submit(call(`c${i}`, log, { spinMs: 2 }));
    setTimeout(() => log.push("timer"), 0);
    await until(log, 22);
    const at = log.indexOf("timer");
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(10); // a few slices in, not after the 20 queued handlers
  });

  it("run queue - a call whose deadline passed while it waited is refused DEADLINE_EXCEEDED and never runs", async () => {
    const q = new RunQueue(undefined, { sliceMs: 1 });
    const log: string[] = [];
    q.submit(call("busy", log, { spinMs: 5 }));
    const late = call("late", log, { deadline: Date.now() + 2 });
    q.submit(late);
    spin(5); // the loop is busy past its deadline before the queue gets its next turn
    await until(log, 2);
    expect(log).toEqual(["busy", "refused late"]);
    expect(late.refusal?.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(late.refusal?.notSent).toBe(true);
    expect(late.refusal?.headers[HeaderKeys.refused]).toBe("1");
  });

  it("run queue - past maxQueued a call is refused at once with RESOURCE_EXHAUSTED", async () => {
    const q = new RunQueue(undefined, { sliceMs: 1, maxQueued: 2 });
    const log: string[] = [];
    q.submit(call("a", log, { spinMs: 3 }));
    q.submit(call("b", log));
    q.submit(call("c", log));
    const over = call("d", log, { waitedMs: 7 });
    q.submit(over);
    expect(log).toEqual(["a", "refused d"]);
    expect(over.refusal?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(over.refusal?.message).toMatch(/maxQueued/);
    expect(over.refusal?.headers[HeaderKeys.queueDelay]).toBe("7");
    expect(q.full).toBe(1);
    await until(log, 4);
    expect(log).toEqual(["a", "refused d", "b", "c"]);
  });

  it("run queue - adaptive LIFO: newest first while the shedder sees a standing queue, and what waited past the target is shed at the head", async () => {
    const shedder = new QueueShedder({ targetMs: 5, intervalMs: 10 });
    shedder.dropping = true;
    const q = new RunQueue(shedder, { sliceMs: 1, order: "adaptive-lifo" });
    const log: string[] = [];
    q.submit(call("busy", log, { spinMs: 3 }));
    q.submit(call("old", log, { waitedMs: 50 }));
    q.submit(call("x", log));
    q.submit(call("y", log));
    await until(log, 4);
    expect(log).toEqual(["busy", "y", "x", "refused old"]);
  });

  it("run queue - FIFO by default, even while the queue is standing", async () => {
    const shedder = new QueueShedder({ targetMs: 50, intervalMs: 100 });
    shedder.dropping = true;
    const q = new RunQueue(shedder, { sliceMs: 1 });
    const log: string[] = [];
    q.submit(call("busy", log, { spinMs: 3 }));
    q.submit(call("x", log));
    q.submit(call("y", log));
    await until(log, 3);
    expect(log).toEqual(["busy", "x", "y"]);
  });

  it("run queue - it learns how long a start takes, and says how long a new call would wait", async () => {
    const q = new RunQueue(undefined, { sliceMs: 1 }, 8);
    const log: string[] = [];
    // Until it has seen 8 starts (here) it predicts nothing: a call is judged on what it really waited.
    for (let i = 0; i < 7; i++) {
      q.submit(call(`w${i}`, log, { spinMs: 4 }));
      await until(log, i + 1);
    }
    q.submit(call("a", log, { spinMs: 4 }));
    q.submit(call("b", log));
    expect(q.expectedWaitMs()).toBe(0);
    await until(log, 9);
    // 9 starts: the mean of them, 8 of which spun 4 ms.
    expect(q.startMs).toBeGreaterThanOrEqual(3);
    q.submit(call("c", log, { spinMs: 4 }));
    q.submit(call("d", log));
    q.submit(call("e", log));
    // Two queued, the new one third: about 3 starts of what it learnt.
    expect(q.expectedWaitMs()).toBeCloseTo(3 * q.startMs, 5);
    await until(log, 12);
  });

  it("run queue - a start ends when its call is answered within it (answering), and run gets when it began", async () => {
    const q = new RunQueue(undefined, { sliceMs: 50 }, 1);
    const log: string[] = [];
    const before = performance.now();
    let began = NaN;
    let answered = NaN;
    const c = call("a", log);
    c.run = (t0) => {
      began = t0;
      spin(4);
      answered = q.answering();
      spin(4);
      log.push("a");
    };
    q.submit(c);
    await until(log, 1);
    expect(began).toBeGreaterThanOrEqual(before);
    expect(answered - began).toBeGreaterThanOrEqual(4);
    // The start took what ran until the answer: 4 ms, not the 8 ms until run returned (the rest
    // would count towards the next start of the slice, and this slice has none).
    expect(q.startMs).toBeCloseTo(answered - began, 5);
    expect(q.startMs).toBeLessThan(7);
    // Read outside a start (a call answered later), the clock ends none: the next start is
    // still timed to its end (the mean of 4 and 3 ms).
    expect(q.answering()).toBeGreaterThan(answered);
    q.submit(call("b", log, { spinMs: 3 }));
    await until(log, 2);
    expect(q.startMs).toBeGreaterThan(3);
  });

  it("run queue - within a slice, a start counts from where the one before ended: what ran between (a reply encoded, a call read) is not lost", () => {
    const q = new RunQueue(undefined, { sliceMs: 50 }, 1);
    const log: string[] = [];
    q.submit(call("a", log));
    // Between two starts of the slice: the reply to the first encoded, the next call read.
    spin(3);
    q.startNow(() => log.push("b"), 0, 0, 0);
    expect(log).toEqual(["a", "b"]);
    // Two starts of next to nothing, 3 ms between them: the second counts them.
    expect(q.startMs).toBeGreaterThan(1.4);
  });

  it("run queue - by default it predicts no wait before 512 starts: a fresh server's first starts are no measure of the next", async () => {
    const q = new RunQueue(undefined, { sliceMs: 1 });
    const log: string[] = [];
    q.submit(call("busy", log, { spinMs: 3 }));
    for (let i = 0; i < 511; i++) q.submit(call(`c${i}`, log));
    expect(q.expectedWaitMs()).toBe(0);
    await until(log, 512);
    q.submit(call("a", log, { spinMs: 3 }));
    q.submit(call("b", log));
    expect(q.expectedWaitMs()).toBeGreaterThan(0);
    await until(log, 514);
  });

  it("run queue - one start stretched by a pause moves the estimate little; starts that really grow move it within a dozen", async () => {
    const q = new RunQueue(undefined, { sliceMs: 1 }, 8);
    const log: string[] = [];
    const runOne = async (spinMs: number) => {
      const n = log.length + 1;
      q.submit(call(`s${n}`, log, { spinMs }));
      await until(log, n);
    };
    for (let i = 0; i < 12; i++) await runOne(1);
    const before = q.startMs;
    await runOne(40); // a collection or a compilation in the middle of a start
    expect(q.startMs).toBeLessThan(before * 1.35);
    for (let i = 0; i < 12; i++) await runOne(5);
    expect(q.startMs).toBeGreaterThan(3);
  });

  it("run queue - a burst queued during one long read is not shed for that read's time; what then waits behind handlers longer than the interval is", async () => {
    const shedder = new QueueShedder({ targetMs: 5, intervalMs: 40 });
    const q = new RunQueue(shedder, { sliceMs: 1 });
    const log: string[] = [];
    // The first call starts at once and ends the slice; the rest arrive while the "read" goes on.
    q.submit(call("first", log, { spinMs: 2 }));
    for (let i = 0; i < 5; i++) q.submit(call(`b${i}`, log));
    spin(80); // the rest of the read: twice the interval before the queue gets its turn
    await until(log, 6);
    expect(log).toEqual(["first", "b0", "b1", "b2", "b3", "b4"]);
    expect(shedder.shed).toBe(0);
    // Behind handlers: each spins past the slice, one a turn, so the last call's turn comes 45 ms
    // after its first.
    log.length = 0;
    q.submit(call("head", log, { spinMs: 2 }));
    for (let i = 0; i < 3; i++) q.submit(call(`h${i}`, log, { spinMs: 15 }));
    const last = call("last", log);
    q.submit(last);
    await until(log, 5);
    expect(log).toEqual(["head", "h0", "h1", "h2", "refused last"]);
    expect(last.refusal?.code).toBe(Code.RESOURCE_EXHAUSTED);
    // A deadline still counts the whole wait, the read's included.
    log.length = 0;
    q.submit(call("busy", log, { spinMs: 2 }));
    const late = call("late", log, { deadline: Date.now() + 10 });
    q.submit(late);
    spin(15);
    await until(log, 2);
    expect(log).toEqual(["busy", "refused late"]);
    expect(late.refusal?.code).toBe(Code.DEADLINE_EXCEEDED);
  });

  it("run queue - calls from a light peer start before those queued by a peer that floods, and wait behind those alone", async () => {
    const shedder = new QueueShedder({ targetMs: 5, intervalMs: 25 });
    const now = Date.now();
    for (let i = 0; i < 100; i++) shedder.peers.record("flood", 1000, now);
    shedder.peers.record("client", 10, now);
    const q = new RunQueue(shedder, { sliceMs: 1 }, 8);
    const log: string[] = [];
    for (let i = 0; i < 8; i++) {
      q.submit(call(`w${i}`, log));
      await until(log, i + 1);
    }
    log.length = 0;
    q.submit(call("busy", log, { spinMs: 2, peer: "flood" }));
    for (let i = 0; i < 3; i++) q.submit(call(`f${i}`, log, { peer: "flood" }));
    expect(q.isLight("client", now)).toBe(true);
    expect(q.isLight("flood", now)).toBe(false);
    // Behind the three of the flood, or behind none of them.
    expect(q.expectedWaitMs()).toBeCloseTo(4 * q.startMs, 5);
    expect(q.expectedWaitMs(true)).toBeCloseTo(q.startMs, 5);
    q.submit(call("c0", log, { peer: "client" }));
    q.submit(call("c1", log, { peer: "client" }));
    expect(q.expectedWaitMs(true)).toBeCloseTo(3 * q.startMs, 5);
    await until(log, 6);
    expect(log).toEqual(["busy", "c0", "c1", "f0", "f1", "f2"]);
    // At most four light calls in a row while others wait: a flood spread thin over many
    // connections, each of them light, does not starve the rest.
    log.length = 0;
    q.submit(call("busy", log, { spinMs: 2, peer: "flood" }));
    for (let i = 0; i < 3; i++) q.submit(call(`f${i}`, log, { peer: "flood" }));
    for (let i = 0; i < 10; i++) q.submit(call(`c${i}`, log, { peer: "client" }));
    // Behind the ten light calls and the two of the others that go between them.
    expect(q.expectedWaitMs(true)).toBeCloseTo(13 * q.startMs, 5);
    await until(log, 14);
    expect(log).toEqual(["busy", "c0", "c1", "c2", "c3", "f0", "c4", "c5", "c6", "c7", "f1", "c8", "c9", "f2"]);
  });

  it("run queue - bad options are a ConfigError", () => {
    expect(() => new RunQueue(undefined, { maxQueued: 0 })).toThrow(ConfigError);
    expect(() => new RunQueue(undefined, { sliceMs: 0 })).toThrow(ConfigError);
    expect(() => new RunQueue(undefined, { order: "random" as "fifo" })).toThrow(ConfigError);
  });
});
