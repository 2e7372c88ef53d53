import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context as otelContext,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import { Code, LATENCY_BUCKETS_MS, RpcError, currentContext, type CallStats, type StatsHook } from "meridian-rpc";
import { Bed } from "./helpers.js";

const bed = new Bed();
afterEach(() => bed.close());

describe("metrics", () => {
  it("metrics - calls, errors by code and latency per method, as an object", async () => {
    const { server, address } = await bed.echo({}, {
      echo: () => {
        throw new RpcError(Code.NOT_FOUND, "none");
      },
    });
    const client = bed.client(address);
    for (let i = 0; i < 3; i++) await client.get();
    await client.echo().catch(() => undefined);
    const m = server.metrics();
    expect(m.calls).toBe(4);
    expect(m.errors).toBe(1);
    expect(m.errorsByCode).toEqual({ NOT_FOUND: 1 });
    const get = m.methods["rpctest.EchoService/Get"];
    expect(get).toMatchObject({ service: "rpctest.EchoService", method: "Get", calls: 3, errors: {} });
    expect(get?.latency.bucketsMs).toEqual(LATENCY_BUCKETS_MS);
    expect(get?.latency.counts.reduce((a, b) => a + b, 0)).toBe(3);
    expect(get?.latency.count).toBe(3);
    expect(m.methods["rpctest.EchoService/Echo"]?.errors).toEqual({ NOT_FOUND: 1 });
    for (const v of Object.values(m.eventLoopDelay)) expect(v).toBeGreaterThanOrEqual(0);
  });

  it("metrics - calls refused before the handler (unknown method) are counted too", async () => {
    const { server, address } = await bed.server({}, () => {});
    await bed.client(address).get().catch(() => undefined);
    expect(server.metrics().errorsByCode).toEqual({ UNIMPLEMENTED: 1 });
  });

  it("metrics - Prometheus text: counters, a cumulative histogram ending in +Inf = count, event-loop delay", async () => {
    const { server, address } = await bed.echo();
    const client = bed.client(address);
    for (let i = 0; i < 5; i++) await client.get();
    await client.put({ delayMs: 3 });
    const text = server.metricsText();
    const lines = text.trimEnd().split("\n");
    for (const line of lines) {
      if (line.startsWith("#")) expect(line).toMatch(/^# (HELP|TYPE) meridian_[a-z_]+ .+$/);
      else expect(line).toMatch(/^meridian_[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$/);
    }
    const labels = 'side="server",service="rpctest.EchoService",method="Get"';
    expect(lines).toContain(`meridian_rpc_calls_total{${labels}} 5`);
    expect(lines).toContain("# TYPE meridian_rpc_duration_ms histogram");
    const buckets = lines.filter((l) => l.startsWith(`meridian_rpc_duration_ms_bucket{${labels}`)).map((l) => Number(l.split(" ")[1]));
    expect(buckets).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
    expect([...buckets].sort((a, b) => a - b)).toEqual(buckets);
    expect(lines).toContain(`meridian_rpc_duration_ms_bucket{${labels},le="+Inf"} 5`);
    expect(lines).toContain(`meridian_rpc_duration_ms_count{${labels}} 5`);
    expect(text).toMatch(/meridian_rpc_duration_ms_bucket\{side="server",service="rpctest.EchoService",method="Put",le="2.5"\} 0\n/);
    expect(text).toMatch(/meridian_eventloop_delay_ms\{quantile="0.99"\} [0-9.e+-]+\n/);
  });

  it("metrics - stats hooks see every call start and finish with its code and timing, on both sides", async () => {
    const seen: string[] = [];
    const hook: StatsHook = {
      start: (ctx) => seen.push(`start ${ctx.side} ${ctx.method.name}`),
      finish: (ctx, s: CallStats) => {
        expect(s.durationMs).toBeGreaterThanOrEqual(0);
        expect(s.startTime).toBeLessThanOrEqual(Date.now());
        // A server call is timed from when its run queue started it; a client call from its stats.
        if (s.side === "server") expect(ctx.startedAt).toBeLessThanOrEqual(performance.now() - s.durationMs);
        else expect(ctx.startedAt).toBeUndefined();
        seen.push(`finish ${s.side} ${s.service}/${s.method} ${Code[s.code]}${s.error ? ` ${s.error.message}` : ""}`);
      },
    };
    const { address } = await bed.echo({ stats: [hook] }, {
      echo: () => {
        throw new RpcError(Code.ABORTED, "conflict");
      },
    });
    const client = bed.client(address, { stats: [hook] });
    await client.get();
    await client.echo().catch(() => undefined);
    expect(seen).toEqual([
      "start client Get",
      "start server Get",
      "finish server rpctest.EchoService/Get OK",
      "finish client rpctest.EchoService/Get OK",
      "start client Echo",
      "start server Echo",
      "finish server rpctest.EchoService/Echo ABORTED conflict",
      "finish client rpctest.EchoService/Echo ABORTED conflict",
    ]);
  });
});

describe("stats hooks and the call's scope", () => {
  it("stats - a server's hooks run in the call's scope (currentContext), whether the handler answered at once, awaited or failed", async () => {
    const seen: string[] = [];
    const hook: StatsHook = {
      start: (ctx) => seen.push(`start ${currentContext() === ctx}`),
      finish: (ctx, s) => seen.push(`finish ${currentContext() === ctx} ${Code[s.code]}`),
    };
    const { address } = await bed.echo({ stats: [hook] }, {
      echo: async (req) => {
        await new Promise((resolve) => setTimeout(resolve, 2));
        if (req.text === "fail") throw new RpcError(Code.ABORTED, "conflict");
        return { text: req.text };
      },
      get: (req) => ({ text: req.text }),
    });
    const client = bed.client(address);
    await client.get({ text: "at once" });
    await client.echo({ text: "awaited" });
    await client.echo({ text: "fail" }).catch(() => undefined);
    expect(seen).toEqual(["start true", "finish true OK", "start true", "finish true OK", "start true", "finish true ABORTED"]);
  });
});

/** A span as the in-test tracer records it. */
interface Recorded {
  name: string;
  kind: SpanKind | undefined;
  context: SpanContext;
  parentSpanId: string | undefined;
  attributes: Attributes;
  status: SpanStatus;
  ended: boolean;
}

let ids = 0;
const hex = (n: number, len: number) => (++ids + n).toString(16).padStart(len, "0");

/** The smallest TracerProvider that records spans (no SDK). */
class TestTracerProvider implements TracerProvider {
  readonly spans: Recorded[] = [];
  getTracer(): Tracer {
    const spans = this.spans;
    const startSpan = (name: string, options: SpanOptions = {}, ctx: Context = otelContext.active()): Span => {
      const parent = trace.getSpanContext(ctx);
      const rec: Recorded = {
        name,
        kind: options.kind,
        context: { traceId: parent?.traceId ?? hex(0, 32), spanId: hex(0, 16), traceFlags: 1 },
        parentSpanId: parent?.spanId,
        attributes: { ...options.attributes },
        status: { code: SpanStatusCode.UNSET },
        ended: false,
      };
      spans.push(rec);
      const span: Span = {
        spanContext: () => rec.context,
        setAttribute: (k, v) => ((rec.attributes[k] = v), span),
        setAttributes: (a) => (Object.assign(rec.attributes, a), span),
        addEvent: () => span,
        addLink: () => span,
        addLinks: () => span,
        setStatus: (s) => ((rec.status = s), span),
        updateName: (n) => ((rec.name = n), span),
        end: () => void (rec.ended = true),
        isRecording: () => true,
        recordException: () => undefined,
      };
      return span;
    };
    return {
      startSpan,
      startActiveSpan: ((name: string, ...rest: unknown[]) => {
        const fn = rest.pop() as (s: Span) => unknown;
        return fn(startSpan(name, rest[0] as SpanOptions));
      }) as Tracer["startActiveSpan"],
    };
  }
}

/** W3C traceparent, the minimum of it. */
const traceparent: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const sc = trace.getSpanContext(ctx);
    if (sc !== undefined) setter.set(carrier, "traceparent", `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags}`);
  },
  extract(ctx, carrier, getter) {
    const v = getter.get(carrier, "traceparent");
    const m = typeof v === "string" ? /^00-([0-9a-f]{32})-([0-9a-f]{16})-0([0-9a-f])$/.exec(v) : null;
    if (m === null) return ctx;
    return trace.setSpanContext(ctx, { traceId: m[1]!, spanId: m[2]!, traceFlags: Number(m[3]), isRemote: true });
  },
  fields: () => ["traceparent"],
};

describe("otel", () => {
  const provider = new TestTracerProvider();
  beforeAll(() => {
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(traceparent);
  });
  afterAll(() => {
    trace.disable();
    propagation.disable();
  });

  it("otel - client and server spans with rpc attributes, one trace across two hops, status on errors", async () => {
    const b = await bed.echo({ otel: true }, {
      get: () => {
        throw new RpcError(Code.NOT_FOUND, "missing");
      },
    });
    const toB = bed.client(b.address, { otel: true });
    const a = await bed.echo({ otel: true }, {
      echo: async (_req, ctx) => {
        expect(ctx.headers["traceparent"]).toMatch(/^00-/);
        await toB.get().catch(() => undefined);
        return {};
      },
    });
    await bed.client(a.address, { otel: true }).echo();

    const spans = provider.spans;
    expect(spans.map((s) => [s.name, s.kind])).toEqual([
      ["rpctest.EchoService/Echo", SpanKind.CLIENT],
      ["rpctest.EchoService/Echo", SpanKind.SERVER],
      ["rpctest.EchoService/Get", SpanKind.CLIENT],
      ["rpctest.EchoService/Get", SpanKind.SERVER],
    ]);
    const [clientA, serverA, clientB, serverB] = spans as [Recorded, Recorded, Recorded, Recorded];
    expect(new Set(spans.map((s) => s.context.traceId)).size, "one trace").toBe(1);
    expect(clientA.parentSpanId).toBeUndefined();
    expect(serverA.parentSpanId).toBe(clientA.context.spanId);
    expect(clientB.parentSpanId).toBe(serverA.context.spanId);
    expect(serverB.parentSpanId).toBe(clientB.context.spanId);
    expect(spans.every((s) => s.ended)).toBe(true);
    expect(serverA.attributes).toEqual({
      "rpc.system": "meridian",
      "rpc.service": "rpctest.EchoService",
      "rpc.method": "Echo",
      "rpc.meridian.status_code": Code.OK,
    });
    expect(serverA.status.code).toBe(SpanStatusCode.UNSET);
    for (const s of [clientB, serverB]) {
      expect(s.attributes["rpc.meridian.status_code"]).toBe(Code.NOT_FOUND);
      expect(s.status).toEqual({ code: SpanStatusCode.ERROR, message: "NOT_FOUND: missing" });
    }
  });

  it("otel - without otel the calls carry no trace headers", async () => {
    const { address, calls } = await bed.echo();
    await bed.client(address).get();
    expect(calls[0]?.ctx.headers["traceparent"]).toBeUndefined();
    expect(trace.getSpan(ROOT_CONTEXT)).toBeUndefined();
  });
});
