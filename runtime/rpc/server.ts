import type { Writer } from "../codec/writer.js";
import { DecodeError } from "../codec/errors.js";
import { CallContext, runWithContext, type Consistency } from "./context.js";
import { deadlineExceeded, raceSignal, wallClock } from "./deadline.js";
import type { InputOf, MethodDescriptor, OutputOf, ServiceDescriptor } from "./descriptors.js";
import { resultOf, thriftInfo } from "./thrift.js";
import { Code, ConfigError, RpcError } from "./errors.js";
import { QueueShedder, queueRefusal, type AdmissionOptions } from "./governance/admission.js";
import { limiterMiddleware, type LimiterOptions } from "./governance/limiter.js";
import { priorityOf, type Priority } from "./governance/priority.js";
import { RunQueue, type QueuedCall } from "./governance/runqueue.js";
import { composeDirect, isThenable, Later, settle, type DirectAnswer, type DirectHandler } from "./direct.js";
import { CallRequest, CallResponse, type Middleware, type RpcResponse } from "./middleware.js";
import { observabilityMiddleware, type ObservabilityOptions } from "./observability/index.js";
import { RpcMetrics, type MetricsOptions, type MetricsSnapshot } from "./observability/metrics.js";
import { clipText, errorHeaders, statusToHeaders } from "./status.js";
import { streamsResponses } from "./streaming.js";
import {
  copyHeaders,
  HeaderKeys,
  Reply,
  type CallDispatcher,
  type CallSignal,
  type Headers,
  type IncomingCall,
  type IncomingStream,
  type OutgoingReply,
  type ReplySink,
  type ServerTransport,
} from "./transport.js";

/** A typed handler of one unary method: the decoded request and the call's context in, the response out. */
export type HandlerFn<I, O> = (request: I, ctx: CallContext) => Promise<O | Partial<O>> | O | Partial<O>;

/**
 * A typed handler of a server-streaming method: the request in, a stream of responses out
 * (an async generator: `async function* (req, ctx) { yield ... }`). Returning ends the call with
 * OK; throwing ends it with that error, after the messages already yielded.
 */
export type ServerStreamingHandler<I, O> = (request: I, ctx: CallContext) => AsyncIterable<O | Partial<O>> | Promise<AsyncIterable<O | Partial<O>>>;

/**
 * A typed handler of a client-streaming method: the requests as an async iterable (it ends when
 * the client is done sending, and throws if the call is cancelled), one response out.
 */
export type ClientStreamingHandler<I, O> = (requests: AsyncIterable<I>, ctx: CallContext) => Promise<O | Partial<O>> | O | Partial<O>;

/** A typed handler of a bidi-streaming method: a stream of requests in, a stream of responses out. */
export type BidiStreamingHandler<I, O> = (requests: AsyncIterable<I>, ctx: CallContext) => AsyncIterable<O | Partial<O>> | Promise<AsyncIterable<O | Partial<O>>>;

/**
 * The typed handler of descriptor `D`, by its kind. A descriptor whose kind is not a literal
 * (typed as the whole MethodKind) gets the unary form.
 */
export type HandlerOf<D> = D extends { readonly kind: infer K }
  ? [K] extends ["server_streaming"]
    ? ServerStreamingHandler<InputOf<D>, OutputOf<D>>
    : [K] extends ["client_streaming"]
      ? ClientStreamingHandler<InputOf<D>, OutputOf<D>>
      : [K] extends ["bidi_streaming"]
        ? BidiStreamingHandler<InputOf<D>, OutputOf<D>>
        : HandlerFn<InputOf<D>, OutputOf<D>>
  : never;

/**
 * The typed handlers of service `S`: one per RPC, keyed as in `S.methods` (`getFeed`). A
 * handler may return (or yield) full responses or Partial ones (completed with the codec's
 * `create`).
 */
export type Handlers<S extends ServiceDescriptor> = {
  [K in keyof S["methods"]]: HandlerOf<S["methods"][K]>;
};

/** Any handler, as the server stores it. */
type AnyHandler = (request: unknown, ctx: CallContext) => unknown;

/** Where the server reports failures that must not reach the client (handler bugs). */
export interface Logger {
  error(message: string, details: Record<string, unknown>): void;
}

/** Logs to stderr, one line per failure. */
const consoleLogger: Logger = {
  error(message, details) {
    console.error(`meridian: ${message}`, details);
  },
};

/** Options of createServer. */
export interface ServerOptions extends ObservabilityOptions {
  transport: ServerTransport;
  /** User middleware, outermost first; they run outside every built-in one. */
  middleware?: readonly Middleware[];
  /** QPS and concurrency limits, answered with RESOURCE_EXHAUSTED. Off unless set. */
  limiter?: LimiterOptions;
  /**
   * Admission control, on by default: a call whose deadline passed while it waited is answered
   * DEADLINE_EXCEEDED without running its handler, and calls from a standing queue are shed with
   * RESOURCE_EXHAUSTED (see QueueShedder and docs/governance.md). Handlers start from a bounded
   * run queue (see RunQueue), so the transport keeps reading while they run and refusals are
   * answered when a call is read. `false` turns shedding and the run queue off (handlers start
   * as calls are read; expired calls are still refused: nobody is waiting for their answer).
   */
  admission?: AdmissionOptions | false;
  /** This server's region, sent back as `x-served-region`. */
  region?: string;
  /** Where unexpected handler errors are logged. Default: console.error. */
  logger?: Logger;
  /** Per-server metrics (`server.metrics()`); `false` turns them off. */
  metrics?: MetricsOptions | false;
  /**
   * Run handlers inside an AsyncLocalStorage scope, so that client calls they make inherit the
   * call's deadline and persistent metainfo without `parent`. Default true; see docs/rpc.md for
   * its cost.
   */
  asyncContext?: boolean;
}

/** Options of Server.close. */
export interface CloseOptions {
  /** How long calls in flight may take to finish before they are cut off. Default 5000 ms. */
  graceMs?: number;
}

/** A server: services registered on it, served over one transport. */
export interface Server {
  /** Registers a service's handlers; a method without a handler answers UNIMPLEMENTED. */
  register<S extends ServiceDescriptor>(service: S, handlers: Partial<Handlers<S>>): this;
  /** Starts serving; resolves with the address the transport bound. */
  listen(): Promise<{ address: string }>;
  /** Stops accepting calls, lets calls in flight finish within `graceMs`, then closes. */
  close(options?: CloseOptions): Promise<void>;
  /** The server's metrics as an object. */
  metrics(): MetricsSnapshot;
  /** The server's metrics in the Prometheus text format. */
  metricsText(): string;
}

interface Route {
  readonly service: ServiceDescriptor;
  readonly method: MethodDescriptor;
  readonly chain: DirectHandler;
}

/** Longest service or method name, in UTF-16 units, that an UNIMPLEMENTED answer quotes back. */
const MAX_QUOTED_NAME = 256;

function parseConsistency(v: string | undefined): Consistency | undefined {
  return v === "linearizable" || v === "eventual" ? v : undefined;
}

/** A unary call waiting in the run queue: a class for the reason `CallRequest` gives. */
class QueuedServerCall implements QueuedCall {
  declare readonly deadline: number | undefined;
  declare readonly priority: Priority;
  declare readonly peer: string;
  declare queuedAt: number;
  declare private readonly route: Route;
  declare private readonly call: IncomingCall;
  declare readonly waitedMs: number;
  declare private readonly server: MeridianServer;
  declare private readonly sink: ReplySink<IncomingCall>;

  constructor(route: Route, call: IncomingCall, waitedMs: number, queuedAt: number, server: MeridianServer, sink: ReplySink<IncomingCall>) {
    this.deadline = call.deadline;
    this.priority = priorityOf(call.headers);
    this.peer = call.peer;
    this.queuedAt = queuedAt;
    this.route = route;
    this.call = call;
    this.waitedMs = waitedMs;
    this.server = server;
    this.sink = sink;
  }

  run(t0: number): void {
    this.server.serve(this.route, this.call, this.sink, t0);
  }

  refuse(err: RpcError): void {
    this.server.answer(this.sink, this.call, this.server.refuse(this.call, err));
  }
}

class MeridianServer implements Server {
  private readonly routes = new Map<string, Map<string, Route>>();
  /** Routes of Thrift functions by name alone (see thriftRoute): null for a name two services define. */
  private readonly thriftRoutes = new Map<string, Route | null>();
  private readonly middleware: Middleware[];
  private readonly rpcMetrics: RpcMetrics;
  private readonly logger: Logger;
  private readonly shedder: QueueShedder | undefined;
  private readonly runQueue: RunQueue | undefined;
  /** `serve`, bound: what the run queue starts, without a closure per call. */
  private readonly serveFn = (route: Route, call: IncomingCall, sink: ReplySink<IncomingCall>, t0: number): void => this.serve(route, call, sink, t0);
  private listening = false;

  constructor(private readonly options: ServerOptions) {
    this.logger = options.logger ?? consoleLogger;
    this.shedder = options.admission === false ? undefined : new QueueShedder(options.admission);
    this.runQueue = options.admission === false ? undefined : new RunQueue(this.shedder, options.admission);
    this.rpcMetrics = new RpcMetrics(options.metrics === false ? { eventLoop: false } : options.metrics);
    this.middleware = [
      ...(options.middleware ?? []),
      ...observabilityMiddleware(options, options.metrics === false ? [] : [this.rpcMetrics]),
      ...(options.limiter === undefined ? [] : [limiterMiddleware(options.limiter)]),
    ];
  }

  register<S extends ServiceDescriptor>(service: S, handlers: Partial<Handlers<S>>): this {
    const routes = new Map<string, Route>();
    const fns = handlers as Record<string, AnyHandler | undefined>;
    for (const [key, method] of Object.entries(service.methods)) {
      const fn = fns[key];
      if (fn === undefined) continue;
      const thrift = thriftInfo(method);
      const where = `${service.typeName}/${method.name}`;
      const handler: AnyHandler = thrift === undefined ? fn : (req, ctx) => resultOf(thrift, () => fn(req, ctx), where);
      const route = { service, method, chain: composeDirect(this.middleware, this.terminal(handler, method)) };
      routes.set(method.name, route);
      if (thrift !== undefined) this.thriftRoutes.set(method.name, this.thriftRoutes.has(method.name) ? null : route);
    }
    this.routes.set(service.typeName, routes);
    return this;
  }

  async listen(): Promise<{ address: string }> {
    if (this.listening) throw new ConfigError("ALREADY_LISTENING", "server.listen() was called twice; create another server to listen elsewhere");
    this.listening = true;
    try {
      const to = <C extends IncomingCall>(call: C, sink: ReplySink<C>): void => {
        try {
          this.dispatch(call, sink as ReplySink<IncomingCall>);
        } catch (e) {
          // A bug before the call reached a handler: answered, as settleCall answers a dispatcher that throws.
          this.logger.error(`cannot dispatch a call to ${call.service}/${call.method}`, { error: e });
          this.answer(sink as ReplySink<IncomingCall>, call, new Reply(errorHeaders(e)));
        }
      };
      const dispatch: CallDispatcher = Object.assign((call: IncomingCall) => new Promise<OutgoingReply>((resolve) => to(call, (_, reply) => resolve(reply))), { to });
      const bound = await this.options.transport.listen(dispatch, (stream) => this.dispatchStream(stream));
      this.rpcMetrics.start();
      this.shedder?.start();
      return bound;
    } catch (e) {
      this.listening = false;
      throw e;
    }
  }

  async close(options: CloseOptions = {}): Promise<void> {
    try {
      await this.options.transport.close(options.graceMs ?? 5000);
    } finally {
      this.rpcMetrics.stop();
      this.shedder?.stop();
    }
  }

  metrics(): MetricsSnapshot {
    return this.rpcMetrics.snapshot();
  }

  metricsText(): string {
    return this.rpcMetrics.prometheus();
  }

  /**
   * The end of a route's chain: runs the user's handler and completes its answer (for a
   * response stream, each message as it is yielded; a handler's failure mid-stream becomes its
   * RpcError, as for a unary handler).
   */
  private terminal(fn: AnyHandler, method: MethodDescriptor): DirectHandler {
    const complete = (out: unknown, ctx: CallContext): RpcResponse => {
      const headers = ctx.responseHeaders;
      if (!streamsResponses(method)) return new CallResponse(method.output.create(out as object | undefined), headers);
      return new CallResponse(this.completed(out as AsyncIterable<object | undefined>, method, ctx), headers);
    };
    // A direct link: a handler that answers without awaiting costs no promise here, one that
    // awaits answers Later (the links around it add their steps, the dispatcher waits once).
    return (req) => {
      const ctx = req.ctx;
      let out: unknown;
      try {
        out = fn(req.message, ctx);
        if (!isThenable(out)) return complete(out, ctx);
      } catch (e) {
        throw this.toRpcError(e, ctx);
      }
      return new Later(
        out,
        (value) => complete(value, ctx),
        (e: unknown) => {
          throw this.toRpcError(e, ctx);
        },
      );
    };
  }

  /** A handler's response stream, each message completed, its failure turned into an RpcError. */
  private async *completed(out: AsyncIterable<object | undefined>, method: MethodDescriptor, ctx: CallContext): AsyncGenerator<unknown, void, undefined> {
    try {
      for await (const m of out) yield method.output.create(m);
    } catch (e) {
      throw this.toRpcError(e, ctx);
    }
  }

  /**
   * What the transport calls for every incoming call (as its dispatcher's `to`; the dispatcher's
   * promise is made over it). Never throws; `sink` gets the reply once. Admission is decided at
   * once; the handler starts now or from the run queue (see RunQueue).
   */
  private dispatch(call: IncomingCall, sink: ReplySink<IncomingCall>): void {
    const route = this.routes.get(call.service)?.get(call.method) ?? (call.protocol === undefined ? undefined : this.thriftRoute(call));
    if (route === undefined || route.method.kind !== "unary") return this.answer(sink, call, this.refuse(call, this.unimplemented(call, route)));
    const refused = this.admit(call);
    if (refused !== undefined) return this.answer(sink, call, this.refuse(call, refused));
    const queue = this.runQueue;
    if (queue === undefined) return this.serve(route, call, sink);
    if (queue.idle) return queue.startNow(this.serveFn, route, call, sink);
    // As in `admit`: a call's read time is now, to the clock's millisecond (a transport hands a
    // call over as it reads it), so it is queued at that time without reading the clock again.
    const received = call.receivedAt;
    queue.submit(new QueuedServerCall(route, call, received === undefined ? 0 : (call.waitedMs ?? 0), received ?? Date.now(), this, sink));
  }

  /** Hands `reply` to the transport's sink, which must not throw: if it does, logs it (see ReplySink). */
  answer(sink: ReplySink<IncomingCall>, call: IncomingCall, reply: OutgoingReply): void {
    try {
      sink(call, reply);
    } catch (e) {
      try {
        this.logger.error(`the transport failed to take the reply to ${call.service}/${call.method}`, { error: e });
      } catch {
        // A logger that throws: nothing is left to tell; the peer's deadline settles the call.
      }
    }
  }

  /**
   * The route of a Thrift call that names no service this server knows: Apache Thrift clients name
   * none, Kitex names the service as its IDL does (`InteropService`, not `interop.InteropService`).
   * Found by the function's name, when one registered Thrift service alone defines it.
   */
  private thriftRoute(call: IncomingCall): Route | undefined {
    if (call.service !== "" && this.routes.has(call.service)) return undefined;
    return this.thriftRoutes.get(call.method) ?? undefined;
  }

  /**
   * Decodes an admitted call's request, runs its chain and hands the reply to `sink`: before it
   * returns when the chain answered at once. Never throws (the run queue calls it from
   * setImmediate). `startedAt`: when the run queue started it (performance.now()).
   */
  serve(route: Route, call: IncomingCall, sink: ReplySink<IncomingCall>, startedAt?: number): void {
    // `answer` never throws: whatever throws below does so before the sink got a reply.
    try {
      const protocol = call.protocol;
      if (protocol !== undefined && thriftInfo(route.method) === undefined) {
        const err = new RpcError(Code.INVALID_ARGUMENT, `${call.service}/${call.method} is not a Thrift function: call it with its own codec, not ${protocol}`);
        return this.answer(sink, call, this.refuse(call, err));
      }
      let message: unknown;
      try {
        message = route.method.input.decode(call.payload, protocol);
      } catch (e) {
        return this.answer(sink, call, this.undecodable(call, e));
      }
      const ctx = serverContext(route, call, startedAt);
      const req = new CallRequest(route.service, route.method, message, call.headers, ctx);
      let running: DirectAnswer;
      try {
        running = this.options.asyncContext === false ? route.chain(req) : runWithContext(ctx, route.chain, req);
      } catch (e) {
        return this.answer(sink, call, this.failed(ctx, e));
      }
      // A chain that answered at once (a handler that did not await) costs no promise here; one
      // that answers Later, the one `then` of `end`.
      if (!(running instanceof Later) && !isThenable(running)) return this.answer(sink, call, this.answered(route, call, ctx, running));
      // Neither throws (`answered`, `failed` and `answer` do not): a throw there would be an
      // unhandled rejection, which ends the process.
      const ok = (res: RpcResponse): void => this.answer(sink, call, this.answered(route, call, ctx, res));
      const failed = (e: unknown): void => this.answer(sink, call, this.failed(ctx, e));
      if (!(running instanceof Later)) return void running.then(ok, failed);
      // The links' steps run when it settles, in the call's scope as their `then`s did.
      const later = running;
      if (this.options.asyncContext === false) later.end(ok, failed);
      else runWithContext(ctx, () => later.end(ok, failed));
    } catch (e) {
      this.answer(sink, call, new Reply(errorHeaders(e)));
    }
  }

  /** The answer to a call whose request cannot be decoded. */
  private undecodable(call: IncomingCall, e: unknown): OutgoingReply {
    const what = `cannot decode the request of ${call.service}/${call.method}`;
    if (e instanceof DecodeError) return this.refuse(call, new RpcError(Code.INVALID_ARGUMENT, `${what}: ${e.message}`, { cause: e }));
    this.logger.error(what, { error: e });
    return this.refuse(call, new RpcError(Code.INTERNAL, "internal error"));
  }

  /** The reply to a unary call whose chain answered `res`; the call's context is done with. */
  private answered(route: Route, call: IncomingCall, ctx: CallContext, res: RpcResponse): OutgoingReply {
    try {
      // The caller has given up on an answer that comes after the deadline: drop it. With a run
      // queue the clock is read through it: the reading also ends the call's start.
      const t = this.runQueue?.answering();
      if (ctx.deadline !== undefined && (t === undefined ? Date.now() : wallClock(t)) >= ctx.deadline) {
        throw deadlineExceeded("the handler answered after the deadline");
      }
      return new Reply(this.replyHeaders(ctx, res.headers), this.encoder(route.method, res.message, call));
    } catch (e) {
      return this.errorReply(ctx, e);
    } finally {
      ctx.dispose();
    }
  }

  /** The reply to a unary call whose chain failed with `e`; the call's context is done with. */
  private failed(ctx: CallContext, e: unknown): OutgoingReply {
    try {
      return this.errorReply(ctx, e);
    } finally {
      ctx.dispose();
    }
  }

  /** How a unary call's response is encoded into the transport's writer. */
  private encoder(method: MethodDescriptor, message: unknown, call: IncomingCall): NonNullable<OutgoingReply["encode"]> {
    return (w, p) => {
      try {
        method.output.encodeTo(message, w, p);
      } catch (e) {
        this.logger.error(`cannot encode the response of ${call.service}/${call.method}`, { error: e });
        throw new RpcError(Code.INTERNAL, "internal error", { cause: e });
      }
    };
  }

  /** The answer of a unary call that failed: its status, the response headers so far. */
  private errorReply(ctx: CallContext, e: unknown): OutgoingReply {
    try {
      return new Reply(statusToHeaders(this.toRpcError(e, ctx), this.replyHeaders(ctx, ctx.responseHeaders)));
    } catch (again) {
      // The response headers cannot take the status (a handler froze them): the status alone.
      return new Reply(errorHeaders(again));
    }
  }

  /**
   * What the transport calls for every incoming streaming call: decodes the requests as the
   * handler pulls them, runs the chain, sends the response messages as the transport has room
   * (headers with the first), and resolves with the trailers. Never rejects. The call ends with
   * the abort reason as soon as it is cancelled or its deadline passes, and the handler's
   * response stream is then closed (its `finally` blocks run).
   */
  private async dispatchStream(stream: IncomingStream): Promise<Headers> {
    const route = this.routes.get(stream.service)?.get(stream.method);
    if (route === undefined || route.method.kind === "unary") return this.refuse(stream, this.unimplemented(stream, route)).headers;
    const refused = this.admit(stream);
    if (refused !== undefined) return this.refuse(stream, refused).headers;
    const { method, service } = route;
    const headers = stream.headers;
    const ctx = serverContext(route, stream);
    const signal = ctx.cancellation;
    let sent: Headers | undefined;
    const sendHeaders = (h: Headers): void => {
      sent = copyHeaders(h);
      if (this.options.region !== undefined) sent[HeaderKeys.servedRegion] = this.options.region;
      stream.sendHeaders(sent);
    };
    const encode = (m: unknown) => (w: Writer) => {
      try {
        method.output.encodeTo(m, w);
      } catch (e) {
        this.logger.error(`cannot encode a response of ${stream.service}/${stream.method}`, { error: e });
        throw new RpcError(Code.INTERNAL, "internal error", { cause: e });
      }
    };
    const serve = async (): Promise<Headers> => {
      try {
        const requests = decodeRequests(stream, method, signal);
        const message = method.kind === "server_streaming" ? await onlyRequest(requests, stream) : requests;
        const req = new CallRequest(service, method, message, headers, ctx);
        const res = await raceSignal(settle(route.chain(req)), signal);
        if (streamsResponses(method)) {
          const it = (res.message as AsyncIterable<unknown>)[Symbol.asyncIterator]();
          let ended = false;
          try {
            for (;;) {
              const r = await raceSignal(it.next(), signal);
              if (r.done === true) break;
              if (sent === undefined) sendHeaders(res.headers);
              await raceSignal(stream.send(encode(r.value)), signal);
            }
            ended = true;
          } finally {
            // Cancelled, past the deadline, or the transport failed: close the handler's stream.
            if (!ended) void it.return?.()?.catch(() => undefined);
          }
        } else {
          if (ctx.deadline !== undefined && Date.now() >= ctx.deadline) throw deadlineExceeded("the handler answered after the deadline");
          sendHeaders(res.headers);
          await raceSignal(stream.send(encode(res.message)), signal);
        }
        return this.trailers(ctx, sent, res.headers);
      } catch (e) {
        return statusToHeaders(this.toRpcError(e, ctx), this.trailers(ctx, sent, ctx.responseHeaders));
      }
    };
    try {
      return await (this.options.asyncContext === false ? serve() : runWithContext(ctx, serve));
    } finally {
      ctx.dispose();
    }
  }

  /**
   * The trailers of a streaming call: what the handler added to its response headers after the
   * headers went out (all of them when none went out), the backward metainfo, the served region.
   */
  private trailers(ctx: CallContext, sent: Headers | undefined, current: Headers): Headers {
    const t: Headers = {};
    for (const k in current) if (sent === undefined || sent[k] !== current[k]) t[k] = current[k] as string;
    return this.replyHeaders(ctx, t);
  }

  /** Adds the backward metainfo of `ctx` (when the call got that far) and the served region. */
  private replyHeaders(ctx: CallContext | undefined, headers: Headers): Headers {
    ctx?.metainfoIfMade?.writeHeaders(headers, "backward");
    if (this.options.region !== undefined) headers[HeaderKeys.servedRegion] = this.options.region;
    return headers;
  }

  /** Answers a call that never reached a handler (unknown method, bad payload), counting it. */
  refuse(call: { readonly service: string; readonly method: string; readonly peer: string }, err: RpcError): OutgoingReply {
    if (this.options.metrics !== false) {
      // The names of a call to nothing registered are the peer's to choose: counted under one
      // label, so that they cannot grow the metrics (one entry per name) without bound.
      const known = this.routes.get(call.service);
      this.rpcMetrics.finish(undefined, {
        side: "server",
        service: known === undefined ? "(unknown)" : call.service,
        method: known?.has(call.method) === true ? call.method : "(unknown)",
        peer: call.peer,
        startTime: Date.now(),
        durationMs: 0,
        code: err.code,
        error: err,
      });
    }
    return new Reply(statusToHeaders(err, this.replyHeaders(undefined, copyHeaders(err.headers))));
  }

  /**
   * Whether a call may reach its handler: not when its deadline passed while it waited (nobody
   * is waiting for the answer), nor when the shedder sheds it from a standing queue. Counts what
   * the call's peer sent, so that the shedder can spare peers that send little.
   */
  private admit(call: IncomingCall | IncomingStream): RpcError | undefined {
    // A transport hands a call over as it reads it (see RunQueue): its read time is now, to the
    // clock's millisecond, without reading the clock again, and what the call waited is what it
    // waited before the read.
    const received = call.receivedAt;
    const now = received ?? Date.now();
    this.shedder?.peers.record(call.peer, "payload" in call ? call.payload.length : 0, now);
    const queued = received === undefined ? undefined : (call.waitedMs ?? 0);
    if (call.deadline !== undefined && call.deadline <= now) {
      const waited = queued === undefined ? "" : ` (it waited ${Math.round(queued)} ms)`;
      return queueRefusal(Code.DEADLINE_EXCEEDED, `the call's deadline passed before its handler could start${waited}`, queued);
    }
    // How long it would still wait in the run queue: judged now, so a refusal is answered now. A
    // light peer's call goes ahead of the others (see RunQueue), but the shedder samples the wait
    // behind them all: that is the queue it holds to its target.
    const queue = this.runQueue;
    const wait = queue?.expectedWaitMs() ?? 0;
    const own = wait > 0 && queue!.isLight(call.peer, now) ? queue!.expectedWaitMs(true) : wait;
    if (own > 0 && call.deadline !== undefined && call.deadline <= now + own) {
      return queueRefusal(Code.DEADLINE_EXCEEDED, `the call's deadline would pass before its handler could start (${Math.round(own)} ms of calls are queued before it)`, (queued ?? 0) + own);
    }
    if (this.shedder?.maxEventLoopDelayMs !== undefined) {
      const late = this.shedder.lateLoop(priorityOf(call.headers), call.peer, now, queued);
      if (late !== undefined) return late;
    }
    if (queued === undefined && wait === 0) return undefined;
    // The call's timeout: from when it was sent (as far as the transport can tell) to its deadline.
    const budget = call.deadline === undefined ? undefined : call.deadline - now + (queued ?? 0);
    return this.shedder?.check((queued ?? 0) + wait, now, priorityOf(call.headers), call.peer, wait, budget);
  }

  private unimplemented(call: { readonly service: string; readonly method: string }, route: Route | undefined): RpcError {
    if (route !== undefined) {
      const streaming = route.method.kind !== "unary";
      return new RpcError(
        Code.UNIMPLEMENTED,
        `method ${call.method} of ${call.service} is ${route.method.kind}: call it as a ${streaming ? "stream" : "unary call"}, not as a ${streaming ? "unary call" : "stream"}`,
      );
    }
    // The names come from the peer: quote them cut short, whatever their size.
    const method = clipText(call.method, MAX_QUOTED_NAME);
    const service = clipText(call.service, MAX_QUOTED_NAME);
    return new RpcError(
      Code.UNIMPLEMENTED,
      this.routes.has(call.service)
        ? `method ${method} of ${service} is not implemented by this server`
        : `service ${service} is not registered on this server`,
    );
  }

  /**
   * The RpcError to answer with: RpcErrors (and BizErrors) as thrown; anything else is a bug of
   * the handler, logged here and answered as INTERNAL "internal error" without its message.
   */
  private toRpcError(e: unknown, ctx: CallContext): RpcError {
    if (e instanceof RpcError) return e;
    this.logger.error(`handler of ${ctx.service.typeName}/${ctx.method.name} failed`, { error: e, peer: ctx.peer });
    return new RpcError(Code.INTERNAL, "internal error", { cause: e });
  }
}

/**
 * Creates a server over `options.transport`. Its middleware chain, outermost first: the user's,
 * observability (metrics and stats hooks, tracing), the limiter, then the handler; see
 * docs/governance.md.
 */
export function createServer(options: ServerOptions): Server {
  return new MeridianServer(options);
}

/**
 * The requests of a streaming call, decoded as the handler pulls them. A payload that does not
 * decode fails the call with INVALID_ARGUMENT; a cancelled call (or one past its deadline)
 * throws its abort reason. Each message is decoded from a copy of its payload, because a
 * transport's payload is valid only until the next one is pulled and a handler may keep messages.
 */
function decodeRequests(stream: IncomingStream, method: MethodDescriptor, signal: CallSignal): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<unknown> {
      const it = stream.requests[Symbol.asyncIterator]();
      return {
        async next() {
          const r = await raceSignal(it.next(), signal);
          if (r.done === true) return r;
          try {
            return { done: false, value: method.input.decode(Uint8Array.prototype.slice.call(r.value)) };
          } catch (e) {
            const what = `cannot decode a request of ${stream.service}/${stream.method}`;
            throw e instanceof DecodeError ? new RpcError(Code.INVALID_ARGUMENT, `${what}: ${e.message}`, { cause: e }) : e;
          }
        },
        async return() {
          await it.return?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/** The one request of a server-streaming call (INVALID_ARGUMENT when the client sent none). */
async function onlyRequest(requests: AsyncIterable<unknown>, stream: IncomingStream): Promise<unknown> {
  const first = await requests[Symbol.asyncIterator]().next();
  if (first.done === true) {
    throw new RpcError(Code.INVALID_ARGUMENT, `${stream.service}/${stream.method} is server-streaming and needs one request; the client sent none`);
  }
  return first.value;
}

/** The context of a call arriving at a server: what its headers, deadline and peer say. */
function serverContext(route: Route, incoming: IncomingCall | IncomingStream, startedAt?: number): CallContext {
  const headers = incoming.headers;
  return new CallContext({
    side: "server",
    service: route.service,
    method: route.method,
    headers,
    deadline: incoming.deadline,
    region: headers[HeaderKeys.region],
    consistency: parseConsistency(headers[HeaderKeys.consistency]),
    peer: incoming.peer,
    peerIdentity: incoming.peerIdentity,
    upstream: incoming,
    startedAt,
  });
}
