/**
 * The load process of the overload benchmark: `load.ts <peer>`, forked by run.ts. "capacity"
 * measures what the server answers with a few calls always in flight (closed loop); "open" sends
 * calls at a fixed rate whatever happens to them (open loop: arrivals do not slow down when the
 * server does, as with real users), each with a deadline, optionally with bursts, and reports
 * what came back: answers within the deadline (goodput), refusals, time-outs.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { RpcError, createClient, HeaderKeys, type ClientTransport } from "meridian-rpc";
import { TcpClientTransport } from "meridian-rpc/transports/tcp";
import { Histogram } from "../rpc/histogram.js";
import { grpcService } from "../rpc/peers.js";
import { EchoService, HEADERS, caseData, meridianMessages } from "../rpc/service.js";
import type { OpenResult, OpenSpec, OverloadPeer } from "./spec.js";

/** How a failed call ended. */
type Failure = "refused" | "timedOut" | "other";

/** One call of the peer's client, and how to read its failures. */
interface OverloadClient {
  call(timeoutMs: number): Promise<unknown>;
  failure(e: unknown): Failure;
  /** How long a refused call had waited when the server refused it, ms, when the server says. */
  refusedWait?(e: unknown): number | undefined;
  /**
   * Meridian: the time from sending an attempt to the server's refusal of it, ns, for every refused
   * attempt (a call's requeued attempts included), taken since the last call of this function.
   */
  takeRefusedAttempts?(): Histogram;
  close(): Promise<void>;
}

const peer = process.argv[2] as OverloadPeer;
/** TCP connections the Meridian client opens (a clustered server spreads connections, not calls). */
const connections = Number(process.argv[3] ?? 1);

async function meridianClient(address: string): Promise<OverloadClient> {
  const { ping } = meridianMessages();
  const tcp = new TcpClientTransport({ connectionsPerAddress: connections });
  const endpoints = [{ address }];
  await tcp.warmUp(endpoints);
  // Below the client's requeue (on by default), which sends a refused call again after a backoff:
  // the call ends refused only once that gives up, while the server answered each attempt at once.
  let refusedAttempts = new Histogram();
  const transport: ClientTransport = {
    unary: (req) => {
      const t0 = performance.now();
      return tcp.unary(req).catch((e: unknown) => {
        if (e instanceof RpcError && e.headers[HeaderKeys.queueDelay] !== undefined) refusedAttempts.record((performance.now() - t0) * 1e6);
        throw e;
      });
    },
    close: () => tcp.close(),
    // A wrapper settles when the TCP transport does: not raced, as a client of the TCP transport is not.
    settlesOnAbort: tcp.settlesOnAbort,
  };
  const client = createClient(EchoService, { transport, endpoints, region: "cn-north", consistency: "eventual" });
  return {
    call: (timeoutMs) => client.echo(ping, { timeoutMs }),
    failure: (e) => {
      if (!(e instanceof RpcError)) return "other";
      // The server answers a refusal with how long the call had queued.
      if (e.headers[HeaderKeys.queueDelay] !== undefined) return "refused";
      return e.codeName === "DEADLINE_EXCEEDED" ? "timedOut" : "other";
    },
    refusedWait: (e) => {
      const hint = e instanceof RpcError ? e.headers[HeaderKeys.queueDelay] : undefined;
      return hint === undefined ? undefined : Number(hint);
    },
    takeRefusedAttempts: () => {
      const taken = refusedAttempts;
      refusedAttempts = new Histogram();
      return taken;
    },
    close: () => transport.close(),
  };
}

async function grpcClient(address: string): Promise<OverloadClient> {
  const { ping } = caseData();
  const Echo = grpcService();
  const client = new Echo(address, grpc.credentials.createInsecure());
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));
  const echo = client.Echo.bind(client) as (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void;
  return {
    call: (timeoutMs) =>
      new Promise((resolve, reject) => {
        const md = new grpc.Metadata();
        md.set("x-region-id", HEADERS["x-region-id"]);
        echo(ping, md, { deadline: Date.now() + timeoutMs }, (err) => (err ? reject(err) : resolve(undefined)));
      }),
    failure: (e) => {
      const code = (e as grpc.ServiceError).code;
      return code === grpc.status.DEADLINE_EXCEEDED ? "timedOut" : code === grpc.status.RESOURCE_EXHAUSTED ? "refused" : "other";
    },
    close: async () => client.close(),
  };
}

let client: OverloadClient | undefined;
async function connect(address: string): Promise<OverloadClient> {
  client ??= peer === "grpc-js" ? await grpcClient(address) : await meridianClient(address);
  return client;
}

/**
 * Closed loop: `concurrency` calls always in flight for `ms`; the answers per second. The first
 * `warmMs` are not counted: both processes start cold (a fresh process compiles its hot code in
 * its first thousands of calls, on the same cores the servers need).
 */
async function capacity(address: string, ms: number, concurrency: number, warmMs: number): Promise<number> {
  const c = await connect(address);
  let answered = 0;
  const loop = async (until: number): Promise<void> => {
    while (performance.now() < until) {
      // A refusal (the machine is shared: a stall can make a standing queue) is not an answer.
      const ok = await c.call(10_000).then(
        () => true,
        (e: unknown) => {
          if (c.failure(e) === "refused") return false;
          throw e;
        },
      );
      if (ok) answered++;
    }
  };
  const warmEnd = performance.now() + warmMs;
  await Promise.all(Array.from({ length: concurrency }, () => loop(warmEnd)));
  answered = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, () => loop(t0 + ms)));
  return answered / ((performance.now() - t0) / 1000);
}

/** The most calls in flight at once; past it the generator drops arrivals (counted as timed out). */
const MAX_IN_FLIGHT = 50_000;

/** Open loop: sends at the spec's rate for its duration, then waits for the last answers. */
async function open(spec: OpenSpec): Promise<OpenResult> {
  const c = await connect(spec.address);
  c.takeRefusedAttempts?.();
  const ok = new Histogram();
  const refused = new Histogram();
  const refusedWait = new Histogram();
  const r: OpenResult = { sent: 0, seconds: 0, ok: 0, okP50Ms: 0, okP99Ms: 0, refused: 0, refusedP50Ms: 0, refusedP99Ms: 0, timedOut: 0, otherErrors: 0 };
  let inFlight = 0;
  const fire = (): void => {
    r.sent++;
    if (inFlight >= MAX_IN_FLIGHT) {
      r.timedOut++;
      return;
    }
    inFlight++;
    const t0 = performance.now();
    c.call(spec.timeoutMs).then(
      () => {
        inFlight--;
        const ms = performance.now() - t0;
        if (ms > spec.timeoutMs) r.timedOut++;
        else ok.record(ms * 1e6);
      },
      (e: unknown) => {
        inFlight--;
        const kind = c.failure(e);
        if (kind === "refused") {
          refused.record((performance.now() - t0) * 1e6);
          const wait = c.refusedWait?.(e);
          if (wait !== undefined) refusedWait.record(Math.max(wait, 0.001) * 1e6);
        }
        else if (kind === "timedOut") r.timedOut++;
        else {
          r.otherErrors++;
          r.firstError ??= e instanceof Error ? e.message : String(e);
        }
      },
    );
  };
  const rateAt = (t: number): number => {
    const b = spec.burst;
    const inBurst = b !== undefined && t % b.everyMs >= b.everyMs - b.lengthMs;
    return (spec.rate * (inBurst ? b.factor : 1)) / 1000;
  };
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let last = t0;
    let credit = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      credit += (now - last) * rateAt(now - t0);
      last = now;
      while (credit >= 1) {
        credit--;
        fire();
      }
      if (now - t0 >= spec.ms) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  r.seconds = (performance.now() - t0) / 1000;
  eld.disable();
  r.loadEventLoopDelayP99Ms = eld.percentile(99) / 1e6;
  const settleBy = performance.now() + spec.timeoutMs + 5000;
  while (inFlight > 0 && performance.now() < settleBy) await sleep(10);
  r.timedOut += inFlight;
  r.ok = ok.count;
  r.okP50Ms = ok.quantile(0.5) / 1e6;
  r.okP99Ms = ok.quantile(0.99) / 1e6;
  r.refused = refused.count;
  r.refusedP50Ms = refused.quantile(0.5) / 1e6;
  r.refusedP99Ms = refused.quantile(0.99) / 1e6;
  if (refusedWait.count > 0) r.refusedWaitP99Ms = refusedWait.quantile(0.99) / 1e6;
  const attempts = c.takeRefusedAttempts?.();
  if (attempts !== undefined && attempts.count > 0) r.refusedAttemptP99Ms = attempts.quantile(0.99) / 1e6;
  return r;
}

process.on("message", (msg: { type: string; address?: string; ms?: number; warmMs?: number; concurrency?: number; spec?: OpenSpec }) => {
  const reply = (p: Promise<unknown>, type: string): void =>
    void p.then(
      (result) => process.send!({ type, result }),
      (e: unknown) => process.send!({ type: "failed", error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  if (msg.type === "capacity") reply(capacity(msg.address!, msg.ms!, msg.concurrency!, msg.warmMs ?? 0), "capacity");
  else if (msg.type === "open") reply(open(msg.spec!), "open");
  else if (msg.type === "close") void (client?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
process.send!({ type: "ready" });
