import { DecodeError } from "../codec/errors.js";
import { CallContext, ContextValues, runWithContext, type Consistency } from "./context.js";
import { deadlineExceeded } from "./deadline.js";
import type { InputOf, MethodDescriptor, OutputOf, ServiceDescriptor } from "./descriptors.js";
import { Code, ConfigError, RpcError } from "./errors.js";
import { limiterMiddleware, type LimiterOptions } from "./governance/limiter.js";
import { Metainfo } from "./metainfo.js";
import { compose, type Handler, type Middleware, type RpcResponse } from "./middleware.js";
import { observabilityMiddleware, type ObservabilityOptions } from "./observability/index.js";
import { RpcMetrics, type MetricsOptions, type MetricsSnapshot } from "./observability/metrics.js";
import { statusToHeaders } from "./status.js";
import { HeaderKeys, type Headers, type IncomingCall, type OutgoingReply, type ServerTransport } from "./transport.js";

/** A typed handler of one method: the decoded request and the call's context in, the response out. */
export type HandlerFn<I, O> = (request: I, ctx: CallContext) => Promise<O | Partial<O>> | O | Partial<O>;

/**
 * The typed handlers of service `S`: one per RPC, keyed as in `S.methods` (`getFeed`). A
 * handler may return a full response or a Partial one (completed with the codec's `create`).
 */
export type Handlers<S extends ServiceDescriptor> = {
  [K in keyof S["methods"]]: HandlerFn<InputOf<S["methods"][K]>, OutputOf<S["methods"][K]>>;
};

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
  readonly chain: Handler;
}

function parseConsistency(v: string | undefined): Consistency | undefined {
  return v === "linearizable" || v === "eventual" ? v : undefined;
}

class MeridianServer implements Server {
  private readonly routes = new Map<string, Map<string, Route>>();
  private readonly middleware: Middleware[];
  private readonly rpcMetrics: RpcMetrics;
  private readonly logger: Logger;
  private listening = false;

  constructor(private readonly options: ServerOptions) {
    this.logger = options.logger ?? consoleLogger;
    this.rpcMetrics = new RpcMetrics(options.metrics === false ? { eventLoop: false } : options.metrics);
    this.middleware = [
      ...(options.middleware ?? []),
      ...observabilityMiddleware(options, options.metrics === false ? [] : [this.rpcMetrics]),
      ...(options.limiter === undefined ? [] : [limiterMiddleware(options.limiter)]),
    ];
  }

  register<S extends ServiceDescriptor>(service: S, handlers: Partial<Handlers<S>>): this {
    const routes = new Map<string, Route>();
    const fns = handlers as Record<string, HandlerFn<unknown, object> | undefined>;
    for (const [key, method] of Object.entries(service.methods)) {
      const fn = fns[key];
      if (fn === undefined || method.kind !== "unary") continue;
      routes.set(method.name, { service, method, chain: compose(this.middleware, this.terminal(fn, method)) });
    }
    this.routes.set(service.typeName, routes);
    return this;
  }

  async listen(): Promise<{ address: string }> {
    if (this.listening) throw new ConfigError("ALREADY_LISTENING", "server.listen() was called twice; create another server to listen elsewhere");
    this.listening = true;
    try {
      const bound = await this.options.transport.listen((call) => this.dispatch(call));
      this.rpcMetrics.start();
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
    }
  }

  metrics(): MetricsSnapshot {
    return this.rpcMetrics.snapshot();
  }

  metricsText(): string {
    return this.rpcMetrics.prometheus();
  }

  /** The end of a route's chain: runs the user's handler and completes its answer. */
  private terminal(fn: HandlerFn<unknown, object>, method: MethodDescriptor): Handler {
    return async (req) => {
      let out: object | undefined;
      try {
        out = await fn(req.message, req.ctx);
      } catch (e) {
        throw this.toRpcError(e, req.ctx);
      }
      return { message: method.output.create(out), headers: req.ctx.responseHeaders };
    };
  }

  /** What the transport calls for every incoming call. Never rejects. */
  private async dispatch(call: IncomingCall): Promise<OutgoingReply> {
    const route = this.routes.get(call.service)?.get(call.method);
    if (route === undefined) return this.refuse(call, this.unimplemented(call));
    let message: unknown;
    try {
      message = route.method.input.decode(call.payload);
    } catch (e) {
      const what = `cannot decode the request of ${call.service}/${call.method}`;
      if (e instanceof DecodeError) return this.refuse(call, new RpcError(Code.INVALID_ARGUMENT, `${what}: ${e.message}`, { cause: e }));
      this.logger.error(what, { error: e });
      return this.refuse(call, new RpcError(Code.INTERNAL, "internal error"));
    }
    const headers = call.headers;
    const ctx = new CallContext({
      side: "server",
      service: route.service,
      method: route.method,
      headers,
      metainfo: new Metainfo().readHeaders(headers, "transient", "persistent"),
      values: new ContextValues(),
      deadline: call.deadline,
      region: headers[HeaderKeys.region],
      consistency: parseConsistency(headers[HeaderKeys.consistency]),
      peer: call.peer,
      upstream: call,
    });
    const req = { service: route.service, method: route.method, message, headers, ctx };
    try {
      const res: RpcResponse = await (this.options.asyncContext === false ? route.chain(req) : runWithContext(ctx, () => route.chain(req)));
      // The caller has given up on an answer that comes after the deadline: drop it.
      if (ctx.deadline !== undefined && Date.now() >= ctx.deadline) throw deadlineExceeded("the handler answered after the deadline");
      const method = route.method;
      return {
        headers: this.replyHeaders(ctx, res.headers),
        encode: (w) => {
          try {
            method.output.encodeTo(res.message, w);
          } catch (e) {
            this.logger.error(`cannot encode the response of ${call.service}/${call.method}`, { error: e });
            throw new RpcError(Code.INTERNAL, "internal error", { cause: e });
          }
        },
      };
    } catch (e) {
      return { headers: statusToHeaders(this.toRpcError(e, ctx), this.replyHeaders(ctx, ctx.responseHeaders)) };
    } finally {
      ctx.dispose();
    }
  }

  /** Adds the backward metainfo of `ctx` (when the call got that far) and the served region. */
  private replyHeaders(ctx: CallContext | undefined, headers: Headers): Headers {
    ctx?.metainfo.writeHeaders(headers, "backward");
    if (this.options.region !== undefined) headers[HeaderKeys.servedRegion] = this.options.region;
    return headers;
  }

  /** Answers a call that never reached a handler (unknown method, bad payload), counting it. */
  private refuse(call: IncomingCall, err: RpcError): OutgoingReply {
    if (this.options.metrics !== false) {
      this.rpcMetrics.finish(undefined, {
        side: "server",
        service: call.service,
        method: call.method,
        peer: call.peer,
        startTime: Date.now(),
        durationMs: 0,
        code: err.code,
        error: err,
      });
    }
    return { headers: statusToHeaders(err, this.replyHeaders(undefined, {})) };
  }

  private unimplemented(call: IncomingCall): RpcError {
    const service = this.routes.has(call.service);
    return new RpcError(
      Code.UNIMPLEMENTED,
      service
        ? `method ${call.method} of ${call.service} is not implemented by this server`
        : `service ${call.service} is not registered on this server`,
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
