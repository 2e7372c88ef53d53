import { CallContext, ContextValues, currentContext, type Consistency } from "./context.js";
import { abortError, deadlineAfter, earliest } from "./deadline.js";
import type { InputOf, MethodDescriptor, OutputOf, ServiceDescriptor } from "./descriptors.js";
import { BizError, Code, ConfigError, RpcError } from "./errors.js";
import { breakerMiddleware, type BreakerOptions } from "./governance/breaker.js";
import { loadBalancerMiddleware, WeightedRoundRobin, type LoadBalancer, type Resolver } from "./governance/loadbalance.js";
import { backupMiddleware, retryMiddleware, type BackupPolicy, type RetryPolicy } from "./governance/retry.js";
import { timeoutMiddleware } from "./governance/timeout.js";
import { Metainfo } from "./metainfo.js";
import { compose, type Handler, type Middleware } from "./middleware.js";
import { observabilityMiddleware, type ObservabilityOptions } from "./observability/index.js";
import { statusFromHeaders } from "./status.js";
import { HeaderKeys, type ClientTransport, type Endpoint, type Headers } from "./transport.js";

/** Options of one call. */
export interface CallOptions {
  /** Timeout of this call, ms (overrides the client's `timeoutMs`; a parent's deadline still bounds it). */
  timeoutMs?: number;
  /** Cancels the call. */
  signal?: AbortSignal;
  /** Extra request headers. */
  headers?: Headers;
  /** The caller's region for this call (default: the client's `region`). */
  region?: string;
  /** Read consistency (default: the parent call's, else the client's). */
  consistency?: Consistency;
  /**
   * The server call this call is made for: the call inherits what is left of its deadline, its
   * cancellation, consistency, persistent metainfo and context values. When omitted, the server
   * call being handled in this async flow is used (see ClientOptions.inheritContext); `null`
   * inherits nothing.
   */
  parent?: CallContext | null;
  /** Metainfo to send (transient and persistent); the response's backward values are stored into it. */
  metainfo?: Metainfo;
  /** Receives the response headers (on success and on error). */
  onHeaders?: (headers: Headers) => void;
}

/** A typed unary method of a client: the request as a full message or a Partial of one. */
export type UnaryCall<D> = (request?: Partial<InputOf<D>>, options?: CallOptions) => Promise<OutputOf<D>>;

/** A typed client of service `S`: one async method per RPC, keyed as in `S.methods` (`getFeed`). */
export type Client<S extends ServiceDescriptor> = { readonly [K in keyof S["methods"]]: UnaryCall<S["methods"][K]> };

/** Options of createClient. */
export interface ClientOptions extends ObservabilityOptions {
  transport: ClientTransport;
  /** User middleware, outermost first; they run outside every built-in one. */
  middleware?: readonly Middleware[];
  /** A fixed list of instances to balance over. */
  endpoints?: readonly Endpoint[];
  /** Where to find instances when they change (a registry); instead of `endpoints`. */
  resolver?: Resolver;
  /** How to pick an instance. Default: smooth weighted round robin. */
  loadBalancer?: LoadBalancer;
  /** This client's region, sent as `x-region-id`. */
  region?: string;
  /** Default read consistency, sent as `x-consistency-level`. */
  consistency?: Consistency;
  /** Default timeout of a whole call, ms (retries included). */
  timeoutMs?: number;
  /** Failure retry; off unless set (`{}` takes the defaults). Exclusive with `backup`. */
  retry?: RetryPolicy;
  /** Backup request; off unless set. Exclusive with `retry`. */
  backup?: BackupPolicy;
  /** Circuit breaker per service method; off unless set. */
  breaker?: BreakerOptions;
  /** Circuit breaker per instance; off unless set. */
  instanceBreaker?: BreakerOptions;
  /** Headers sent with every call. */
  headers?: Headers;
  /**
   * Whether a call made while handling a server call inherits from it automatically (through
   * AsyncLocalStorage, when the server has `asyncContext` on). Default true.
   */
  inheritContext?: boolean;
}

/**
 * The client middleware in their fixed order, outermost first: the user's, observability
 * (stats, tracing), the whole-call timeout, retry or backup request, the service breaker, load
 * balancing, the instance breaker. The transport runs below the last. docs/governance.md
 * explains the order.
 */
export function clientMiddleware(options: Omit<ClientOptions, "transport">): Middleware[] {
  if (options.retry !== undefined && options.backup !== undefined) {
    throw new ConfigError("CONFLICTING_OPTIONS", "createClient: set either retry or backup, not both (a backup request is already a retry)");
  }
  if (options.endpoints !== undefined && options.resolver !== undefined) {
    throw new ConfigError("CONFLICTING_OPTIONS", "createClient: set either endpoints or resolver, not both");
  }
  const source = options.resolver ?? options.endpoints;
  const chain: Middleware[] = [...(options.middleware ?? []), ...observabilityMiddleware(options), timeoutMiddleware()];
  if (options.retry !== undefined) chain.push(retryMiddleware(options.retry));
  if (options.backup !== undefined) chain.push(backupMiddleware(options.backup));
  if (options.breaker !== undefined) chain.push(breakerMiddleware("service", options.breaker));
  if (source !== undefined) chain.push(loadBalancerMiddleware(source, options.loadBalancer ?? new WeightedRoundRobin()));
  if (options.instanceBreaker !== undefined) chain.push(breakerMiddleware("instance", options.instanceBreaker));
  return chain;
}

/**
 * The end of a client chain: hands the call to the transport. Errors come out as RpcErrors, a
 * business error as a BizError even from a transport that only knows `rpc-status`, and an
 * aborted call as its signal's reason.
 */
function transportHandler(transport: ClientTransport): Handler {
  return async (req) => {
    const ctx = req.ctx;
    const signal = ctx.cancellation;
    if (signal.aborted) throw abortError(signal);
    try {
      return await transport.unary({
        service: req.service.typeName,
        method: req.method,
        message: req.message,
        headers: req.headers,
        deadline: ctx.deadline,
        signal,
        endpoint: ctx.endpoint,
      });
    } catch (e) {
      if (!(e instanceof RpcError)) throw signal.aborted ? abortError(signal) : RpcError.from(e);
      const biz = !(e instanceof BizError) && e.headers[HeaderKeys.bizStatus] !== undefined;
      throw biz ? (statusFromHeaders(e.headers) ?? e) : e;
    }
  };
}

/**
 * Creates a typed client of `service` over `options.transport`: one async method per RPC of the
 * descriptor, under the key of `service.methods` (`client.getFeed(req, callOptions)`). The
 * request may be a full message or a Partial one (completed with the codec's `create`). Unary
 * methods only for now; a streaming method rejects with UNIMPLEMENTED.
 */
export function createClient<S extends ServiceDescriptor>(service: S, options: ClientOptions): Client<S> {
  const chain = compose(clientMiddleware(options), transportHandler(options.transport));
  const inherit = options.inheritContext !== false;
  const defaults = options.headers ?? {};

  async function invoke(method: MethodDescriptor, request: object | undefined, opts: CallOptions): Promise<unknown> {
    const parent = opts.parent === undefined ? (inherit ? currentContext() : undefined) : (opts.parent ?? undefined);
    const metainfo = new Metainfo();
    if (parent !== undefined) metainfo.copyFrom(parent.metainfo, "persistent");
    if (opts.metainfo !== undefined) metainfo.copyFrom(opts.metainfo, "transient").copyFrom(opts.metainfo, "persistent");
    const headers: Headers = { ...defaults, ...opts.headers };
    const region = opts.region ?? options.region;
    const consistency = opts.consistency ?? parent?.consistency ?? options.consistency;
    if (region !== undefined) headers[HeaderKeys.region] = region;
    if (consistency !== undefined) headers[HeaderKeys.consistency] = consistency;
    metainfo.writeHeaders(headers, "transient", "persistent");
    const ctx = new CallContext({
      side: "client",
      service,
      method,
      headers,
      metainfo,
      values: new ContextValues(parent?.values),
      deadline: earliest(deadlineAfter(opts.timeoutMs ?? options.timeoutMs), parent?.deadline),
      region,
      consistency,
    });
    ctx.follow(opts.signal);
    ctx.follow(parent?.cancellation);
    const received = (h: Headers): void => {
      opts.metainfo?.readHeaders(h, "backward");
      opts.onHeaders?.(h);
    };
    try {
      const res = await chain({ service, method, message: method.input.create(request), headers, ctx });
      received(res.headers);
      return res.message;
    } catch (e) {
      const err = RpcError.from(e);
      received(err.headers);
      throw err;
    } finally {
      ctx.dispose();
    }
  }

  const client: Record<string, (request?: object, opts?: CallOptions) => Promise<unknown>> = {};
  for (const [key, method] of Object.entries(service.methods)) {
    client[key] =
      method.kind === "unary"
        ? (request, opts = {}) => invoke(method, request, opts)
        : () =>
            Promise.reject(
              new RpcError(
                Code.UNIMPLEMENTED,
                `${service.typeName}.${method.name} is a ${method.kind} method: streaming arrives with the streaming transports; only unary calls are supported yet`,
              ),
            );
  }
  return client as Client<S>;
}
