import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import type { CallContext } from "../context.js";
import { Code } from "../errors.js";
import type { CallStats, StatsHook } from "./stats.js";

/** Upper bounds (ms) of the latency histogram's buckets; a last, unbounded one follows. */
export const LATENCY_BUCKETS_MS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** A latency histogram as read out: counts per bucket (not cumulative), their sum and total. */
export interface HistogramSnapshot {
  /** Upper bounds of the buckets, ms; `counts` has one more entry, for everything above. */
  readonly bucketsMs: readonly number[];
  readonly counts: readonly number[];
  readonly count: number;
  readonly sumMs: number;
}

/** The metrics of one method. */
export interface MethodMetrics {
  readonly service: string;
  readonly method: string;
  readonly calls: number;
  /** Failed calls by code name (`UNAVAILABLE`, ...). */
  readonly errors: Readonly<Record<string, number>>;
  readonly latency: HistogramSnapshot;
}

/** Event-loop delay of the process, from perf_hooks.monitorEventLoopDelay, in ms. */
export interface EventLoopDelay {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** Everything RpcMetrics has counted, as a plain object. */
export interface MetricsSnapshot {
  readonly calls: number;
  readonly errors: number;
  /** Failed calls by code name, over all methods. */
  readonly errorsByCode: Readonly<Record<string, number>>;
  /** Per method, keyed `service/method`. */
  readonly methods: Readonly<Record<string, MethodMetrics>>;
  readonly eventLoopDelay: EventLoopDelay;
}

/** Options of RpcMetrics. */
export interface MetricsOptions {
  /** Sample the event-loop delay (started by `start()`). Default true. */
  eventLoop?: boolean;
  /** Sampling resolution of the event-loop delay monitor, ms. Default 10. */
  eventLoopResolutionMs?: number;
}

class Histogram {
  readonly counts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  count = 0;
  sumMs = 0;

  observe(ms: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > (LATENCY_BUCKETS_MS[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.count++;
    this.sumMs += ms;
  }

  snapshot(): HistogramSnapshot {
    return { bucketsMs: LATENCY_BUCKETS_MS, counts: [...this.counts], count: this.count, sumMs: this.sumMs };
  }
}

interface MethodState {
  readonly service: string;
  readonly method: string;
  readonly side: string;
  calls: number;
  readonly errors: Record<string, number>;
  readonly latency: Histogram;
}

/**
 * Per-server (or per-client) call metrics, fed as a StatsHook: calls, errors by code and a
 * latency histogram with fixed buckets per method, plus the process's event-loop delay. Read
 * them as an object (`snapshot()`) or as Prometheus text (`prometheus()`).
 */
export class RpcMetrics implements StatsHook {
  /** Per method, keyed `service/method`, in the order first seen. */
  private readonly methods = new Map<string, MethodState>();
  /** The same states by service, then method: found per call without building the key. */
  private readonly byService = new Map<string, Map<string, MethodState>>();
  private monitor: IntervalHistogram | undefined;

  constructor(private readonly options: MetricsOptions = {}) {}

  /** Starts sampling the event-loop delay (no-op when disabled or already started). */
  start(): void {
    if (this.options.eventLoop === false || this.monitor !== undefined) return;
    this.monitor = monitorEventLoopDelay({ resolution: this.options.eventLoopResolutionMs ?? 10 });
    this.monitor.enable();
  }

  /** Stops sampling the event-loop delay. */
  stop(): void {
    this.monitor?.disable();
  }

  /** StatsHook: records a finished call. */
  finish(_ctx: CallContext | undefined, s: CallStats): void {
    const m = this.byService.get(s.service)?.get(s.method) ?? this.add(s);
    m.calls++;
    m.latency.observe(s.durationMs);
    if (s.code !== Code.OK) {
      const name = Code[s.code] ?? String(s.code);
      m.errors[name] = (m.errors[name] ?? 0) + 1;
    }
  }

  private add(s: CallStats): MethodState {
    const m: MethodState = { service: s.service, method: s.method, side: s.side, calls: 0, errors: {}, latency: new Histogram() };
    this.methods.set(`${s.service}/${s.method}`, m);
    let perService = this.byService.get(s.service);
    if (perService === undefined) this.byService.set(s.service, (perService = new Map()));
    perService.set(s.method, m);
    return m;
  }

  /** The event-loop delay percentiles sampled so far (zeros before any sample). */
  eventLoopDelay(): EventLoopDelay {
    const h = this.monitor;
    if (h === undefined || h.count === 0) return { p50Ms: 0, p99Ms: 0, maxMs: 0 };
    return { p50Ms: h.percentile(50) / 1e6, p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 };
  }

  /** Everything counted so far, as a plain object. */
  snapshot(): MetricsSnapshot {
    let calls = 0;
    let errors = 0;
    const errorsByCode: Record<string, number> = {};
    const methods: Record<string, MethodMetrics> = {};
    for (const [key, m] of this.methods) {
      calls += m.calls;
      for (const [code, n] of Object.entries(m.errors)) {
        errors += n;
        errorsByCode[code] = (errorsByCode[code] ?? 0) + n;
      }
      methods[key] = { service: m.service, method: m.method, calls: m.calls, errors: { ...m.errors }, latency: m.latency.snapshot() };
    }
    return { calls, errors, errorsByCode, methods, eventLoopDelay: this.eventLoopDelay() };
  }

  /**
   * Everything counted so far in the Prometheus text exposition format (version 0.0.4):
   * `meridian_rpc_calls_total`, `meridian_rpc_errors_total` (by code),
   * `meridian_rpc_duration_ms` (histogram), all labelled with side, service and method, and
   * `meridian_eventloop_delay_ms` (quantiles 0.5, 0.99 and 1).
   */
  prometheus(): string {
    const calls: string[] = [];
    const errors: string[] = [];
    const latency: string[] = [];
    for (const m of this.methods.values()) {
      const labels = `side="${esc(m.side)}",service="${esc(m.service)}",method="${esc(m.method)}"`;
      calls.push(`meridian_rpc_calls_total{${labels}} ${m.calls}`);
      for (const [code, n] of Object.entries(m.errors)) errors.push(`meridian_rpc_errors_total{${labels},code="${code}"} ${n}`);
      let cumulative = 0;
      m.latency.counts.forEach((n, i) => {
        cumulative += n;
        const le = i < LATENCY_BUCKETS_MS.length ? String(LATENCY_BUCKETS_MS[i]) : "+Inf";
        latency.push(`meridian_rpc_duration_ms_bucket{${labels},le="${le}"} ${cumulative}`);
      });
      latency.push(`meridian_rpc_duration_ms_sum{${labels}} ${m.latency.sumMs}`);
      latency.push(`meridian_rpc_duration_ms_count{${labels}} ${m.latency.count}`);
    }
    const d = this.eventLoopDelay();
    return [
      "# HELP meridian_rpc_calls_total RPC calls finished.",
      "# TYPE meridian_rpc_calls_total counter",
      ...calls,
      "# HELP meridian_rpc_errors_total RPC calls failed, by status code.",
      "# TYPE meridian_rpc_errors_total counter",
      ...errors,
      "# HELP meridian_rpc_duration_ms RPC call latency in milliseconds.",
      "# TYPE meridian_rpc_duration_ms histogram",
      ...latency,
      "# HELP meridian_eventloop_delay_ms Event-loop delay of the process in milliseconds.",
      "# TYPE meridian_eventloop_delay_ms gauge",
      `meridian_eventloop_delay_ms{quantile="0.5"} ${d.p50Ms}`,
      `meridian_eventloop_delay_ms{quantile="0.99"} ${d.p99Ms}`,
      `meridian_eventloop_delay_ms{quantile="1"} ${d.maxMs}`,
      "",
    ].join("\n");
  }
}

/** Escapes a Prometheus label value. */
function esc(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
