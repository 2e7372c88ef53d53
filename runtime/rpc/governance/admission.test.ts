import { describe, expect, it } from "vitest";
import { Code, ConfigError } from "../errors.js";
import { HeaderKeys } from "../transport.js";
import { QueueShedder, SendDelayEstimator } from "./admission.js";

describe("admission", () => {
  it("admission - a burst is absorbed: until the queue has stood for intervalMs, only calls that waited longer than intervalMs are shed", () => {
    const s = new QueueShedder({ targetMs: 5, intervalMs: 100 }, 0);
    expect(s.check(2, 10)).toBeUndefined(); // short: the queue was empty at t=10
    expect(s.check(50, 20)).toBeUndefined(); // long, but the queue has stood for 10 ms only
    expect(s.check(99, 109)).toBeUndefined();
    const late = s.check(150, 60);
    expect(late?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(late?.notSent).toBe(true);
    expect(late?.headers[HeaderKeys.queueDelay]).toBe("150");
  });

  it("admission - once the queue has stood above target for intervalMs, calls that waited longer than targetMs are shed until the overload has been over for intervalMs", () => {
    const s = new QueueShedder({ targetMs: 5, intervalMs: 100 }, 0);
    expect(s.check(1, 0)).toBeUndefined();
    for (let t = 10; t <= 100; t += 10) expect(s.check(20, t), `t=${t}`).toBeUndefined();
    const shed = s.check(20, 101);
    expect(s.dropping).toBe(true);
    expect(shed?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(shed?.message).toMatch(/waited 20 ms .*stood above 5 ms/);
    expect(s.check(6, 102)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    // A call that starts in time does not end the overload: the next long one is shed too.
    expect(s.check(4, 103)).toBeUndefined();
    expect(s.check(20, 104)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    // Only a whole interval without a long wait does.
    for (let t = 110; t <= 204; t += 10) expect(s.check(3, t)).toBeUndefined();
    expect(s.dropping).toBe(true);
    expect(s.check(3, 205)).toBeUndefined();
    expect(s.dropping).toBe(false);
    // Long after that (16 intervals), a long wait is a burst again, not a standing queue.
    expect(s.check(3, 1805)).toBeUndefined();
    expect(s.check(20, 1806)).toBeUndefined();
    expect(s.dropping).toBe(false);
    expect(s.shed).toBe(3);
  });

  it("admission - a queue that stands again in the server's own run queue soon after dropping ended is dropped at once, as CoDel resumes", () => {
    const s = new QueueShedder({ targetMs: 5, intervalMs: 100 }, 0);
    expect(s.check(1, 0)).toBeUndefined();
    for (let t = 10; t <= 100; t += 10) s.check(20, t);
    expect(s.check(20, 101)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    for (let t = 110; t <= 205; t += 5) s.check(3, t);
    expect(s.dropping).toBe(false);
    // Within 16 intervals of that, the first call that would wait past the target in the run
    // queue starts dropping again, without a whole interval above the target first.
    const again = s.check(20, 300);
    expect(s.dropping).toBe(true);
    expect(again?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(again?.message).toMatch(/stood above 5 ms/);
  });

  it("admission - dropping stops once the server's own run queue has been empty for intervalMs: a wait spent before the read is not shortened by shedding", () => {
    const s = new QueueShedder({ targetMs: 5, intervalMs: 100 }, 0);
    expect(s.check(1, 0)).toBeUndefined();
    // A standing queue, partly in the run queue (10 ms of each wait): dropping.
    for (let t = 10; t <= 100; t += 10) s.check(20, t, "normal", undefined, 10);
    expect(s.check(20, 101, "normal", undefined, 10)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(s.dropping).toBe(true);
    // From now on the run queue is empty and the waits are all before the read (a closed loop of
    // one client: the caller's batching, the kernel's buffers). Within the interval: still dropping.
    expect(s.check(20, 150, "normal", undefined, 0)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(s.check(3, 160, "normal", undefined, 0)).toBeUndefined();
    expect(s.dropping).toBe(true);
    // A whole interval without a call waiting in the run queue: dropping stops, and a long wait is
    // judged against intervalMs again (the queue does not stand: a call was short at 160).
    expect(s.check(20, 202, "normal", undefined, 0)).toBeUndefined();
    expect(s.dropping).toBe(false);
    // Without anything short for an interval it is a standing queue again, wherever the wait is;
    // a wait before the read alone does not start dropping again before that.
    for (let t = 210; t <= 260; t += 10) expect(s.check(20, t, "normal", undefined, 0), `t=${t}`).toBeUndefined();
    expect(s.check(20, 261, "normal", undefined, 0)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(s.dropping).toBe(true);
    // Ended the same way again (the run queue still empty), a wait before the read does not
    // resume dropping, but one past the target in the run queue itself does, at once.
    expect(s.check(3, 300, "normal", undefined, 0)).toBeUndefined();
    expect(s.dropping).toBe(false);
    expect(s.check(20, 362, "normal", undefined, 0)).toBeUndefined();
    expect(s.dropping).toBe(false);
    expect(s.check(20, 370, "normal", undefined, 10)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(s.dropping).toBe(true);
  });

  it("admission - a quiet spell with no calls is not a standing queue: the first call that waits after it is a burst", () => {
    const s = new QueueShedder({ targetMs: 5, intervalMs: 100 }, 0);
    expect(s.check(1, 0)).toBeUndefined();
    expect(s.check(50, 500)).toBeUndefined(); // idle for 500 ms, then a call that waits
    expect(s.dropping).toBe(false);
    // A dropping shedder that sees no call for an interval stops dropping too.
    for (let t = 510; t <= 620; t += 10) s.check(20, t);
    expect(s.dropping).toBe(true);
    expect(s.check(20, 900)).toBeUndefined();
    expect(s.dropping).toBe(false);
  });

  it("admission - stale() judges a wait without counting it as a sample", () => {
    const s = new QueueShedder({ targetMs: 5, intervalMs: 100 }, 0);
    expect(s.stale(50)).toBeUndefined();
    expect(s.stale(150)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    s.dropping = true;
    expect(s.stale(6)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(s.stale(4)).toBeUndefined();
    expect(s.shed).toBe(2);
  });

  it("admission - priorities: sheddable calls are shed past the target even in a burst, critical ones only past the interval even from a standing queue", () => {
    const s = new QueueShedder({ targetMs: 5, intervalMs: 100 }, 0);
    expect(s.check(20, 10, "sheddable")?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(s.check(20, 11)).toBeUndefined();
    s.dropping = true;
    expect(s.check(20, 12)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(s.check(20, 13, "critical")).toBeUndefined();
    expect(s.check(150, 14, "critical")?.code).toBe(Code.RESOURCE_EXHAUSTED);
  });

  it("admission - a call may wait a share of its own timeout when that is longer: a twentieth in a standing queue, a quarter in a burst, capped", () => {
    const s = new QueueShedder({ targetMs: 5, intervalMs: 25 }, 0);
    // No timeout, or a short one: the floors.
    expect(s.allowedMs("normal")).toBe(25);
    expect(s.allowedMs("normal", 60)).toBe(25);
    expect(s.allowedMs("normal", 2000)).toBe(500);
    expect(s.stale(300)?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(s.stale(300, "normal", undefined, 1, 2000)).toBeUndefined();
    expect(s.stale(501, "normal", undefined, 2, 2000)?.message).toMatch(/waited longer than 500 ms/);
    // The timeout is the caller's: a burst may wait at most 40 intervals (1 s).
    expect(s.allowedMs("normal", 20_000)).toBe(1000);
    expect(s.allowedMs("normal", 30 * 86_400_000)).toBe(1000);
    s.dropping = true;
    expect(s.allowedMs("normal")).toBe(5);
    expect(s.allowedMs("normal", 60)).toBe(5);
    expect(s.allowedMs("normal", 1000)).toBe(50);
    expect(s.check(40, 3, "normal", undefined, 40, 1000)).toBeUndefined();
    expect(s.check(51, 4, "normal", undefined, 51, 1000)?.message).toMatch(/sheds what waited longer than 50 ms/);
    // A standing queue, at most 40 intervals too, whatever the timeout.
    expect(s.allowedMs("normal", 10_000)).toBe(500);
    expect(s.allowedMs("normal", 30 * 86_400_000)).toBe(1000);
    // Sheddable calls keep the target, critical ones get the burst's share.
    expect(s.allowedMs("sheddable", 20_000)).toBe(5);
    expect(s.allowedMs("critical", 2000)).toBe(500);
    expect(s.allowedMs("critical", 30 * 86_400_000)).toBe(1000);
    expect(s.allowedMs("critical")).toBe(25);
  });

  it("admission - bad options are a ConfigError", () => {
    expect(() => new QueueShedder({ targetMs: 0 })).toThrow(ConfigError);
    expect(() => new QueueShedder({ targetMs: 50, intervalMs: 10 })).toThrow(ConfigError);
  });

  it("admission - the send delay is what a call adds over the smallest offset seen, whatever the clocks' difference", () => {
    for (const skew of [0, 5_000, -86_400_000]) {
      const e = new SendDelayEstimator();
      const t0 = 1_000_000;
      // Peer clock = local clock + skew; one-way latency 1 ms.
      expect(e.waited(t0 + skew - 1, t0)).toBe(0);
      expect(e.waited(t0 + 10 + skew - 1, t0 + 10)).toBe(0);
      expect(e.waited(t0 + 20 + skew - 1, t0 + 60)).toBe(40); // read 40 ms late
      expect(e.waited(t0 + 70 + skew - 1, t0 + 70)).toBe(0);
    }
  });

  it("admission - the baseline may rise after a window (a clock stepped back), and a lower offset lowers it at once", () => {
    const e = new SendDelayEstimator();
    expect(e.waited(0, 100)).toBe(0); // offset 100
    expect(e.waited(5_000, 5_150)).toBe(50);
    // The peer's clock steps back by 30 ms: offsets are 130 from now on.
    expect(e.waited(9_000, 9_130)).toBe(30);
    expect(e.waited(10_100, 10_230)).toBe(30); // a new window, but the last one still holds its minimum of 100
    expect(e.waited(20_200, 20_330)).toBe(0); // two windows later the baseline is 130
    expect(e.waited(20_300, 20_320)).toBe(0); // a lower offset (20) is the new baseline
    expect(e.waited(20_400, 20_430)).toBe(10);
  });
});
