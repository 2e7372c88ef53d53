/**
 * The gRPC transport between Meridian peers (and grpc-js over TLS): TLS and mutual TLS,
 * graceful shutdown, server-side aborts of streams, requests that never leave, metainfo key
 * spelling, and the committed generated code of the test .proto. Real sockets on 127.0.0.1.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { Code, Metainfo, RpcError, createClient, createServer, Cancellation, type Headers } from "meridian-rpc";
import type { StreamDispatcher } from "meridian-rpc/transport";
import { GrpcClientTransport, GrpcServerTransport, type GrpcClientOptions, type GrpcServerOptions } from "meridian-rpc/transports/grpc";
import { Interop, Reply, Request } from "./gen/interop.js";
import { Observed, PROTO_DIR, makeCerts, plainClient, plainUnary, startMeridianServer, until } from "./helpers.js";
import { openStream, unaryCall, type MessageRequest, type MessageStream } from "../support/message-calls.js";
import { meridianArgv } from "../support/meridian-cli.js";
import { rejection } from "../support/rejection.js";

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function meridian(options: Partial<GrpcServerOptions> = {}) {
  const observed = new Observed();
  const s = await startMeridianServer(observed, options);
  cleanup.push(() => s.server.close({ graceMs: 0 }));
  return { ...s, observed };
}

function clientOf(address: string, options: GrpcClientOptions = {}): GrpcClientTransport {
  const t = new GrpcClientTransport({ address, ...options });
  cleanup.push(() => t.close());
  return t;
}

function unary(message: Partial<Request>, opts: { headers?: Headers; signal?: Cancellation; timeoutMs?: number } = {}): MessageRequest {
  return {
    service: Interop.typeName,
    method: Interop.methods.unary,
    message: Request.create(message),
    headers: opts.headers ?? {},
    deadline: opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs,
    signal: opts.signal ?? new Cancellation(),
    endpoint: undefined,
  };
}

function open(t: GrpcClientTransport, method: keyof typeof Interop.methods, signal = new Cancellation()): MessageStream {
  return openStream(t, { service: Interop.typeName, method: Interop.methods[method], headers: {}, deadline: undefined, signal, endpoint: undefined });
}


const certs = makeCerts();

describe.skipIf(certs === undefined)("grpc transport - TLS (certificates made by openssl at test time)", () => {
  const c = certs!;

  it("grpc tls - unary and streaming over TLS; a plaintext client cannot connect", async () => {
    const { address } = await meridian({ tls: { cert: c.serverCert, key: c.serverKey } });
    const t = clientOf(address, { tls: { ca: c.ca } });
    const res = await unaryCall(t, unary({ text: "secure" }, { timeoutMs: 5000 }));
    expect((res.message as Reply).text).toBe("secure");
    const s = open(t, "serverStream");
    await s.send(Request.create({ count: 3 }));
    await s.closeSend();
    const seqs: number[] = [];
    for await (const m of s.responses) seqs.push((m as Reply).seq);
    expect(seqs).toEqual([0, 1, 2]);

    const plaintext = clientOf(address);
    const err = await rejection(unaryCall(plaintext, unary({ text: "x" }, { timeoutMs: 2000 })));
    expect([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED]).toContain(err.code);
  });

  it("grpc tls - a plain grpc-js client with createSsl calls the Meridian server; a wrong CA is refused", async () => {
    const { address } = await meridian({ tls: { cert: c.serverCert, key: c.serverKey } });
    const ok = plainClient(address, grpc.credentials.createSsl(c.ca));
    cleanup.push(() => ok.close());
    const { err, res } = await plainUnary(ok, { text: "hi" }, new grpc.Metadata(), { deadline: Date.now() + 5000 });
    expect(err).toBeNull();
    expect(res!.text).toBe("hi");
    // Trusting only the client certificate (not a CA of the server's): verification fails.
    const wrong = clientOf(address, { tls: { ca: c.clientCert } });
    expect((await rejection(unaryCall(wrong, unary({ text: "x" }, { timeoutMs: 2000 })))).code).toBe(Code.UNAVAILABLE);
  });

  it("grpc tls - mutual TLS: a client certificate is required and accepted", async () => {
    const { address } = await meridian({ tls: { cert: c.serverCert, key: c.serverKey, ca: c.ca, requireClientCert: true } });
    const anonymous = clientOf(address, { tls: { ca: c.ca } });
    expect((await rejection(unaryCall(anonymous, unary({ text: "x" }, { timeoutMs: 2000 })))).code).toBe(Code.UNAVAILABLE);
    const known = clientOf(address, { tls: { ca: c.ca, cert: c.clientCert, key: c.clientKey } });
    expect(((await unaryCall(known, unary({ text: "me" }, { timeoutMs: 5000 }))).message as Reply).text).toBe("me");
  });

  it("grpc tls - serverName checks the certificate against another name than the address's host", async () => {
    const { address } = await meridian({ tls: { cert: c.serverCert, key: c.serverKey } });
    const port = address.split(":")[1];
    const t = clientOf(`localhost:${port}`, { tls: { ca: c.ca, serverName: "localhost" } });
    expect(((await unaryCall(t, unary({ text: "named" }, { timeoutMs: 5000 }))).message as Reply).text).toBe("named");
  });
});

describe("grpc transport - Meridian to Meridian", () => {
  it("grpc - createClient and createServer with metainfo of every spelling", async () => {
    const observed = new Observed();
    const transport = new GrpcServerTransport({ services: [Interop] });
    let seen: { transient?: string; persistent?: string; upper?: string } = {};
    const server = createServer({ transport, metrics: false }).register(Interop, {
      unary: (req, ctx) => {
        observed.headers = ctx.headers;
        seen = {
          transient: ctx.metainfo.getTransient("user"),
          persistent: ctx.metainfo.getPersistent("TRACE_ID"),
          upper: ctx.metainfo.getTransient("mixedcase"),
        };
        ctx.metainfo.setBackward("ECHO_KEY", req.text).setBackward("lower", "l").setBackward("CamelKey", "c");
        return { text: req.text };
      },
    });
    const { address } = await server.listen();
    cleanup.push(() => server.close({ graceMs: 0 }));
    const client = createClient(Interop, { transport: clientOf(address), endpoints: [{ address }] });
    const mi = new Metainfo().setTransient("user", "alice").setPersistent("TRACE_ID", "t-9").setTransient("MixedCase", "m");
    await client.unary({ text: "hey" }, { metainfo: mi });
    // Lower-case and Kitex (upper CGI) keys survive exactly; a mixed-case key arrives lower-cased.
    expect(seen).toEqual({ transient: "alice", persistent: "t-9", upper: "m" });
    expect(mi.getBackward("ECHO_KEY")).toBe("hey");
    expect(mi.getBackward("lower")).toBe("l");
    expect(mi.getBackward("camelkey")).toBe("c");
  });

  it("grpc - the server aborts a client stream: send() and responses fail with its status", async () => {
    let release!: () => void;
    const stop = new Promise<void>((r) => (release = r));
    const streams: StreamDispatcher = async (s) => {
      // Read one request, then refuse the call while the client keeps sending.
      await s.requests[Symbol.asyncIterator]().next();
      await stop;
      return { "rpc-status": String(Code.RESOURCE_EXHAUSTED), "rpc-message": "quota", "x-why": "quota" };
    };
    const transport = new GrpcServerTransport({ services: [Interop] });
    const { address } = await transport.listen(async () => ({ headers: {} }), streams);
    cleanup.push(() => transport.close(0));
    const t = clientOf(address);
    const s = open(t, "clientStream");
    await s.send(Request.create({ text: "first" }));
    release();
    let error: RpcError | undefined;
    for (let i = 0; i < 10_000 && error === undefined; i++) {
      try {
        await s.send(Request.create({ text: "more" }));
      } catch (e) {
        error = e as RpcError;
      }
      if (i % 50 === 0) await sleep(1);
    }
    expect(error?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(error?.message).toBe("quota");
    await expect(s.responses[Symbol.asyncIterator]().next()).rejects.toBe(error);
    expect(await s.trailers).toEqual({ "x-why": "quota", "rpc-status": String(Code.RESOURCE_EXHAUSTED), "rpc-message": "quota" });
  });

  it("grpc - cancelling a stream aborts the server's signal and fails its send()", async () => {
    const outcome: { requests?: unknown; send?: RpcError; aborted?: boolean } = {};
    const streams: StreamDispatcher = async (s) => {
      try {
        for await (const _ of s.requests) {
          /* read until the client goes away */
        }
      } catch (e) {
        outcome.requests = e;
      }
      // Node's HTTP/2 client half-closes before it resets, so the requests may just end: keep
      // answering until the reset arrives.
      for (;;) {
        try {
          await s.send((w) => Reply.encodeTo(Reply.create({ text: "tick" }), w));
        } catch (e) {
          outcome.send = e as RpcError;
          break;
        }
        await sleep(2);
      }
      outcome.aborted = s.signal.aborted;
      return {};
    };
    const transport = new GrpcServerTransport({ services: [Interop] });
    const { address } = await transport.listen(async () => ({ headers: {} }), streams);
    cleanup.push(() => transport.close(0));
    const s = open(clientOf(address), "bidi");
    await s.send(Request.create({ text: "x" }));
    await sleep(50);
    s.cancel();
    await until(() => outcome.send !== undefined, 3000, "the server to notice");
    expect(outcome.send!.code).toBe(Code.CANCELLED);
    expect(outcome.aborted).toBe(true);
    if (outcome.requests !== undefined) expect((outcome.requests as RpcError).code).toBe(Code.CANCELLED);
  });

  it("grpc - requests that cannot be sent fail before leaving, with notSent", async () => {
    const { address } = await meridian();
    const t = clientOf(address);
    const bad = await rejection(unaryCall(t, unary({ id: 2n ** 64n })));
    expect(bad).toMatchObject({ code: Code.INVALID_ARGUMENT, notSent: true });
    const header = await rejection(unaryCall(t, unary({}, { headers: { "bad header": "x" } })));
    expect(header).toMatchObject({ code: Code.INVALID_ARGUMENT, notSent: true });
    expect(header.message).toContain('"bad header"');
    const aborted = new Cancellation();
    aborted.abort(new RpcError(Code.CANCELLED, "gone"));
    expect(await rejection(unaryCall(t, unary({}, { signal: aborted })))).toMatchObject({ code: Code.CANCELLED, notSent: true });
    expect(await rejection(unaryCall(t, { ...unary({}), deadline: Date.now() - 1 }))).toMatchObject({ code: Code.DEADLINE_EXCEEDED, notSent: true });
    // A stream that cannot start fails through its promises and iterator, never by throwing.
    const s = openStream(t, { service: Interop.typeName, method: Interop.methods.bidi, headers: { "Bad Header": "x" }, deadline: undefined, signal: new Cancellation(), endpoint: undefined });
    await expect(s.send(Request.create({}))).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, notSent: true });
    await expect(s.responses[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
    expect((await s.trailers)["rpc-status"]).toBe(String(Code.INVALID_ARGUMENT));
    // A bad message in an open stream fails only its own send().
    const ok = open(t, "clientStream");
    await expect(ok.send(Request.create({ id: 2n ** 64n }))).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
    await ok.send(Request.create({ text: "fine" }));
    await ok.closeSend();
    for await (const m of ok.responses) expect((m as Reply).text).toBe("fine");
  });

  it("grpc - response headers that cannot be metadata fail the call INTERNAL", async () => {
    const transport = new GrpcServerTransport({ services: [Interop] });
    const { address } = await transport.listen(async () => ({ headers: { "bad header": "x" }, encode: () => {} }));
    cleanup.push(() => transport.close(0));
    const err = await rejection(unaryCall(clientOf(address), unary({})));
    expect(err.code).toBe(Code.INTERNAL);
    expect(err.message).toContain('"bad header"');
  });

  it("grpc - graceful close lets calls in flight finish and refuses new ones", async () => {
    const { server, address, observed } = await meridian();
    const t = clientOf(address);
    const slow = unaryCall(t, unary({ text: "slow", delayMs: 300 }, { timeoutMs: 5000 }));
    await until(() => observed.deadline !== undefined, 3000, "the call to arrive");
    const closing = server.close({ graceMs: 3000 });
    expect(((await slow).message as Reply).text).toBe("slow");
    await closing;
    const after = await rejection(unaryCall(t, unary({ text: "late" }, { timeoutMs: 2000 })));
    expect(after.code).toBe(Code.UNAVAILABLE);
  });

  it("grpc - a close whose grace runs out cuts calls off and aborts their handlers", async () => {
    const { server, address, observed } = await meridian();
    const t = clientOf(address);
    const slow = rejection(unaryCall(t, unary({ text: "slow", delayMs: 5000 }, { timeoutMs: 10_000 })));
    await until(() => observed.deadline !== undefined, 3000, "the call to arrive");
    const t0 = Date.now();
    await server.close({ graceMs: 100 });
    expect(Date.now() - t0).toBeLessThan(2000);
    const err = await slow;
    expect([Code.UNAVAILABLE, Code.CANCELLED, Code.INTERNAL]).toContain(err.code);
    await until(() => observed.aborts.length > 0, 3000, "the handler's abort");
    expect(observed.aborts).toEqual([Code.CANCELLED]);
  });

  it("grpc - a transport without services is refused up front", () => {
    expect(() => new GrpcServerTransport({ services: [] })).toThrow(/needs the services it serves/);
  });
});

describe("grpc transport - generated code", () => {
  it("grpc - test/grpc/gen/interop.ts matches a fresh run of the generator", () => {
    const out = mkdtempSync(join(tmpdir(), "meridian-grpc-gen-"));
    try {
      execFileSync(
        process.execPath,
        meridianArgv(["gen", join(PROTO_DIR, "interop.proto"), "-I", PROTO_DIR, "--out", out]),
        { cwd: join(PROTO_DIR, "../../.."), stdio: "pipe" },
      );
      const fresh = readFileSync(join(out, "interop.ts"), "utf8");
      const committed = readFileSync(join(PROTO_DIR, "../gen/interop.ts"), "utf8");
      expect(fresh === committed, "test/grpc/gen/interop.ts is stale: regenerate it (see docs/grpc.md)").toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});
