/**
 * Deadlines of any size: timeouts past setTimeout's range (2^31 - 1 ms) keep the call alive
 * instead of failing it at once, and no TimeoutOverflowWarning is emitted.
 */
import { setTimeout as wait } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CallContext, Code, ContextValues, Metainfo, RpcError, backupMiddleware, Cancellation } from "meridian-rpc";
import { MAX_TIMER_MS, deadlineAfter, sleep, startTimer, timerDelay } from "meridian-rpc/transport";
import { EchoService } from "./gen/echo.js";
import { Bed, HUGE_TIMEOUTS, watchWarnings } from "./helpers.js";

let watch: ReturnType<typeof watchWarnings>;
beforeEach(() => {
  watch = watchWarnings();
});
afterEach(async () => {
  vi.useRealTimers();
  await wait(5); // warnings are emitted on a later tick
  watch.stop();
  expect(watch.warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
});

function context(deadline: number | undefined): CallContext {
  return new CallContext({
    side: "client",
    service: EchoService,
    method: EchoService.methods.echo,
    headers: {},
    metainfo: new Metainfo(),
    values: new ContextValues(),
    deadline,
  });
}

describe("deadlines - any size", () => {
  it("deadlines - deadlineAfter keeps any finite timeout; Infinity, NaN, 0 and less are none", () => {
    const now = 1_000;
    for (const t of HUGE_TIMEOUTS) expect(deadlineAfter(t, now)).toBe(now + t);
    for (const t of [Infinity, Number.NaN, 0, -1, -Infinity, undefined]) expect(deadlineAfter(t, now)).toBeUndefined();
  });

  it("deadlines - timerDelay clamps to setTimeout's range", () => {
    expect(timerDelay(10)).toBe(10);
    expect(timerDelay(-5)).toBe(0);
    expect(timerDelay(Number.NaN)).toBe(0);
    expect(timerDelay(2 ** 31)).toBe(MAX_TIMER_MS);
    expect(timerDelay(Infinity)).toBe(MAX_TIMER_MS);
  });

  it("deadlines - a call context with a huge deadline is not aborted", async () => {
    const contexts = HUGE_TIMEOUTS.map((t) => context(deadlineAfter(t)));
    for (const c of contexts) expect(c.signal.aborted).toBe(false); // reading the signal arms the timer
    await wait(30);
    for (const c of contexts) {
      expect(c.signal.aborted).toBe(false);
      expect(c.timeLeft()).toBeGreaterThan(2 ** 30);
      c.dispose();
    }
  });

  it("deadlines - expireAt with a huge or infinite deadline after activation re-arms without firing", async () => {
    const c = context(undefined);
    expect(c.cancellation.aborted).toBe(false);
    c.expireAt(Date.now() + 2 ** 40);
    c.expireAt(Infinity);
    await wait(20);
    expect(c.cancellation.aborted).toBe(false);
    c.expireAt(Date.now() + 10); // a near deadline still fires
    await wait(60);
    expect((c.cancellation.reason as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
    c.dispose();
  });

  it("deadlines - startTimer waits out delays past 2^31 - 1 ms in steps (fake clock)", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const fired: string[] = [];
    startTimer(2 ** 32, () => fired.push("2^32"));
    const cancelled = startTimer(2 ** 31, () => fired.push("cancelled"));
    startTimer(Infinity, () => fired.push("never"));
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).toEqual([]);
    cancelled.cancel();
    vi.advanceTimersByTime(2 ** 32 - MAX_TIMER_MS - 1);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(["2^32"]);
    vi.advanceTimersByTime(2 ** 33);
    expect(fired).toEqual(["2^32"]);
    vi.clearAllTimers();
  });

  it("deadlines - sleep and a backup request's delay past 2^31 - 1 ms do not fire early", async () => {
    const signal = new Cancellation();
    let slept = false;
    const s = sleep(2 ** 31, signal).then(() => (slept = true), (e: unknown) => e);
    // A backup request due in 2^31 ms: only the first attempt goes out.
    let attempts = 0;
    const call = context(undefined);
    const backup = backupMiddleware({ delayMs: 2 ** 31 })(async () => {
      attempts++;
      await wait(40);
      return { message: {}, headers: {} };
    });
    const p = backup({ service: EchoService, method: EchoService.methods.get, message: {}, headers: {}, ctx: call });
    await wait(20);
    expect(slept).toBe(false);
    expect(attempts).toBe(1);
    await p;
    signal.abort(new RpcError(Code.CANCELLED, "done"));
    expect(((await s) as RpcError).code).toBe(Code.CANCELLED);
    call.dispose();
  });

  it("deadlines - calls with huge timeouts succeed end to end (memory transport)", async () => {
    const bed = new Bed();
    try {
      const s = await bed.echo();
      const client = bed.client(s.address);
      for (const timeoutMs of [...HUGE_TIMEOUTS, Infinity]) {
        const reply = await client.echo({ text: "x", delayMs: 15 }, { timeoutMs });
        expect(reply.text).toBe("x");
      }
      for (const { ctx } of s.calls) expect(ctx.signal.aborted).toBe(false);
    } finally {
      await bed.close();
    }
  });
});
