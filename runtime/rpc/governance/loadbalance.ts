import { createContextKey, type CallContext, type ContextKey } from "../context.js";
import { raceSignal } from "../deadline.js";
import { Code, RpcError } from "../errors.js";
import { directMiddleware, mapNext, settle, type DirectAnswer, type DirectMiddleware } from "../direct.js";
import type { RpcRequest } from "../middleware.js";
import { HeaderKeys, type Endpoint, type EndpointHealth, type Headers } from "../transport.js";

/**
 * Finds the instances of a service (the registry client implements it). Return the same array
 * while the set is unchanged: load balancers keep their state per array and rebuild it only
 * when the content changes.
 */
export interface Resolver {
  resolve(service: string, ctx: CallContext): readonly Endpoint[] | Promise<readonly Endpoint[]>;
}

/** Picks one instance of a service for a call. */
export interface LoadBalancer {
  /** One of `endpoints` (never empty), or undefined to fail the call with UNAVAILABLE. */
  pick(endpoints: readonly Endpoint[], req: RpcRequest): Endpoint | undefined;
  /**
   * Optional: a call goes to `endpoint` now; the function returned is called once when it is
   * over, with its response headers (or its error's). For balancers that follow load.
   */
  track?(endpoint: Endpoint): (headers: Headers | undefined) => void;
}

/** An endpoint's weight: its `weight`, 1 when unset; 0 or less takes it out of rotation. */
function weightOf(e: Endpoint): number {
  return e.weight ?? 1;
}

/** A string that changes whenever the addresses or weights of a list change. */
function signature(endpoints: readonly Endpoint[]): string {
  let s = "";
  for (const e of endpoints) s += `${e.address}\u0000${weightOf(e)}\u0001`;
  return s;
}

/**
 * Keeps a balancer's state for the current endpoint list: rebuilt only when the list's content
 * changes, not when a resolver returns an equal list in a new array.
 */
class PerList<S> {
  private list: readonly Endpoint[] | undefined;
  private sig = "";
  private state: S | undefined;

  constructor(private readonly build: (endpoints: readonly Endpoint[]) => S) {}

  for(endpoints: readonly Endpoint[]): S {
    if (endpoints !== this.list || this.state === undefined) {
      const sig = signature(endpoints);
      if (sig !== this.sig || this.state === undefined) {
        this.state = this.build(endpoints);
        this.sig = sig;
      }
      this.list = endpoints;
    }
    return this.state;
  }
}

/**
 * Smooth weighted round robin (nginx's): each pick adds every instance's weight to its current
 * score, takes the highest, and lowers it by the total. Over any run of `total weight` picks each
 * instance gets exactly its share, spread out rather than in bursts.
 */
export class WeightedRoundRobin implements LoadBalancer {
  private readonly state = new PerList((endpoints) => ({
    endpoints: endpoints.filter((e) => weightOf(e) > 0),
    current: new Float64Array(endpoints.length),
  }));

  pick(endpoints: readonly Endpoint[]): Endpoint | undefined {
    const { endpoints: live, current } = this.state.for(endpoints);
    let total = 0;
    let best = -1;
    for (let i = 0; i < live.length; i++) {
      const w = weightOf(live[i] as Endpoint);
      total += w;
      current[i] = (current[i] as number) + w;
      if (best < 0 || (current[i] as number) > (current[best] as number)) best = i;
    }
    if (best < 0) return undefined;
    current[best] = (current[best] as number) - total;
    return live[best];
  }
}

/** Options of the {@link LeastLoaded} balancer. */
export interface LeastLoadedOptions {
  /** How fast an instance's overload penalty fades: it halves every this many ms. Default 1000. */
  penaltyHalfLifeMs?: number;
  /** Random numbers in [0, 1), for tests. Default Math.random. */
  random?: () => number;
}

/** What the least-loaded balancer knows of one instance. */
interface Load {
  inflight: number;
  penalty: number;
  penaltyAt: number;
}

/**
 * Power of two choices on load (Mitzenmacher; Finagle's and Envoy's least-request balancer):
 * picks two instances at random and sends the call to the less loaded, where load is this
 * client's calls in flight to it plus a penalty for overload answers: a call refused with a
 * queue-delay hint (`x-queue-delay-ms`, a shed or expired call) adds 1 plus the hint in tens of
 * ms, fading by half every `penaltyHalfLifeMs`. So a slow or overloaded instance gets fewer
 * calls at once, and an instance with spare capacity takes over, without every client herding
 * to the same least-loaded one. Weights are honoured only as on/off (0 leaves an instance out).
 */
export class LeastLoaded implements LoadBalancer {
  private readonly loads = new Map<string, Load>();
  private readonly halfLife: number;
  private readonly random: () => number;
  private readonly state = new PerList((endpoints) => endpoints.filter((e) => weightOf(e) > 0));

  constructor(options: LeastLoadedOptions = {}) {
    this.halfLife = options.penaltyHalfLifeMs ?? 1000;
    this.random = options.random ?? Math.random;
  }

  pick(endpoints: readonly Endpoint[]): Endpoint | undefined {
    const live = this.state.for(endpoints);
    const n = live.length;
    if (n <= 1) return live[0];
    const i = Math.floor(this.random() * n);
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++;
    const a = live[i] as Endpoint;
    const b = live[j] as Endpoint;
    const now = Date.now();
    return this.score(a.address, now) <= this.score(b.address, now) ? a : b;
  }

  track(endpoint: Endpoint): (headers: Headers | undefined) => void {
    const load = this.loadOf(endpoint.address);
    load.inflight++;
    return (headers) => {
      load.inflight--;
      const hint = headers?.[HeaderKeys.queueDelay];
      if (hint === undefined) return;
      const now = Date.now();
      load.penalty = this.faded(load, now) + 1 + Math.max(0, Number(hint) || 0) / 10;
      load.penaltyAt = now;
    };
  }

  /** This instance's load now: calls in flight plus its fading penalty. */
  score(address: string, now = Date.now()): number {
    const load = this.loads.get(address);
    return load === undefined ? 0 : load.inflight + this.faded(load, now);
  }

  private faded(load: Load, now: number): number {
    return load.penalty === 0 ? 0 : load.penalty * 2 ** (-(now - load.penaltyAt) / this.halfLife);
  }

  private loadOf(address: string): Load {
    let load = this.loads.get(address);
    if (load === undefined) {
      // Bounded by the instances ever called; drop the idle ones when it grows past a resolver's churn.
      if (this.loads.size >= 4096) for (const [k, v] of this.loads) if (v.inflight === 0) this.loads.delete(k);
      load = { inflight: 0, penalty: 0, penaltyAt: 0 };
      this.loads.set(address, load);
    }
    return load;
  }
}

/** Where a consistent-hash balancer reads a call's key. */
export type HashKeySource = ContextKey<string | undefined> | { readonly header: string };

/** Options of the consistent-hash balancer. */
export interface ConsistentHashOptions {
  /** The call's key: a context key's value, or a request header. */
  key: HashKeySource;
  /** Points on the ring per unit of weight. Default 160. */
  virtualNodes?: number;
}

/** 32-bit FNV-1a with murmur3's finalizer, for an even spread of similar strings. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Consistent hashing on a key of the call (a user id, a shard key): the same key goes to the
 * same instance while it is there, and removing an instance moves only the keys it had. Each
 * instance has `virtualNodes * weight` points on a ring of 32-bit hashes. Calls without a key go
 * to a random instance.
 */
export class ConsistentHash implements LoadBalancer {
  private readonly virtualNodes: number;
  private readonly state = new PerList((endpoints) => this.ring(endpoints));

  constructor(private readonly options: ConsistentHashOptions) {
    this.virtualNodes = options.virtualNodes ?? 160;
  }

  pick(endpoints: readonly Endpoint[], req: RpcRequest): Endpoint | undefined {
    const { hashes, owners } = this.state.for(endpoints);
    if (hashes.length === 0) return undefined;
    const src = this.options.key;
    const key = "header" in src ? req.headers[src.header] : req.ctx.values.get(src);
    if (key === undefined) return owners[Math.floor(Math.random() * owners.length)];
    const h = hash32(key);
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((hashes[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    return owners[lo === hashes.length ? 0 : lo];
  }

  private ring(endpoints: readonly Endpoint[]): { hashes: Uint32Array; owners: Endpoint[] } {
    const points: { h: number; e: Endpoint }[] = [];
    for (const e of endpoints) {
      const n = Math.round(this.virtualNodes * weightOf(e));
      for (let i = 0; i < n; i++) points.push({ h: hash32(`${e.address}#${i}`), e });
    }
    points.sort((a, b) => a.h - b.h || (a.e.address < b.e.address ? -1 : 1));
    return { hashes: Uint32Array.from(points, (p) => p.h), owners: points.map((p) => p.e) };
  }
}

/** Where the client finds instances: a fixed list, or a resolver. */
export type EndpointSource = readonly Endpoint[] | Resolver;

/**
 * The addresses of the instances this call's attempts failed on (UNAVAILABLE, or an attempt's
 * own timeout), set by the retry middleware: load balancing picks another instance for the next
 * attempt while there is one.
 */
export const failedEndpoints = createContextKey<ReadonlySet<string> | undefined>(undefined, {
  description: "instances this call's attempts failed on",
});

/** Whether two endpoint lists hold the same endpoints in the same order. */
function sameEndpoints(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The endpoints calls may go to now: those the transport's health does not ask to avoid, or
 * all of them when it asks to avoid every one (the call then meets the transport's own answer:
 * a probe in flight, or a fast UNAVAILABLE). Cached per endpoint list and health version (and,
 * while an instance is avoided until a given time, that time), and the same array is handed on
 * while the same instances are usable, so balancers keep their state.
 */
class Usable {
  private list: readonly Endpoint[] | undefined;
  private version = 0;
  private recheckAt = Infinity;
  private result: readonly Endpoint[] = [];

  constructor(private readonly health: EndpointHealth) {}

  of(endpoints: readonly Endpoint[]): readonly Endpoint[] {
    const h = this.health;
    if (endpoints === this.list && h.version === this.version && (this.recheckAt === Infinity || Date.now() < this.recheckAt)) {
      return this.result;
    }
    this.list = endpoints;
    this.version = h.version;
    const now = Date.now();
    let recheck = Infinity;
    let kept: Endpoint[] | undefined;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i] as Endpoint;
      const until = h.avoidUntil(e.address, now);
      if (until > now) {
        kept ??= endpoints.slice(0, i);
        if (until < recheck) recheck = until;
      } else kept?.push(e);
    }
    this.recheckAt = recheck;
    const next = kept === undefined || kept.length === 0 ? endpoints : kept;
    if (!sameEndpoints(next, this.result)) this.result = next;
    return this.result;
  }
}

/**
 * Asks `balancer` again, up to once per other instance, for one not in `failed`; keeps the
 * first pick when it offers none (a consistent-hash key keeps its instance).
 */
function pickAvoiding(balancer: LoadBalancer, endpoints: readonly Endpoint[], req: RpcRequest, failed: ReadonlySet<string>): Endpoint | undefined {
  const first = balancer.pick(endpoints, req);
  if (first === undefined || !failed.has(first.address)) return first;
  for (let i = 1; i < endpoints.length; i++) {
    const again = balancer.pick(endpoints, req);
    if (again !== undefined && !failed.has(again.address)) return again;
  }
  return first;
}

/**
 * Load balancing (client side): resolves the service's instances, leaves out those the
 * transport's `health` says to avoid (going away, unreachable) while others remain, picks one
 * with `balancer` (a retry: one its earlier attempts have not failed on, see failedEndpoints), and
 * puts it on the call's context (`ctx.endpoint`, `ctx.peer`) for the instance breaker and the
 * transport. No instances fails the call with UNAVAILABLE, `notSent`.
 */
export function loadBalancerMiddleware(source: EndpointSource, balancer: LoadBalancer, health?: EndpointHealth): DirectMiddleware {
  const resolve = "resolve" in source ? (req: RpcRequest) => source.resolve(req.service.typeName, req.ctx) : () => source;
  const usable = health === undefined ? undefined : new Usable(health);
  return directMiddleware((next) => {
    /** Picks an instance among `found` and sends `req` there. Not a closure per call: the hot path allocates none. */
    const call = (found: readonly Endpoint[], req: RpcRequest): DirectAnswer => {
      const endpoints = usable === undefined || found.length === 0 ? found : usable.of(found);
      const failed = req.ctx.values.get(failedEndpoints);
      const picked =
        endpoints.length === 0 ? undefined : failed === undefined ? balancer.pick(endpoints, req) : pickAvoiding(balancer, endpoints, req, failed);
      if (picked === undefined) {
        throw new RpcError(Code.UNAVAILABLE, `no instance of ${req.service.typeName} to call: none is registered or all have weight 0`, {
          notSent: true,
        });
      }
      req.ctx.endpoint = picked;
      req.ctx.peer = picked.address;
      if (balancer.track === undefined) return next(req);
      const done = balancer.track(picked);
      return mapNext(
        next,
        req,
        (res) => {
          done(res.headers);
          return res;
        },
        (e: unknown) => {
          done(e instanceof RpcError ? e.headers : undefined);
          throw e;
        },
      );
    };
    return (req) => {
      const found = resolve(req);
      // A resolver that waits (a registry's first read) is not waited for past the call's end.
      return "then" in found ? raceSignal(found, req.ctx.cancellation, true).then((f) => settle(call(f, req))) : call(found, req);
    };
  });
}
