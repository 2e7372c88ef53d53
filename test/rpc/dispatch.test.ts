/**
 * The server's dispatcher as a transport drives it: through `to` and a reply sink (TCP, gRPC and
 * NATS do), through its promise (any other transport), and through `dispatchCall` for both.
 */
import { describe, expect, it } from "vitest";
import { Cancellation, Code, createServer, type Server, type ServerOptions, type ServerTransport } from "meridian-rpc";
import { Writer } from "meridian-rpc/runtime";
import { dispatchCall, errorHeaders, statusFromHeaders, type CallDispatcher, type IncomingCall, type OutgoingReply } from "meridian-rpc/transport";
import { EchoReply, EchoRequest, EchoService } from "./gen/echo.js";

/** A server over a transport that only keeps the dispatcher it is given. */
async function serverWith(handlers: Parameters<Server["register"]>[1], logged: unknown[] = [], options: Partial<ServerOptions> = {}): Promise<CallDispatcher> {
  let dispatch: CallDispatcher | undefined;
  const transport: ServerTransport = {
    listen: async (d) => {
      dispatch = d;
      return { address: "in-test" };
    },
    close: async () => undefined,
  };
  const server = createServer({ transport, logger: { error: (message) => logged.push(message) }, ...options }).register(EchoService, handlers);
  await server.listen();
  return dispatch!;
}

/** An incoming Echo call (or `method`) carrying `text`. */
function incoming(text: string, method = "Echo"): IncomingCall {
  return {
    service: EchoService.typeName,
    method,
    headers: {},
    payload: EchoRequest.encode(EchoRequest.create({ text })),
    signal: new Cancellation(),
    peer: "127.0.0.1:1",
    deadline: undefined,
  };
}

/** The text of a reply, or its status when it failed. */
function textOf(reply: OutgoingReply): string {
  const err = statusFromHeaders(reply.headers);
  if (err !== undefined) return `${Code[err.code]}: ${err.message}`;
  const w = new Writer();
  reply.encode!(w);
  return EchoReply.decode(w.finish()).text;
}

const handlers = {
  echo: (req: EchoRequest) => {
    if (req.text === "throw") throw new Error("boom");
    if (req.text === "later") return new Promise<Partial<EchoReply>>((resolve) => setTimeout(() => resolve({ text: "answered later" }), 5));
    return { text: `at once: ${req.text}` };
  },
};

describe("dispatcher", () => {
  it("dispatcher - through `to`, a handler that does not await is answered before `to` returns", async () => {
    // Without admission: its run queue may hold a call that follows another in the same turn.
    const dispatch = await serverWith(handlers, [], { admission: false });
    expect(dispatch.to).toBeTypeOf("function");
    const replies: string[] = [];
    const call = incoming("x");
    dispatch.to!(call, (c, reply) => {
      expect(c).toBe(call);
      replies.push(textOf(reply));
    });
    dispatch.to!(incoming("throw"), (_, reply) => replies.push(textOf(reply)));
    dispatch.to!(incoming("x", "NoSuchMethod"), (_, reply) => replies.push(textOf(reply)));
    dispatch.to!({ ...incoming(""), payload: new Uint8Array([0xff]) }, (_, reply) => replies.push(textOf(reply)));
    expect(replies).toEqual([
      "at once: x",
      "INTERNAL: internal error",
      expect.stringMatching(/^UNIMPLEMENTED: /),
      expect.stringMatching(/^INVALID_ARGUMENT: cannot decode the request of rpctest.EchoService\/Echo/),
    ]);
  });

  it("dispatcher - through `to`, with admission on, the first call of a turn is answered at once and the ones the run queue holds later", async () => {
    const dispatch = await serverWith(handlers);
    const replies: string[] = [];
    const all = Promise.all(
      ["a", "b", "c"].map((text) => new Promise<void>((resolve) => dispatch.to!(incoming(text), (_, reply) => (replies.push(textOf(reply)), resolve())))),
    );
    expect(replies[0]).toBe("at once: a");
    await all;
    expect(replies.sort()).toEqual(["at once: a", "at once: b", "at once: c"]);
  });

  it("dispatcher - through `to`, a handler that awaits is answered once, later", async () => {
    const dispatch = await serverWith(handlers);
    const replies: string[] = [];
    const done = new Promise<void>((resolve) =>
      dispatch.to!(incoming("later"), (_, reply) => {
        replies.push(textOf(reply));
        resolve();
      }),
    );
    expect(replies).toEqual([]);
    await done;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(replies).toEqual(["answered later"]);
  });

  it("dispatcher - a sink that throws is logged, for answers at once and later, and nothing else breaks", async () => {
    const logged: unknown[] = [];
    const dispatch = await serverWith(handlers, logged);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const throwing = (): never => {
        throw new Error("the transport broke");
      };
      expect(() => dispatch.to!(incoming("x"), throwing)).not.toThrow();
      dispatch.to!(incoming("later"), throwing);
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(logged).toEqual([
        "the transport failed to take the reply to rpctest.EchoService/Echo",
        "the transport failed to take the reply to rpctest.EchoService/Echo",
      ]);
      expect(unhandled).toEqual([]);
      // The server still answers.
      expect(textOf(await dispatch(incoming("y")))).toBe("at once: y");
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("dispatcher - a reply that cannot be made (response headers frozen by the handler) is answered INTERNAL, at once and later", async () => {
    const logged: unknown[] = [];
    const dispatch = await serverWith(
      {
        echo: (req: EchoRequest, ctx) => {
          Object.freeze(ctx.responseHeaders);
          if (req.text === "later") return new Promise<Partial<EchoReply>>((resolve) => setTimeout(() => resolve({ text: "late" }), 5));
          return { text: req.text };
        },
      },
      logged,
      { region: "cn-north", admission: false },
    );
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const replies: string[] = [];
      dispatch.to!(incoming("now"), (_, reply) => replies.push(textOf(reply)));
      expect(replies).toEqual(["INTERNAL: internal error"]);
      await new Promise<void>((resolve) =>
        dispatch.to!(incoming("later"), (_, reply) => {
          replies.push(textOf(reply));
          resolve();
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(replies).toEqual(["INTERNAL: internal error", "INTERNAL: internal error"]);
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("dispatcher - its promise answers as `to` does", async () => {
    const dispatch = await serverWith(handlers);
    expect(textOf(await dispatch(incoming("x")))).toBe("at once: x");
    expect(textOf(await dispatch(incoming("later")))).toBe("answered later");
    expect(textOf(await dispatch(incoming("throw")))).toBe("INTERNAL: internal error");
  });

  it("dispatchCall - a dispatcher without `to` is answered through its promise; a rejection or throw through `failed`", async () => {
    const answer = (text: string): OutgoingReply => ({ headers: {}, encode: (w) => EchoReply.encodeTo(EchoReply.create({ text }), w) });
    const replies: string[] = [];
    const sink = (_: IncomingCall, reply: OutgoingReply): void => void replies.push(textOf(reply));
    const failed = (e: unknown): OutgoingReply => ({ headers: errorHeaders(e) });
    dispatchCall(async (call) => answer(`promised ${call.method}`), incoming(""), sink, failed);
    dispatchCall(() => Promise.reject(new Error("rejected")), incoming(""), sink, failed);
    dispatchCall(
      () => {
        throw new Error("thrown");
      },
      incoming(""),
      sink,
      failed,
    );
    expect(replies).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(replies).toEqual(["promised Echo", "INTERNAL: internal error", "INTERNAL: internal error"]);
  });

  it("dispatchCall - a sink that throws goes to `lost`, through `to` and through the promise", async () => {
    const lost: string[] = [];
    const throwing = (): never => {
      throw new Error("the library refused the reply");
    };
    const failed = (e: unknown): OutgoingReply => ({ headers: errorHeaders(e) });
    const server = await serverWith(handlers, [], { admission: false });
    dispatchCall(server, incoming("x"), throwing, failed, (e) => lost.push(`to: ${(e as Error).message}`));
    dispatchCall(async () => ({ headers: {} }), incoming("x"), throwing, failed, (e) => lost.push(`promise: ${(e as Error).message}`));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(lost).toEqual(["to: the library refused the reply", "promise: the library refused the reply"]);
  });
});
