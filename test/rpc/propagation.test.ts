import { afterEach, describe, expect, it } from "vitest";
import { Code, Metainfo, RpcError, createClient, type CallContext } from "meridian-rpc";
import { sleep, statusFromHeaders } from "meridian-rpc/transport";
import { MemoryCall } from "meridian-rpc/transports/memory";
import { EchoService } from "./gen/echo.js";
import { Bed } from "./helpers.js";

const bed = new Bed();
afterEach(() => bed.close());

/** Resolves with the reason `ctx`'s signal aborts with. */
function aborted(ctx: CallContext): Promise<RpcError> {
  return new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve(ctx.signal.reason as RpcError), { once: true }));
}

describe("metainfo", () => {
  for (const mode of ["automatic (AsyncLocalStorage)", "explicit parent"] as const) {
    it(`metainfo - transient, persistent and backward across two hops, ${mode}`, async () => {
      const explicit = mode === "explicit parent";
      const b = await bed.echo({ asyncContext: !explicit }, {
        echo: (_req, ctx) => {
          ctx.metainfo.setBackward("from-b", "b1");
          return {
            text: JSON.stringify({
              transient: Object.fromEntries(ctx.metainfo.all("transient")),
              persistent: Object.fromEntries(ctx.metainfo.all("persistent")),
            }),
          };
        },
      });
      const toB = bed.client(b.address);
      let seenByA = {};
      let backFromB: string | undefined;
      const a = await bed.echo({ asyncContext: !explicit }, {
        echo: async (_req, ctx) => {
          seenByA = {
            transient: Object.fromEntries(ctx.metainfo.all("transient")),
            persistent: Object.fromEntries(ctx.metainfo.all("persistent")),
          };
          ctx.metainfo.setPersistent("added-by-a", "p2");
          const mi = new Metainfo().setTransient("a-to-b", "t2");
          const reply = await toB.echo({}, { metainfo: mi, parent: explicit ? ctx : undefined });
          backFromB = mi.getBackward("from-b");
          ctx.metainfo.setBackward("from-a", "a1");
          return reply;
        },
      });
      const mi = new Metainfo().setTransient("user", "u1").setPersistent("trace", "p1");
      const reply = await bed.client(a.address).echo({}, { metainfo: mi });

      expect(seenByA).toEqual({ transient: { user: "u1" }, persistent: { trace: "p1" } });
      expect(JSON.parse(reply.text), "B sees A's transient only, and every persistent value").toEqual({
        transient: { "a-to-b": "t2" },
        persistent: { trace: "p1", "added-by-a": "p2" },
      });
      expect(backFromB).toBe("b1");
      expect(Object.fromEntries(mi.all("backward")), "backward values travel one hop").toEqual({ "from-a": "a1" });
    });
  }

  it("metainfo - on the wire as RPC_TRANSIT_ / RPC_PERSIST_ / RPC_BACKWARD_ headers, prefixes read in any case", async () => {
    let ctx: CallContext | undefined;
    const { address } = await bed.echo({}, {
      echo: (_req, c) => {
        ctx = c;
        c.metainfo.setBackward("Answer", "42");
        return {};
      },
    });
    const mi = new Metainfo().setTransient("Tenant", "acme").setPersistent("req-id", "r1");
    let back = {};
    await bed.client(address).echo({}, { metainfo: mi, headers: { "rpc_transit_lower": "x" }, onHeaders: (h) => (back = h) });
    expect(ctx?.headers).toMatchObject({ RPC_TRANSIT_Tenant: "acme", "RPC_PERSIST_req-id": "r1" });
    expect(ctx?.metainfo.getTransient("Tenant")).toBe("acme");
    expect(ctx?.metainfo.getTransient("lower"), "a lower-cased prefix (HTTP/2 metadata) still reads").toBe("x");
    expect(back).toMatchObject({ RPC_BACKWARD_Answer: "42" });
    expect(mi.getBackward("Answer")).toBe("42");
  });
});

describe("deadline", () => {
  it("deadline - the client's timeout fails the call and expires the server's context with it", async () => {
    let serverCtx: CallContext | undefined;
    let reason: Promise<RpcError> | undefined;
    const { address } = await bed.echo({}, {
      echo: async (_req, ctx) => {
        serverCtx = ctx;
        reason = aborted(ctx);
        await reason;
        return { text: "too late" };
      },
    });
    const t0 = Date.now();
    const err = (await bed.client(address, { timeoutMs: 30 }).echo().catch((e: unknown) => e)) as RpcError;
    expect(err).toBeInstanceOf(RpcError);
    expect(err.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(serverCtx?.deadline).toBeGreaterThanOrEqual(t0 + 30);
    expect(serverCtx?.deadline).toBeLessThanOrEqual(t0 + 30 + 200);
    expect((await reason)?.code).toBe(Code.DEADLINE_EXCEEDED);
  });

  it("deadline - the client fails at its deadline even when the transport ignores the signal", async () => {
    const client = createClient(EchoService, {
      transport: { unary: () => new Promise(() => {}), close: async () => {} },
      timeoutMs: 20,
    });
    const t0 = Date.now();
    await expect(client.echo()).rejects.toMatchObject({ code: Code.DEADLINE_EXCEEDED });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it("deadline - a server drops a handler's answer that comes after the deadline", async () => {
    const { address } = await bed.echo({}, {
      echo: async () => {
        await new Promise((r) => setTimeout(r, 30)); // ignores ctx.signal
        return { text: "late" };
      },
    });
    const reply = await bed.network.lookup(address)!.serve(new MemoryCall(EchoService.typeName, "Echo", {}, new Uint8Array(0), Date.now() + 10, "memory://raw"));
    expect(reply.encode).toBeUndefined();
    expect(statusFromHeaders(reply.headers)).toMatchObject({
      code: Code.DEADLINE_EXCEEDED,
      message: "the handler answered after the deadline",
    });
  });

  it("deadline - a call made inside a handler inherits what is left of the deadline (automatically and via parent)", async () => {
    const b = await bed.echo();
    const toB = bed.client(b.address, { timeoutMs: 10_000 });
    let outerDeadline: number | undefined;
    const a = await bed.echo({}, {
      echo: async (_req, ctx) => {
        outerDeadline = ctx.deadline;
        await sleep(20, ctx.signal);
        await toB.echo({ text: "auto" });
        await toB.echo({ text: "explicit" }, { parent: ctx });
        await toB.echo({ text: "shorter" }, { timeoutMs: 50 });
        await toB.echo({ text: "detached" }, { parent: null });
        return {};
      },
    });
    const t0 = Date.now();
    await bed.client(a.address, { timeoutMs: 500 }).echo();
    const deadlines = Object.fromEntries(b.calls.map((c) => [c.request.text, c.ctx.deadline]));
    expect(outerDeadline).toBeGreaterThanOrEqual(t0 + 500);
    expect(deadlines["auto"]).toBe(outerDeadline);
    expect(deadlines["explicit"]).toBe(outerDeadline);
    expect(deadlines["shorter"]).toBeLessThan(outerDeadline!);
    expect(deadlines["detached"], "parent: null takes the client's own timeout").toBeGreaterThan(t0 + 5000);
  });

  it("deadline - a nested call whose parent's deadline has passed fails at once, not sent", async () => {
    const b = await bed.echo();
    const toB = bed.client(b.address);
    let nested: Promise<unknown> | undefined;
    const a = await bed.echo({}, {
      echo: async () => {
        await new Promise((r) => setTimeout(r, 30)); // past the deadline, ignoring ctx.signal
        nested = toB.echo().catch((e: unknown) => e);
        return {};
      },
    });
    await expect(bed.client(a.address, { timeoutMs: 10 }).echo()).rejects.toMatchObject({ code: Code.DEADLINE_EXCEEDED });
    while (nested === undefined) await new Promise((r) => setTimeout(r, 5));
    expect(await nested).toMatchObject({ code: Code.DEADLINE_EXCEEDED, notSent: true });
    expect(b.calls).toHaveLength(0);
  });

  it("deadline - cancelling a call aborts the server's context, and the nested calls it made", async () => {
    const b = await bed.echo();
    const toB = bed.client(b.address);
    const a = await bed.echo({}, { echo: () => toB.echo({ delayMs: 5000 }) });
    const controller = new AbortController();
    const call = bed.client(a.address).echo({}, { signal: controller.signal });
    while (b.calls.length === 0) await new Promise((r) => setTimeout(r, 1));
    const inB = aborted(b.calls[0]!.ctx);
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: Code.CANCELLED });
    expect((await inB).code).toBe(Code.CANCELLED);
  });
});
