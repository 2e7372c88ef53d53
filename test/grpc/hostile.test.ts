/**
 * The gRPC server transport against peers that push it: more concurrent calls than a connection
 * may hold, oversized requests, error messages of any size, and deadlines far in the future. Real
 * sockets on 127.0.0.1, plain @grpc/grpc-js clients as the peers.
 */
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { Cancellation, Code, RpcError, createServer, type CallContext, type Server } from "meridian-rpc";
import { MAX_STATUS_MESSAGE } from "meridian-rpc/transport";
import { DEFAULT_GRPC_MAX_CONCURRENT_STREAMS, GrpcClientTransport, GrpcServerTransport, type GrpcServerOptions } from "meridian-rpc/transports/grpc";
import { Interop, Reply, Request } from "./gen/interop.js";
import { plainClient, plainUnary, type PlainClient } from "./helpers.js";
import { unaryCall } from "../support/message-calls.js";

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

/**
 * A server whose unary handler waits `delayMs`, fails with `failCode` and `text` as the message, and
 * counts calls in flight. Default admission: the bursts below (20 s deadlines) must not be shed.
 */
async function server(options: Partial<GrpcServerOptions> = {}) {
  const load = { now: 0, peak: 0, served: 0 };
  const s: Server = createServer({ transport: new GrpcServerTransport({ services: [Interop], ...options }), metrics: false, logger: { error: () => {} } });
  s.register(Interop, {
    unary: async (req: Request, ctx: CallContext) => {
      load.now++;
      load.peak = Math.max(load.peak, load.now);
      try {
        // Following the call's signal arms its deadline timer: what a far deadline must not break.
        if (req.delayMs > 0) await sleep(req.delayMs, undefined, { signal: ctx.signal });
        if (req.failCode !== 0) throw new RpcError(req.failCode as Code, req.text);
        load.served++;
        return { text: req.text };
      } finally {
        load.now--;
      }
    },
  });
  const { address } = await s.listen();
  cleanup.push(() => s.close({ graceMs: 0 }));
  const client = plainClient(address);
  cleanup.push(() => client.close());
  return { address, load, client };
}

describe("grpc hostile - limits a peer cannot pass", () => {
  it("grpc hostile - one connection holds at most the default number of calls in flight; the rest wait, and all succeed", async () => {
    const { load, client } = await server();
    const n = DEFAULT_GRPC_MAX_CONCURRENT_STREAMS + 50;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => plainUnary(client, { text: `c${i}`, delayMs: 150 }, undefined, { deadline: Date.now() + 20_000 })));
    expect(results.filter((r) => r.status.code === grpc.status.OK)).toHaveLength(n);
    expect(load.peak).toBeLessThanOrEqual(DEFAULT_GRPC_MAX_CONCURRENT_STREAMS);
    expect(load.served).toBe(n);
  });

  it("grpc hostile - serverOptions can raise the per-connection limit", async () => {
    const { load, client } = await server({ serverOptions: { "grpc.max_concurrent_streams": 200 } });
    const n = 150;
    const results = await Promise.all(Array.from({ length: n }, () => plainUnary(client, { delayMs: 300 }, undefined, { deadline: Date.now() + 20_000 })));
    expect(results.every((r) => r.status.code === grpc.status.OK)).toBe(true);
    expect(load.peak).toBeGreaterThan(DEFAULT_GRPC_MAX_CONCURRENT_STREAMS);
  });

  it("grpc hostile - a request over the message limit is refused with RESOURCE_EXHAUSTED and the next call is served", async () => {
    const { client } = await server();
    const big = await plainUnary(client as PlainClient, { text: "x".repeat(5 * 1024 * 1024) }, undefined, { deadline: Date.now() + 20_000 });
    expect(big.status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const next = await plainUnary(client, { text: "after" }, undefined, { deadline: Date.now() + 10_000 });
    expect(next.status.code).toBe(grpc.status.OK);
    expect(next.res?.text).toBe("after");
  });

  it("grpc hostile - an error message of a megabyte reaches the client cut to MAX_STATUS_MESSAGE, and the server goes on", async () => {
    const { client } = await server();
    const r = await plainUnary(client, { text: "e".repeat(1 << 20), failCode: Code.FAILED_PRECONDITION }, undefined, { deadline: Date.now() + 10_000 });
    expect(r.status.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(r.status.details.length).toBeLessThanOrEqual(MAX_STATUS_MESSAGE);
    expect(r.status.details).toMatch(/^e+\.\.\. \(\d+ more characters\)$/);
    const next = await plainUnary(client, { text: "ok" }, undefined, { deadline: Date.now() + 10_000 });
    expect(next.status.code).toBe(grpc.status.OK);
  });

  it("grpc hostile - a deadline 30 days away is served (sent as the longest grpc-timeout a grpc-js server reads), without a timer warning", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    cleanup.push(() => void process.off("warning", onWarning));
    const { address } = await server();
    const t = new GrpcClientTransport({ address });
    cleanup.push(() => t.close());
    const res = await unaryCall(t, {
      service: Interop.typeName,
      method: Interop.methods.unary,
      message: Request.create({ text: "far", delayMs: 20 }),
      headers: {},
      deadline: Date.now() + 30 * 86_400_000,
      signal: new Cancellation(),
      endpoint: undefined,
    });
    expect((res.message as Reply).text).toBe("far");
    await sleep(20);
    expect(warnings).not.toContain("TimeoutOverflowWarning");
  });
});
