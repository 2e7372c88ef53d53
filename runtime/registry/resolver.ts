import { createContextKey, type CallContext } from "../rpc/context.js";
import type { MethodDescriptor } from "../rpc/descriptors.js";
import type { Resolver } from "../rpc/governance/loadbalance.js";
import type { PrimaryInfo, Registry, ServiceSnapshot } from "./client.js";

/** Where routing sent a call: one region's instances, or any instance (`region` undefined). */
export interface Route {
  readonly region: string | undefined;
}

/**
 * The route a call takes when nothing is down, as decideRoute decides it: `primary` is set
 * when the call must be served by the primary region (a write, or a linearizable read).
 */
export interface RouteDecision extends Route {
  readonly primary: PrimaryInfo | undefined;
}

/** The route of the current attempt, set by consistencyMiddleware and read by the resolver. */
export const routeKey = createContextKey<Route | undefined>(undefined, { description: "meridian registry route" });

/** Whether a method changes state: its idempotency level is not NO_SIDE_EFFECTS (routed to the primary). */
export function hasSideEffects(method: MethodDescriptor): boolean {
  return method.idempotency !== "NO_SIDE_EFFECTS";
}

/** Which registered instances a client may call. */
export interface ResolverOptions {
  /**
   * Only instances registered with this transport kind (`tcp`, `grpc`, `nats`: the `transport`
   * of InstanceInfo), normally the kind of the client's own transport. Default: any kind.
   */
  readonly transport?: string;
}

/**
 * The one place a route is decided: writes (methods with side effects) and linearizable reads
 * go to the service's primary region when it has one; eventual reads to the caller's region
 * (`local`) when it has instances of `transport`, else to any instance. consistencyMiddleware
 * starts from this decision and only departs from it when the primary cannot be reached
 * (fallback), recording where it sent the attempt in `routeKey`.
 */
export function decideRoute(view: ServiceSnapshot, method: MethodDescriptor, ctx: CallContext, local: string, transport: string | undefined): RouteDecision {
  const primary = view.primary;
  if (primary !== undefined && (hasSideEffects(method) || ctx.consistency === "linearizable")) return { region: primary.region, primary };
  return { region: view.endpoints(local, transport).length > 0 ? local : undefined, primary: undefined };
}

/**
 * The registry's view of `service`, synced: at once when the cache has synced (the common
 * case, no promise), else once its first sync is done.
 */
export function syncedView(registry: Registry, service: string): ServiceSnapshot | Promise<ServiceSnapshot> {
  const view = registry.snapshot(service);
  return view.revision > 0 ? view : registry.view(service);
}

/**
 * A Resolver for createClient over the registry: the instances of the route consistencyMiddleware
 * chose for the attempt, or, without that middleware, the route decideRoute gives (primary
 * region for writes and linearizable reads, the caller's region for eventual reads when it has
 * instances), of the client's transport kind when `options.transport` is set. Arrays are stable
 * while the instance set is unchanged, as load balancers want.
 */
export function registryResolver(registry: Registry, options: ResolverOptions = {}): Resolver {
  const transport = options.transport;
  const pick = (view: ServiceSnapshot, ctx: CallContext) => {
    const route = ctx.values.get(routeKey) ?? decideRoute(view, ctx.method, ctx, ctx.region ?? registry.region, transport);
    return view.endpoints(route.region, transport);
  };
  return {
    resolve(service: string, ctx: CallContext) {
      const view = syncedView(registry, service);
      return view instanceof Promise ? view.then((v) => pick(v, ctx)) : pick(view, ctx);
    },
  };
}
