import { afterEach, describe, expect, expectTypeOf, it } from "vitest";
import { BizError, Code, HeaderKeys, RpcError, createClient } from "meridian-rpc";
import { statusFromHeaders, type IncomingCall } from "meridian-rpc/transport";
import { MemoryCall, MemoryClientTransport } from "meridian-rpc/transports/memory";
import { AdminService, EchoService, type EchoReply } from "./gen/echo.js";
import { Bed } from "./helpers.js";

const bed = new Bed();
afterEach(() => bed.close());

/** Sends raw bytes to a server on the bed, as a broken client would. */
async function rawCall(address: string, call: Partial<IncomingCall>): Promise<RpcError | undefined> {
  const server = bed.network.lookup(address);
  if (server === undefined) throw new Error(`no server at ${address}`);
  const c = { service: EchoService.typeName, method: "Echo", headers: {}, payload: new Uint8Array(0), deadline: undefined, peer: "memory://raw", ...call };
  const reply = await server.serve(new MemoryCall(c.service, c.method, c.headers, c.payload, c.deadline, c.peer));
  return statusFromHeaders(reply.headers);
}

describe("calls", () => {
  it("calls - typed unary call returns the decoded response", async () => {
    const { address } = await bed.echo();
    const client = bed.client(address);
    const reply = await client.echo({ text: "hello" });
    expectTypeOf(reply).toEqualTypeOf<EchoReply>();
    expect(reply).toMatchObject({ text: "hello", servedBy: "echo-1", count: 1 });
    expect(await client.get(), "a missing request is the default message").toMatchObject({ text: "" });
  });

  it("calls - a partial request is completed by the codec, a full one is sent as is", async () => {
    const { address, calls } = await bed.echo();
    const client = bed.client(address);
    await client.echo({ key: "k" });
    await client.echo({ text: "t", delayMs: 0, key: "" });
    expect(calls.map((c) => c.request)).toEqual([
      { text: "", delayMs: 0, key: "k" },
      { text: "t", delayMs: 0, key: "" },
    ]);
  });

  it("calls - several services on one server", async () => {
    const { address } = await bed.server({}, (s) =>
      s
        .register(EchoService, { echo: (req) => ({ text: `echo:${req.text}` }) })
        .register(AdminService, { status: (_req, ctx) => ({ text: `status from ${ctx.service.typeName}` }) }),
    );
    const transport = new MemoryClientTransport({ address, network: bed.network });
    const echo = createClient(EchoService, { transport });
    const admin = createClient(AdminService, { transport });
    expect((await echo.echo({ text: "a" })).text).toBe("echo:a");
    expect((await admin.status()).text).toBe("status from rpctest.AdminService");
  });

  it("calls - a method without a handler is UNIMPLEMENTED", async () => {
    const { address } = await bed.server({}, (s) => s.register(EchoService, { echo: () => ({}) }));
    const err = await bed.client(address).get().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toMatchObject({ code: Code.UNIMPLEMENTED, message: "method Get of rpctest.EchoService is not implemented by this server" });
  });

  it("calls - an unknown service is UNIMPLEMENTED", async () => {
    const { address } = await bed.echo();
    const admin = createClient(AdminService, { transport: new MemoryClientTransport({ address, network: bed.network }) });
    await expect(admin.status()).rejects.toMatchObject({
      code: Code.UNIMPLEMENTED,
      message: "service rpctest.AdminService is not registered on this server",
    });
  });

  it("calls - a server-streaming method of a service returns its stream", async () => {
    const { address, calls } = await bed.echo();
    const texts: string[] = [];
    for await (const r of bed.client(address).watch({ text: "x" })) texts.push(`${r.text}${r.count}`);
    expect(texts).toEqual(["x1", "x2", "x3"]);
    expect(calls.map((c) => c.method)).toEqual(["Watch"]);
  });

  it("calls - an undecodable request is INVALID_ARGUMENT naming the field path", async () => {
    const { address, calls } = await bed.echo();
    // Field 1 (text) says 5 bytes follow, but only one does.
    const err = await rawCall(address, { payload: new Uint8Array([0x0a, 0x05, 0x61]) });
    expect(err?.code).toBe(Code.INVALID_ARGUMENT);
    expect(err?.message).toMatch(/^cannot decode the request of rpctest\.EchoService\/Echo: .* in rpctest\.EchoRequest\.text$/);
    expect(calls).toHaveLength(0);
  });

  it("calls - the client's region and consistency reach the server; the served region comes back", async () => {
    const { address, calls } = await bed.echo({ region: "eu" });
    const client = bed.client(address, { region: "us", consistency: "eventual" });
    let served: string | undefined;
    await client.get({}, { onHeaders: (h) => (served = h[HeaderKeys.servedRegion]) });
    await client.get({}, { region: "ap", consistency: "linearizable" });
    expect(calls.map((c) => [c.ctx.region, c.ctx.consistency, c.ctx.peer?.startsWith("memory://client-")])).toEqual([
      ["us", "eventual", true],
      ["ap", "linearizable", true],
    ]);
    expect(served).toBe("eu");
  });
});

describe("errors", () => {
  it("errors - an RpcError thrown by a handler reaches the client with its code and message", async () => {
    const { address } = await bed.echo({}, {
      echo: () => {
        throw new RpcError(Code.NOT_FOUND, "no such video");
      },
    });
    const err = await bed.client(address).echo().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect(err).not.toBeInstanceOf(BizError);
    expect(err).toMatchObject({ code: Code.NOT_FOUND, message: "no such video" });
  });

  it("errors - a BizError reaches the client as a BizError with its code, message and extra", async () => {
    const { address, logged } = await bed.echo({}, {
      echo: () => {
        throw new BizError(4001, "quota used up", { plan: "free", resetAt: "tomorrow" });
      },
    });
    const err = await bed.client(address).echo().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BizError);
    expect(err).toMatchObject({ bizCode: 4001, bizMessage: "quota used up", extra: { plan: "free", resetAt: "tomorrow" } });
    expect((err as BizError).headers[HeaderKeys.bizStatus]).toBe("4001");
    expect(logged).toHaveLength(0);
  });

  it("errors - a BizError survives a transport that only maps rpc-status", async () => {
    const { address } = await bed.echo({}, {
      echo: () => {
        throw new BizError(7, "nope");
      },
    });
    const memory = new MemoryClientTransport({ address, network: bed.network });
    // A transport that knows nothing of biz-*: it rejects with a plain RpcError carrying the headers.
    const client = createClient(EchoService, {
      transport: {
        unary: (req) =>
          memory.unary(req).catch((e: RpcError) => {
            throw new RpcError(e.code, e.message, { headers: e.headers });
          }),
        close: () => memory.close(),
      },
    });
    await expect(client.echo()).rejects.toMatchObject({ name: "BizError", bizCode: 7, bizMessage: "nope" });
  });

  it("errors - anything else a handler throws is INTERNAL without its message, logged, and the server keeps serving", async () => {
    const { address, logged } = await bed.echo({}, {
      echo: (req) => {
        if (req.text === "boom") throw new TypeError("secret detail: cannot read properties of undefined");
        return { text: "fine" };
      },
    });
    const client = bed.client(address);
    const err = (await client.echo({ text: "boom" }).catch((e: unknown) => e)) as RpcError;
    expect(err).toMatchObject({ code: Code.INTERNAL, message: "internal error" });
    expect(JSON.stringify({ ...err, message: err.message, stack: "" })).not.toContain("secret");
    expect(Object.values(err.headers).join(" ")).not.toContain("secret");
    expect(logged).toHaveLength(1);
    expect(logged[0]?.message).toBe("handler of rpctest.EchoService/Echo failed");
    expect(logged[0]?.details["error"]).toBeInstanceOf(TypeError);
    expect((await client.echo({ text: "again" })).text).toBe("fine");
  });

  it("errors - a handler that rejects with a non-Error value is INTERNAL too", async () => {
    const { address, logged } = await bed.echo({}, { echo: () => Promise.reject("a string") });
    await expect(bed.client(address).echo()).rejects.toMatchObject({ code: Code.INTERNAL, message: "internal error" });
    expect(logged).toHaveLength(1);
  });

  it("errors - no server at the address is UNAVAILABLE and marked notSent", async () => {
    await expect(bed.client("memory://nobody").echo()).rejects.toMatchObject({ code: Code.UNAVAILABLE, notSent: true });
  });
});

describe("server", () => {
  it("server - close waits for calls in flight, refuses new ones, and cuts off stragglers after graceMs", async () => {
    const { server, address } = await bed.echo();
    const client = bed.client(address);
    const quick = client.echo({ text: "quick", delayMs: 20 });
    const slow = client.echo({ text: "slow", delayMs: 5000 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 5));
    const closed = server.close({ graceMs: 60 });
    await expect(client.echo({ text: "late" })).rejects.toMatchObject({ code: Code.UNAVAILABLE, notSent: true });
    expect((await quick).text).toBe("quick");
    await closed;
    expect(await slow).toMatchObject({ code: Code.UNAVAILABLE });
  });

  it("server - listening twice is a ConfigError", async () => {
    const { server } = await bed.echo();
    await expect(server.listen()).rejects.toMatchObject({ name: "ConfigError", code: "ALREADY_LISTENING" });
  });
});
