import { CallContext, ContextValues } from "../rpc/context.js";
import { sleep } from "../rpc/deadline.js";
import type { ServiceDescriptor } from "../rpc/descriptors.js";
import { Code, RpcError } from "../rpc/errors.js";
import { CircuitOpenError } from "../rpc/governance/breaker.js";
import type { Resolver } from "../rpc/governance/loadbalance.js";
import type { Handler, Middleware, RpcRequest, RpcResponse } from "../rpc/middleware.js";
import type { Server } from "../rpc/server.js";
import { copyHeaders, HeaderKeys, type Endpoint } from "../rpc/transport.js";
import type { PrimaryInfo, Registration, Registry, ServiceSnapshot } from "./client.js";
import { decideRoute, hasSideEffects, registryResolver, routeKey, syncedView, type ResolverOptions } from "./resolver.js";
import { WRITE_ID_HEADER, WRITE_OUTCOME_HEADER, admittedPrimaryKey } from "./fenced.js";
import { newWriteId, quote } from "./store.js";

/**
 * Response header of a new primary that is waiting out its predecessor's lease: the ms left
 * before it accepts writes. Clients wait that long and send again, instead of counting the
 * region as down.
 */
export const PRIMARY_IN_HEADER = "x-primary-in-ms";

/**
 * Response header of a call fencingMiddleware refused at the door ("1"): its handler never ran,
 * so a client may send a refused write again to the new primary. A write refused later, by the
 * store's fence inside the handler, lacks it: the handler may have done other things first.
 */
export const NOT_ADMITTED_HEADER = "x-not-admitted";

/** Options of consistencyMiddleware (give it the same `transport` as registryResolver). */
export interface ConsistencyOptions extends ResolverOptions {
  /** Share of a read's remaining budget the primary may use before the read falls back. Default 0.5. */
  readonly primaryShare?: number;
  /** After a failure reaching the primary region, how long it counts as down, ms. Default 1000. */
  readonly downForMs?: number;
  /**
   * While the primary region counts as down, linearizable reads (served locally meanwhile) are
   * also sent to it in the background, one at a time and at most one per this many ms; the
   * first answer ends the down period at once. Default 100; 0 turns the probes off (routing then
   * tries the primary again only after `downForMs`).
   */
  readonly probeIntervalMs?: number;
}

/** The wait a new primary announced (`x-primary-in-ms`), when the error is that answer. */
function handoverWait(e: unknown): number | undefined {
  if (!(e instanceof RpcError) || e.code !== Code.UNAVAILABLE) return undefined;
  const raw = e.headers[PRIMARY_IN_HEADER];
  const ms = raw === undefined ? NaN : Number(raw);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** A write fencingMiddleware refused at the door because the primary moved: its handler never ran. */
function refusedAtTheDoor(e: unknown): boolean {
  return e instanceof RpcError && e.code === Code.FAILED_PRECONDITION && e.headers[NOT_ADMITTED_HEADER] === "1";
}

/** How many instances of each region a view holds, for messages: "2 in fra, 1 in sg". */
function instanceCounts(view: ServiceSnapshot, transport: string | undefined): string {
  const counts = new Map<string, number>();
  for (const e of view.endpoints(undefined, transport)) counts.set(e.region ?? "?", (counts.get(e.region ?? "?") ?? 0) + 1);
  return counts.size === 0 ? "none registered anywhere" : [...counts].map(([region, n]) => `${n} in ${region}`).join(", ");
}

/** A failure that says "could not reach it in time", as opposed to an answer. */
function unreachable(e: unknown, ctx: CallContext): boolean {
  if (e instanceof CircuitOpenError) return true;
  if (!(e instanceof RpcError)) return false;
  // The call's own deadline passing counts (the region did not answer in time); the caller
  // cancelling it does not.
  if (e.code === Code.DEADLINE_EXCEEDED) return true;
  return !ctx.signal.aborted && e.code === Code.UNAVAILABLE;
}

/**
 * Consistency routing (client middleware; put it in createClient's `middleware` and the
 * registryResolver as its `resolver`, or use `routingOptions`):
 *
 * - writes (methods with side effects) go to the primary region's instances only, with the
 *   primary epoch in `x-primary-epoch`; when the primary region or the registry cannot be
 *   reached they fail fast with UNAVAILABLE (`notSent`), never elsewhere;
 * - linearizable reads go to the primary region; when it cannot be reached within
 *   `primaryShare` of the call's budget (or is known down, or the registry is unreachable) they
 *   fall back to the caller's region, sent as eventual, and the response says so:
 *   `x-served-region`, and `x-stale-ms` ("unknown" unless the server knew a bound);
 * - eventual reads go to the caller's region when it has instances, elsewhere when not.
 *
 * A failed attempt marks the primary region down for `downForMs`; the next call after that
 * tries it again, so routing recovers by itself when the region comes back. Meanwhile the
 * primary is probed in the background (`probeIntervalMs`) with reads, which have no side effects
 * (a copy of a read that fell back, or, for a client that only writes, an empty request to the
 * service's first NO_SIDE_EFFECTS method): an answer ends the down period at once, a failed probe
 * extends it, so a write-only client does not pay a full call timeout each time it lapses.
 *
 * Handover: a new primary that is waiting out its predecessor's lease answers UNAVAILABLE with
 * `x-primary-in-ms`; writes wait that long and are sent again (within their deadline), and
 * linearizable reads fall back meanwhile, without marking the region down. A write that
 * fencingMiddleware refused at the door because the primary moved (`x-not-admitted`: its handler
 * never ran) is sent again to the new primary; one refused by the store's fence inside the
 * handler is not (the handler may have done other things first): its caller gets FAILED_PRECONDITION.
 *
 * Every write carries `x-write-id` (generated unless the caller set it): fencedKv uses it as the
 * id of the handler's first store write, so a write that times out after it was sent fails with
 * a message naming the id to settle it by (`store.resolveWrite(id)`), and the same header.
 */
export function consistencyMiddleware(registry: Registry, options: ConsistencyOptions = {}): Middleware {
  const transport = options.transport;
  const share = options.primaryShare ?? 0.5;
  const downForMs = options.downForMs ?? 1000;
  const downUntil = new Map<string, number>();
  /** Regions with a background probe out. */
  const probing = new Set<string>();
  // A region stays down while a background probe of it is out: it has not answered yet.
  const isDown = (service: string, region: string) => {
    const key = `${service}\u0000${region}`;
    return (downUntil.get(key) ?? 0) > Date.now() || probing.has(key);
  };
  const markDown = (service: string, region: string) => downUntil.set(`${service}\u0000${region}`, Date.now() + downForMs);
  const markUp = (service: string, region: string) => downUntil.delete(`${service}\u0000${region}`);
  const probeIntervalMs = options.probeIntervalMs ?? 100;
  const lastProbe = new Map<string, number>();

  /**
   * Sends a read to the primary on its own context: a copy of `req` when it is a read, else an
   * empty request to the service's first method without side effects (none: no probe). An
   * answer (any but "could not reach it") marks the primary up; a failure to reach it extends
   * the down period.
   */
  const probe = (next: Handler, req: RpcRequest, primary: PrimaryInfo): void => {
    const service = req.service.typeName;
    const key = `${service}\u0000${primary.region}`;
    const now = Date.now();
    if (probeIntervalMs <= 0 || probing.has(key) || now - (lastProbe.get(key) ?? 0) < probeIntervalMs) return;
    const method = hasSideEffects(req.method) ? Object.values(req.service.methods).find((m) => !hasSideEffects(m) && m.kind === "unary") : req.method;
    if (method === undefined) return;
    probing.add(key);
    lastProbe.set(key, now);
    const ctx = req.ctx;
    const copy = method === req.method;
    const headers: Record<string, string> = {
      ...(copy ? req.headers : {}),
      [HeaderKeys.consistency]: "linearizable",
      [HeaderKeys.epoch]: String(primary.epoch),
    };
    delete headers[WRITE_ID_HEADER];
    const probeCtx = new CallContext({
      side: "client",
      service: ctx.service,
      method,
      headers,
      metainfo: ctx.metainfo,
      values: new ContextValues(ctx.values).set(routeKey, { region: primary.region }),
      deadline: now + Math.max(1, Math.floor((ctx.timeLeft(now) ?? downForMs) * share)),
      region: ctx.region,
      consistency: "linearizable",
    });
    const message = copy ? req.message : method.input.create();
    next({ service: req.service, method, message, headers, ctx: probeCtx }).then(
      () => markUp(service, primary.region),
      (e: unknown) => {
        if (unreachable(e, probeCtx) && handoverWait(e) === undefined) markDown(service, primary.region);
        else markUp(service, primary.region);
        if (e instanceof RpcError && e.code === Code.FAILED_PRECONDITION) void registry.primary(service).catch(() => undefined);
      },
    ).finally(() => {
      probing.delete(key);
      probeCtx.dispose();
    });
  };

  return (next) => async (req) => {
    const ctx = req.ctx;
    const service = req.service.typeName;
    const synced = syncedView(registry, service);
    const cache = synced instanceof Promise ? await synced : synced;
    const local = ctx.region ?? registry.region;
    const route = decideRoute(cache, req.method, ctx, local, transport);
    const primary = route.primary;
    if (primary === undefined) {
      ctx.values.set(routeKey, route);
      return next(req);
    }
    const registryDown = !registry.health().reachable;
    const primaryDown = isDown(service, primary.region);

    if (hasSideEffects(req.method)) return write(next, req, cache, primary, registryDown, primaryDown);

    // A linearizable read.
    const primaryEmpty = cache.endpoints(primary.region, transport).length === 0;
    if (primaryEmpty && cache.endpoints(local, transport).length === 0) {
      throw new RpcError(Code.UNAVAILABLE, `no instance of ${service} in the primary region ${primary.region} (${instanceCounts(cache, transport)})`, { notSent: true });
    }
    if (!registryDown && !primaryDown && !primaryEmpty) {
      if (primary.region === local || cache.endpoints(local, transport).length === 0) {
        req.headers[HeaderKeys.epoch] = String(primary.epoch);
        ctx.values.set(routeKey, route);
        if (cache.endpoints(local, transport).length === 0) return next(req);
        const attempt = ctx.fork(ctx.attempt);
        try {
          return await next({ ...req, ctx: attempt });
        } catch (e) {
          // This region becomes the primary in a moment: serve the read from its data meanwhile.
          if (handoverWait(e) === undefined) throw e;
        } finally {
          attempt.dispose();
        }
        return fallbackRead(next, req, cache, local, transport);
      }
      const attempt = ctx.fork(ctx.attempt);
      const left = ctx.timeLeft();
      if (left !== undefined) attempt.expireAt(Date.now() + Math.max(1, Math.floor(left * share)));
      req.headers[HeaderKeys.epoch] = String(primary.epoch);
      ctx.values.set(routeKey, route);
      try {
        const res = await next({ ...req, ctx: attempt });
        markUp(service, primary.region);
        return res;
      } catch (e) {
        const failed = unreachable(e, ctx);
        const fenced = e instanceof RpcError && e.code === Code.FAILED_PRECONDITION;
        if (!failed && !fenced) throw e;
        // A primary taking over answers when it will accept: fall back meanwhile, it is not down.
        if (failed && handoverWait(e) === undefined) markDown(service, primary.region);
        if (fenced) void registry.primary(service).catch(() => undefined);
      } finally {
        attempt.dispose();
      }
    } else if (!registryDown && primary.region !== local && cache.endpoints(local, transport).length > 0) {
      probe(next, req, primary);
    }
    return fallbackRead(next, req, cache, local, transport);
  };

  /**
   * A write: to the primary region only, or UNAVAILABLE at once when it (or the registry) is
   * known down. Waits out a handover and follows a move (see above), within the call's deadline.
   */
  async function write(next: Handler, req: RpcRequest, cache: ServiceSnapshot, first: PrimaryInfo, registryDown: boolean, primaryDown: boolean): Promise<RpcResponse> {
    const ctx = req.ctx;
    const service = req.service.typeName;
    if (registryDown) {
      throw new RpcError(
        Code.UNAVAILABLE,
        `${service}: the registry cannot be reached from ${registry.region}, so the primary region is unknown; writes fail fast until it is back`,
        { notSent: true },
      );
    }
    const writeId = (req.headers[WRITE_ID_HEADER] ??= newWriteId());
    let primary = first;
    let down = primaryDown;
    for (let attempt = 0; ; attempt++) {
      if (down) {
        // Keep learning whether it is back, so this client does not wait for `downForMs` to lapse.
        probe(next, req, primary);
        throw new RpcError(Code.UNAVAILABLE, `${service}: the primary region ${primary.region} cannot be reached; writes fail fast until it answers again`, {
          notSent: true,
        });
      }
      if (cache.endpoints(primary.region, transport).length === 0) {
        throw new RpcError(Code.UNAVAILABLE, `no instance of ${service} in the primary region ${primary.region} (${instanceCounts(cache, transport)})`, { notSent: true });
      }
      req.headers[HeaderKeys.epoch] = String(primary.epoch);
      const attemptCtx = ctx.fork(ctx.attempt);
      attemptCtx.values.set(routeKey, { region: primary.region });
      try {
        const res = await next({ ...req, ctx: attemptCtx });
        markUp(service, primary.region);
        return res;
      } catch (e) {
        const wait = handoverWait(e);
        const left = ctx.timeLeft();
        if (wait !== undefined && attempt < 5 && (left === undefined || wait + 50 < left)) {
          // The new primary accepts once its predecessor's lease has passed: send it then.
          await sleep(wait + 10, ctx.cancellation);
          continue;
        }
        if (refusedAtTheDoor(e) && attempt < 5) {
          // Refused before the handler ran: the primary moved. Follow it once the registry says where.
          const current = await registry.primary(service).catch(() => undefined);
          if (current !== undefined && current.epoch > primary.epoch) {
            primary = current;
            down = isDown(service, primary.region);
            continue;
          }
        }
        if (e instanceof RpcError && e.code === Code.FAILED_PRECONDITION) void registry.primary(service).catch(() => undefined);
        if (unreachable(e, ctx) && wait === undefined) markDown(service, primary.region);
        throw outcomeUnknown(e, service, req.method.name, primary.region, writeId);
      } finally {
        attemptCtx.dispose();
      }
    }
  }
}

/**
 * A write that failed by timing out (or losing its connection) after it was sent: its outcome
 * is unknown, and the error says so and how to settle it. Errors that prove nothing was sent
 * stay as they are.
 */
function outcomeUnknown(e: unknown, service: string, method: string, region: string, writeId: string): unknown {
  if (!(e instanceof RpcError) || e.notSent || e.headers[WRITE_OUTCOME_HEADER] !== undefined) return e;
  if (e.code !== Code.DEADLINE_EXCEEDED && e.code !== Code.UNAVAILABLE) return e;
  return new RpcError(
    e.code,
    `${service}/${method}: write ${writeId} ${e.code === Code.DEADLINE_EXCEEDED ? "timed out" : "lost its connection"} after it was sent to ${region}; its outcome is unknown: settle it with store.resolveWrite("${writeId}") ` +
      `(applied or not, for good), or send it again with the same x-write-id (${e.message})`,
    { headers: { ...e.headers, [WRITE_ID_HEADER]: writeId, [WRITE_OUTCOME_HEADER]: "unknown" }, cause: e },
  );
}

/** Serves a linearizable read from the caller's region, as an eventual read, saying so. */
async function fallbackRead(next: Handler, req: RpcRequest, view: ServiceSnapshot, local: string, transport: string | undefined): Promise<RpcResponse> {
  if (view.endpoints(local, transport).length === 0) {
    throw new RpcError(Code.UNAVAILABLE, `${req.service.typeName}: the primary region cannot be reached and ${local} has no instance to fall back to`, {
      notSent: true,
    });
  }
  delete req.headers[HeaderKeys.epoch];
  req.headers[HeaderKeys.consistency] = "eventual";
  req.ctx.values.set(routeKey, { region: local });
  const res = await next(req);
  const headers = copyHeaders(res.headers);
  headers[HeaderKeys.servedRegion] ??= local;
  headers[HeaderKeys.staleness] ??= "unknown";
  return { message: res.message, headers };
}

/**
 * Options for createClient that route through the registry:
 * `{ ...routingOptions(registry, { transport: "tcp" }), transport: new TcpClientTransport() }`.
 * `options.transport` (the kind) restricts routing to instances registered with that transport.
 */
export function routingOptions(registry: Registry, options: ConsistencyOptions & { middleware?: readonly Middleware[] } = {}): {
  resolver: Resolver;
  middleware: Middleware[];
  region: string;
} {
  return {
    resolver: registryResolver(registry, options),
    middleware: [...(options.middleware ?? []), consistencyMiddleware(registry, options)],
    region: registry.region,
  };
}

/** Options of fencingMiddleware. */
export interface FencingOptions {
  /** This server's region; default the registry client's. */
  readonly region?: string;
  /**
   * How stale this server's data may be, in ms, when it serves an eventual read (a fallback read
   * is one): the read reflects every write the primary acknowledged at least that long before
   * the server began serving it. Sent as `x-stale-ms`; return undefined when no bound is known
   * (the client then reports "unknown"). ReplicaClock keeps such a bound for a replica.
   */
  readonly staleness?: (req: RpcRequest) => number | undefined;
}

/**
 * Server-side fencing: a call with side effects, or a linearizable read, is served only by the
 * current primary of its service, and only while that primary holds its lease:
 *
 * - the registry says this region is the primary (else FAILED_PRECONDITION, with the primary);
 * - the request's `x-primary-epoch`, when present, is the current epoch (else FAILED_PRECONDITION:
 *   the caller routed under an old primary);
 * - the role was confirmed by a linearizable read less than `leaseMs` ago, and a newly moved
 *   primary waits the old primary's lease after it learned of the move, so the old one has
 *   stopped (else UNAVAILABLE).
 *
 * So two regions never both admit writes, whatever the network does. The check is made when the
 * call arrives; for the write itself, a handler uses fencedKv(registry, ctx) (or, for its own
 * database, fencingToken(ctx)): the primary it was admitted under travels with the write and the
 * store applies it only while that primary is still current, in the same atomic step, so a
 * primary that paused after admitting a call cannot write after its successor. Services without
 * a primary record are not fenced. Eventual reads pass through, with `x-stale-ms` when the
 * `staleness` option knows a bound.
 */
export function fencingMiddleware(registry: Registry, options: FencingOptions = {}): Middleware {
  const region = options.region ?? registry.region;
  const staleness = options.staleness;
  return (next) => async (req) => {
    const ctx = req.ctx;
    if (!hasSideEffects(req.method) && ctx.consistency !== "linearizable") {
      // Measured before the handler reads: its data is at least this fresh.
      const bound = staleness?.(req);
      if (bound !== undefined && Number.isFinite(bound)) ctx.responseHeaders[HeaderKeys.staleness] = String(Math.max(0, Math.ceil(bound)));
      return next(req);
    }
    const service = req.service.typeName;
    const synced = syncedView(registry, service);
    const cache = synced instanceof Promise ? await synced : synced;
    let primary = cache.primary;
    if (primary === undefined) return next(req);
    const asked = req.headers[HeaderKeys.epoch];
    if (asked !== undefined && Number(asked) > primary.epoch) {
      // The caller knows a newer epoch than this cache: look again before judging.
      primary = (await registry.primary(service).catch(() => primary)) ?? primary;
    }
    // Every refusal below happens before the handler: nothing was applied, and the client may say so.
    const refuse = (code: Code, message: string, headers: Record<string, string> = {}): RpcError => {
      if (hasSideEffects(req.method)) headers[WRITE_OUTCOME_HEADER] = "not-applied";
      headers[NOT_ADMITTED_HEADER] = "1";
      Object.assign(ctx.responseHeaders, headers);
      return new RpcError(code, message, { headers });
    };
    if (primary.region !== region) {
      throw refuse(Code.FAILED_PRECONDITION, `${service}: ${region} is not the primary region (${primary.region} is, epoch ${primary.epoch})`, {
        [HeaderKeys.epoch]: String(primary.epoch),
      });
    }
    if (asked !== undefined && Number(asked) !== primary.epoch) {
      throw refuse(Code.FAILED_PRECONDITION, `${service}: stale primary epoch ${quote(asked)}, the current one is ${primary.epoch}`, {
        [HeaderKeys.epoch]: String(primary.epoch),
      });
    }
    let now = Date.now();
    if (now - cache.primaryConfirmedAt >= primary.leaseMs) {
      // Not confirmed lately (first call, or the probe is failing): confirm now, once.
      const confirmed = await registry.primary(service).catch(() => undefined);
      now = Date.now();
      if (confirmed && (confirmed.region !== region || confirmed.epoch !== primary.epoch)) {
        throw refuse(Code.FAILED_PRECONDITION, `${service}: the primary moved to ${confirmed.region} (epoch ${confirmed.epoch})`, {
          [HeaderKeys.epoch]: String(confirmed.epoch),
        });
      }
    }
    if (now - cache.primaryConfirmedAt >= primary.leaseMs) {
      const since = cache.primaryConfirmedAt === 0 ? "never confirmed" : `last confirmed ${now - cache.primaryConfirmedAt} ms ago`;
      throw refuse(Code.UNAVAILABLE, `${service}: ${region} cannot confirm it is still the primary (registry unreachable, ${since})`);
    }
    // The old primary's last confirmation came before the move took effect, and this cache
    // learned of the move after that: once its lease has passed since then, it has stopped.
    const startAt =
      primary.previousLeaseMs === undefined ? primary.since + primary.leaseMs : cache.primaryLearnedAt + primary.previousLeaseMs;
    if (now < startAt) {
      throw refuse(Code.UNAVAILABLE, `${service}: ${region} becomes the primary in ${startAt - now} ms (the previous primary's lease)`, {
        [PRIMARY_IN_HEADER]: String(startAt - now),
      });
    }
    ctx.responseHeaders[HeaderKeys.epoch] = String(primary.epoch);
    // What the handler's fenced writes carry: the store refuses them once the record moves on.
    ctx.values.set(admittedPrimaryKey, { service, region, epoch: primary.epoch, fence: { key: cache.primaryKey, modRevision: primary.revision } });
    return next(req);
  };
}

/** Options of listenAndRegister. */
export interface RegisterServerOptions {
  /** The services this server serves (registered once each). */
  readonly services: readonly ServiceDescriptor[];
  /** The transport's name, for clients picking a transport (`tcp`). */
  readonly transport: string;
  /** The address clients should use; default the one the server bound. */
  readonly advertise?: string;
  readonly weight?: number;
  readonly tags?: Readonly<Record<string, string>>;
  /** The instance's region; default the registry's. */
  readonly region?: string;
}

/** A server registered in the registry. */
export interface RegisteredServer {
  readonly address: string;
  readonly registrations: readonly Registration[];
  /** Deregisters first (clients stop choosing it), then closes the server gracefully. */
  close(options?: { graceMs?: number }): Promise<void>;
}

/**
 * Starts `server` and registers each of its services under a lease; `close` deregisters, then
 * shuts the server down gracefully. (Until createServer offers listen/close hooks, this wraps
 * the two calls.)
 */
export async function listenAndRegister(server: Server, registry: Registry, options: RegisterServerOptions): Promise<RegisteredServer> {
  const { address } = await server.listen();
  const advertised = options.advertise ?? address;
  const registrations: Registration[] = [];
  try {
    for (const service of options.services) {
      registrations.push(
        await registry.register({
          service: service.typeName,
          address: advertised,
          transport: options.transport,
          ...(options.weight === undefined ? {} : { weight: options.weight }),
          ...(options.tags === undefined ? {} : { tags: options.tags }),
          ...(options.region === undefined ? {} : { region: options.region }),
        }),
      );
    }
  } catch (e) {
    await Promise.all(registrations.map((r) => r.deregister().catch(() => undefined)));
    await server.close({ graceMs: 0 });
    throw e;
  }
  return {
    address: advertised,
    registrations,
    async close(closeOptions = {}) {
      await Promise.all(registrations.map((r) => r.deregister().catch(() => undefined)));
      await server.close(closeOptions);
    },
  };
}
