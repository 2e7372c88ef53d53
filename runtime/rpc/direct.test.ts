import { describe, expect, it } from "vitest";
import { CallContext, ContextValues } from "./context.js";
import type { MethodDescriptor, ServiceDescriptor } from "./descriptors.js";
import { Code, RpcError } from "./errors.js";
import { Metainfo } from "./metainfo.js";
import { composeDirect, isThenable, Later, mapNext, type DirectHandler, type LaterStep } from "./direct.js";
import { CallRequest, CallResponse, type Middleware, type RpcResponse } from "./middleware.js";
import { statsMiddleware, type CallStats } from "./observability/stats.js";

const method = { name: "M", kind: "unary", idempotency: "IDEMPOTENT" } as unknown as MethodDescriptor;
const service: ServiceDescriptor = { typeName: "t.S", methods: { m: method } };
const request = () =>
  new CallRequest(service, method, {}, {}, new CallContext({ side: "server", service, method, headers: {}, metainfo: new Metainfo(), values: new ContextValues() }));
const answer: DirectHandler = () => new CallResponse({ ok: true }, {});

/** A stats middleware that records each call's code. */
function recording(): { codes: string[]; middleware: ReturnType<typeof statsMiddleware> } {
  const codes: string[] = [];
  return { codes, middleware: statsMiddleware([{ finish: (_ctx, s: CallStats) => codes.push(Code[s.code]) }]) };
}

describe("composeDirect", () => {
  it("composeDirect - direct links answer at once, without a promise, and the stats hooks are told", () => {
    const { codes, middleware } = recording();
    const res = composeDirect([middleware], answer)(request());
    expect(isThenable(res)).toBe(false);
    expect((res as RpcResponse).message).toEqual({ ok: true });
    expect(codes).toEqual(["OK"]);
  });

  it("statsMiddleware - a call's start time is on the Date.now() clock, in whole ms", () => {
    const starts: number[] = [];
    const chain = composeDirect([statsMiddleware([{ finish: (_ctx, s) => starts.push(s.startTime) }])], answer);
    for (let i = 0; i < 3; i++) {
      const before = Date.now();
      chain(request());
      const after = Date.now();
      expect(Number.isInteger(starts[i])).toBe(true);
      expect(starts[i]).toBeGreaterThanOrEqual(before - 1);
      expect(starts[i]).toBeLessThanOrEqual(after);
    }
  });

  it("composeDirect - a throw of a direct link stays a throw, told to the stats hooks as an RpcError", () => {
    const { codes, middleware } = recording();
    const chain = composeDirect([middleware], () => {
      throw new RpcError(Code.ABORTED, "conflict");
    });
    expect(() => chain(request())).toThrow(expect.objectContaining({ code: Code.ABORTED }));
    expect(codes).toEqual(["ABORTED"]);
  });

  it("composeDirect - a plain middleware between direct links gets a promise from next, its throw as a rejection", async () => {
    const { codes, middleware } = recording();
    const seen: boolean[] = [];
    const plain: Middleware = (next) => (req) => {
      const p = next(req);
      seen.push(p instanceof Promise);
      return p.then((r) => new CallResponse({ wrapped: r.message }, r.headers));
    };
    const chain = composeDirect([middleware, plain], answer);
    const res = chain(request());
    expect(isThenable(res)).toBe(true);
    expect((await (res as Promise<RpcResponse>)).message).toEqual({ wrapped: { ok: true } });
    expect(codes).toEqual(["OK"]);

    const failing = composeDirect([plain], () => {
      throw new RpcError(Code.UNAVAILABLE, "down");
    });
    await expect(failing(request())).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    expect(seen).toEqual([true, true]);
  });

  it("Later - a link that awaits answers Later; the links around add their steps, run in order once it settles", async () => {
    const { codes, middleware } = recording();
    const order: string[] = [];
    let release!: (v: unknown) => void;
    const awaiting: DirectHandler = () =>
      new Later(
        new Promise((resolve) => (release = resolve)),
        (v) => (order.push("inner"), new CallResponse(v, {})),
        (e) => {
          throw e;
        },
      );
    const res = composeDirect([middleware], awaiting)(request());
    expect(res).toBeInstanceOf(Later);
    expect(isThenable(res)).toBe(false);
    (res as Later).map(
      (r) => (order.push("outer"), r),
      (e) => {
        throw e;
      },
    );
    expect(codes).toEqual([]);
    release({ n: 1 });
    expect((await (res as Later).settle()).message).toEqual({ n: 1 });
    expect(order).toEqual(["inner", "outer"]);
    expect(codes).toEqual(["OK"]);
  });

  it("Later - a failure goes through the failure steps; a step may recover; `end` hands on the outcome", async () => {
    const { codes, middleware } = recording();
    const failing: DirectHandler = () =>
      new Later(
        Promise.reject(new Error("db down")),
        (v) => new CallResponse(v, {}),
        (e) => {
          throw new RpcError(Code.UNAVAILABLE, (e as Error).message);
        },
      );
    const chain = composeDirect([middleware], failing);
    await expect((chain(request()) as Later).settle()).rejects.toMatchObject({ code: Code.UNAVAILABLE, message: "db down" });
    expect(codes).toEqual(["UNAVAILABLE"]);

    const recovered = (chain(request()) as Later).map(
      (r) => r,
      () => new CallResponse({ fallback: true }, {}),
    );
    const outcome = await new Promise<unknown>((resolve) => recovered.end((r) => resolve(r.message), (e) => resolve(e)));
    expect(outcome).toEqual({ fallback: true });

    const thrown = await new Promise<unknown>((resolve) =>
      new Later(Promise.resolve(1), () => {
        throw new RpcError(Code.INTERNAL, "bad output");
      }, (e) => {
        throw e;
      }).end(() => resolve("ok"), (e) => resolve(e)),
    );
    expect(thrown).toMatchObject({ code: Code.INTERNAL, message: "bad output" });
  });

  it("Later - a step that waits again (a retry) returns a promise: the steps after it run once it settles, in `settle` and `end` alike", async () => {
    const order: string[] = [];
    const later = () =>
      new Later(
        Promise.reject(new RpcError(Code.RESOURCE_EXHAUSTED, "shed")),
        (v) => new CallResponse(v, {}),
        (e) => {
          throw e;
        },
      )
        .map(
          (r) => r,
          async (e) => {
            order.push(`retry after ${(e as RpcError).message}`);
            await new Promise((resolve) => setTimeout(resolve, 5));
            return new CallResponse({ second: true }, {});
          },
        )
        .map(
          (r) => (order.push("outer"), new CallResponse({ outer: r.message }, {})),
          (e) => {
            throw e;
          },
        );
    expect((await later().settle()).message).toEqual({ outer: { second: true } });
    expect(await new Promise((resolve) => later().end((r) => resolve(r.message), resolve))).toEqual({ outer: { second: true } });
    expect(order).toEqual(["retry after shed", "outer", "retry after shed", "outer"]);

    // The second attempt fails too: the outer failure steps get its error.
    const failedAgain = new Later(
      Promise.reject(new Error("first")),
      (v) => new CallResponse(v, {}),
      (e) => {
        throw e;
      },
    )
      .map(
        (r) => r,
        () => Promise.reject(new RpcError(Code.UNAVAILABLE, "second")),
      )
      .map(
        (r) => r,
        (e) => {
          throw new RpcError(Code.UNAVAILABLE, `outer saw ${(e as RpcError).message}`);
        },
      );
    await expect(failedAgain.settle()).rejects.toMatchObject({ message: "outer saw second" });
  });

  it("composeDirect - stats' plain form (as compose and user code call it) always returns a promise", async () => {
    const { codes, middleware } = recording();
    const handler = middleware(async () => new CallResponse({}, {}));
    const res = handler(request());
    expect(res).toBeInstanceOf(Promise);
    await res;
    const failing = middleware(() => {
      throw new Error("sync");
    });
    await expect(failing(request())).rejects.toMatchObject({ code: Code.UNKNOWN });
    expect(codes).toEqual(["OK", "UNKNOWN"]);
  });

  it("Later - a step object's methods run as methods, first or last, on success and on failure", async () => {
    // What the client's transport end and its caller's end are: one object each, no closures.
    class Tagging implements LaterStep {
      next: LaterStep | undefined = undefined;
      readonly seen: string[] = [];
      constructor(private readonly tag: string) {}
      ok(v: unknown): unknown {
        this.seen.push(`ok ${this.tag}`);
        return v instanceof CallResponse ? v : new CallResponse(v, { tag: this.tag });
      }
      failed(e: unknown): never {
        this.seen.push(`failed ${this.tag}`);
        throw new RpcError(Code.UNAVAILABLE, `${this.tag}: ${(e as Error).message}`);
      }
    }
    const first = new Tagging("first");
    const last = new Tagging("last");
    const done = new Later(Promise.resolve({ n: 1 }), first).map(
      (r) => r,
      (e) => {
        throw e;
      },
    );
    const res = await done.settleAs<RpcResponse>(last);
    expect([res.message, res.headers]).toEqual([{ n: 1 }, { tag: "first" }]);
    expect([first.seen, last.seen]).toEqual([["ok first"], ["ok last"]]);

    const a = new Tagging("a");
    const b = new Tagging("b");
    await expect(new Later(Promise.reject(new Error("down")), a).settleAs(b)).rejects.toMatchObject({ code: Code.UNAVAILABLE, message: "b: a: down" });
    expect([a.seen, b.seen]).toEqual([["failed a"], ["failed b"]]);
  });

  it("mapNext - a step object gets the outcome of a link that answers at once, throws, answers a promise or Later", async () => {
    class Recovering implements LaterStep {
      next: LaterStep | undefined = undefined;
      readonly seen: string[] = [];
      ok(v: unknown): unknown {
        this.seen.push("ok");
        return v;
      }
      failed(e: unknown): unknown {
        this.seen.push(`failed ${(e as Error).message}`);
        return new CallResponse({ recovered: true }, {});
      }
    }
    const response = new CallResponse({ n: 1 }, {});
    const cases: [string, DirectHandler, unknown][] = [
      ["at once", () => response, { n: 1 }],
      ["throws", () => {
        throw new Error("sync");
      }, { recovered: true }],
      ["promise", () => Promise.reject(new Error("async")), { recovered: true }],
      ["later", () => new Later(Promise.resolve({ n: 2 }), (v) => new CallResponse(v, {}), (e) => {
        throw e;
      }), { n: 2 }],
    ];
    const seen: string[][] = [];
    for (const [, link, want] of cases) {
      const step = new Recovering();
      const answer = mapNext(link, request(), step);
      const res = answer instanceof Later ? await answer.settle() : await answer;
      expect(res.message).toEqual(want);
      seen.push(step.seen);
    }
    expect(seen).toEqual([["ok"], ["failed sync"], ["failed async"], ["ok"]]);
  });
});
