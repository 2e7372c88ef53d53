/**
 * Unary calls through createClient / createServer, the same behaviours on every transport:
 * test/conformance/conformance.test.ts runs it on memory, TCP, gRPC and NATS. What only one
 * transport has (its framing, TLS, hostile peers, interop with grpc-js, gateways) stays in that
 * transport's own tests.
 */
import { setTimeout as wait } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { BizError, Code, RpcError, type CallContext } from "meridian-rpc";
import type { MessageCodec, ServiceDescriptor } from "meridian-rpc/runtime";
import { AdminService, EchoReply, EchoRequest, EchoService } from "../rpc/gen/echo.js";
import { expectContextCarried } from "../rpc/helpers.js";
import type { Bed } from "./beds.js";
import { rejection } from "../support/rejection.js";

/** Bytes no EchoRequest or EchoReply decodes from: field 1 announces 5 bytes and carries 1. */
const TRUNCATED = Uint8Array.of(0x0a, 0x05, 0x01);

/** `codec` with its encoder replaced: it writes TRUNCATED whatever the message. */
function writesTruncated<T extends object>(codec: MessageCodec<T>): MessageCodec<T> {
  return { ...codec, encodeTo: (_m: T, w) => w.raw(TRUNCATED), encode: () => TRUNCATED };
}

/** EchoService whose Echo request (`side` "request") or reply ("reply") goes on the wire as TRUNCATED. */
function brokenEcho(side: "request" | "reply"): ServiceDescriptor {
  const echo = EchoService.methods.echo;
  return {
    typeName: EchoService.typeName,
    methods: {
      echo: side === "request" ? { ...echo, input: writesTruncated(EchoRequest) } : { ...echo, output: writesTruncated(EchoReply) },
    },
  };
}

/** Registers the unary conformance suite for `bed`. */
export function unarySuite(bed: Bed): void {
  const n = bed.name;
  afterEach(() => bed.close());

  describe(`${n} conformance - unary calls`, () => {
    it(`${n} conformance - region, consistency, metainfo and deadline cross the wire; the served region comes back`, async () => {
      const s = await bed.echoServer("a");
      const client = bed.clientOf(EchoService, [s.address], { consistency: "linearizable" });
      await expectContextCarried(client, s.calls, bed.peer);
    });

    it(`${n} conformance - request headers reach the handler, response headers and backward metainfo come back`, async () => {
      const s = await bed.echoServer("a", {
        handlers: {
          echo: (req, ctx) => {
            ctx.responseHeaders["x-answer"] = `${ctx.headers["x-question"]}!`;
            ctx.metainfo.setBackward("SEEN", req.text);
            return { text: req.text };
          },
        },
      });
      let headers: Record<string, string> = {};
      const reply = await bed.clientOf(EchoService, [s.address]).echo({ text: "q" }, { headers: { "x-question": "why" }, onHeaders: (h) => (headers = h) });
      expect(reply.text).toBe("q");
      expect(headers["x-answer"]).toBe("why!");
      expect(headers["x-served-region"]).toBe("cn-east");
    });

    it(`${n} conformance - many calls at once, answered out of order`, async () => {
      const s = await bed.echoServer("a");
      const client = bed.clientOf(EchoService, [s.address]);
      const delays = [50, 0, 30, 10, 40, 20];
      const replies = await Promise.all(delays.map((d, i) => client.get({ text: `t${i}`, delayMs: d })));
      replies.forEach((r, i) => expect(r.text).toBe(`t${i}`));
    });

    it(`${n} conformance - the client's timeout reaches the handler; a slow handler gives DEADLINE_EXCEEDED and its signal aborts`, async () => {
      const s = await bed.echoServer("a");
      const e = await rejection(bed.clientOf(EchoService, [s.address]).echo({ text: "slow", delayMs: 5000 }, { timeoutMs: 150 }));
      expect(e.code).toBe(Code.DEADLINE_EXCEEDED);
      const ctx = s.calls[0]!.ctx as CallContext;
      expect(ctx.deadline).toBeDefined();
      const end = Date.now() + 3000;
      while (!ctx.signal.aborted && Date.now() < end) await wait(10);
      expect(ctx.signal.aborted).toBe(true);
    });

    it(`${n} conformance - errors keep their codes and messages; business errors come back as BizError; a handler's bug is INTERNAL without its text`, async () => {
      const s = await bed.echoServer("a", {
        handlers: {
          echo: () => {
            throw new RpcError(Code.NOT_FOUND, "no such thing");
          },
          get: () => {
            throw new BizError(4001, "quota", { plan: "free" });
          },
          put: () => {
            throw new Error("bug with a secret");
          },
        },
      });
      const client = bed.clientOf(EchoService, [s.address]);
      const notFound = await rejection(client.echo({}));
      expect(notFound.code).toBe(Code.NOT_FOUND);
      expect(notFound.message).toBe("no such thing");
      const biz = (await rejection(client.get({}))) as BizError;
      expect(biz).toBeInstanceOf(BizError);
      expect(biz.bizCode).toBe(4001);
      expect(biz.bizMessage).toBe("quota");
      expect(biz.extra).toEqual({ plan: "free" });
      const internal = await rejection(client.put({}));
      expect(internal.code).toBe(Code.INTERNAL);
      expect(internal.message).not.toContain("secret");
      expect(s.logged).toHaveLength(1);
    });

    it(`${n} conformance - a service the server does not register is UNIMPLEMENTED`, async () => {
      const s = await bed.echoServer("a");
      const e = await rejection(bed.clientOf(AdminService, [s.address]).status({}));
      expect(e.code).toBe(Code.UNIMPLEMENTED);
    });

    it(`${n} conformance - cancelling a call: CANCELLED at the client; the handler's signal aborts where the wire can say so`, async () => {
      const s = await bed.echoServer("a");
      const ac = new AbortController();
      const p = rejection(bed.clientOf(EchoService, [s.address]).echo({ text: "x", delayMs: 5000 }, { signal: ac.signal }));
      const end = Date.now() + 3000;
      while (s.calls.length === 0 && Date.now() < end) await wait(5);
      ac.abort();
      expect((await p).code).toBe(Code.CANCELLED);
      if (!bed.cancelsUnary) return;
      const ctx = s.calls[0]!.ctx;
      while (!ctx.signal.aborted && Date.now() < end) await wait(10);
      expect(ctx.signal.aborted).toBe(true);
    });

    it(`${n} conformance - a request that does not decode is INVALID_ARGUMENT, its handler never runs`, async () => {
      const s = await bed.echoServer("a");
      const e = await rejection(bed.clientOf(brokenEcho("request"), [s.address]).echo({ text: "x" }));
      expect(e.code).toBe(Code.INVALID_ARGUMENT);
      expect(e.message).toMatch(/^cannot decode the request of rpctest\.EchoService\/Echo: /);
      expect(s.calls).toHaveLength(0);
    });

    it(`${n} conformance - a response that does not decode is INTERNAL, saying which method`, async () => {
      const s = await bed.echoServer("a", { service: brokenEcho("reply") });
      const e = await rejection(bed.clientOf(EchoService, [s.address]).echo({ text: "x" }));
      expect(e.code).toBe(Code.INTERNAL);
      expect(e.message).toMatch(/^cannot decode the response of rpctest\.EchoService\/Echo: /);
    });

    it(`${n} conformance - large messages both ways`, async () => {
      const s = await bed.echoServer("a");
      const text = "大".repeat(Math.floor((bed.largest - 4096) / 3));
      const reply = await bed.clientOf(EchoService, [s.address]).echo({ text }, { timeoutMs: 20_000 });
      expect(reply.text.length).toBe(text.length);
      expect(reply.text === text).toBe(true);
    });

    it(`${n} conformance - graceful close: calls in flight finish; later calls go to the other server`, async () => {
      const a = await bed.echoServer("a");
      const b = await bed.echoServer("b");
      const client = bed.clientOf(EchoService, [a.address, b.address], { retry: {} });
      const inflight = [1, 2, 3, 4, 5, 6].map((i) => client.get({ text: `g${i}`, delayMs: 150 }));
      const end = Date.now() + 3000;
      while (a.calls.length === 0 && Date.now() < end) await wait(5);
      const closing = a.server.close({ graceMs: 5000 });
      const done = await Promise.all(inflight);
      done.forEach((r, i) => expect(r.text).toBe(`g${i + 1}`));
      await closing;
      for (let i = 0; i < 6; i++) expect((await client.get({ text: "after" }, { timeoutMs: 5000 })).servedBy).toBe("b");
    });
  });
}
