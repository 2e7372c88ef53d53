import { afterEach, describe, expect, it } from "vitest";
import { CallContext, ContextValues, Metainfo, type Consistency, type MethodDescriptor } from "meridian-rpc";
import {
  consistencyMiddleware,
  createEmbeddedStore,
  createRegistry,
  decideRoute,
  registryResolver,
  routeKey,
  type Registry,
  type Route,
} from "meridian-rpc/registry";
import { Accounts } from "./gen/accounts.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SERVICE = Accounts.typeName;
const write = Accounts.methods.deposit as MethodDescriptor;
const read = Accounts.methods.balance as MethodDescriptor;

function context(method: MethodDescriptor, consistency: Consistency | undefined, region = "eu"): CallContext {
  return new CallContext({
    side: "client",
    service: Accounts,
    method,
    headers: {},
    metainfo: new Metainfo(),
    values: new ContextValues(),
    region,
    consistency,
  });
}

/**
 * A Registry that is not the one createRegistry makes: every member delegates to `inner`. Routing
 * must work through the Registry interface alone.
 */
function delegating(inner: Registry): Registry {
  return {
    get region() {
      return inner.region;
    },
    get store() {
      return inner.store;
    },
    get kv() {
      return inner.kv;
    },
    register: (info) => inner.register(info),
    resolve: (service, options) => inner.resolve(service, options),
    view: (service) => inner.view(service),
    snapshot: (service) => inner.snapshot(service),
    subscribe: (service, listener) => inner.subscribe(service, listener),
    primary: (service) => inner.primary(service),
    ensurePrimary: (service, region) => inner.ensurePrimary(service, region),
    movePrimary: (service, region, options) => inner.movePrimary(service, region, options),
    health: () => inner.health(),
    ready: (options) => inner.ready(options),
    close: () => inner.close(),
  };
}

/** A registry with instances of Accounts in `us` (the primary) and `eu`, over `tcp` and `grpc`. */
async function populated(): Promise<Registry> {
  const store = await createEmbeddedStore();
  const registry = createRegistry({ store, region: "eu", healthIntervalMs: 100 });
  cleanups.push(() => registry.close());
  await registry.register({ service: SERVICE, region: "us", address: "127.0.0.1:1001", transport: "tcp" });
  await registry.register({ service: SERVICE, region: "eu", address: "127.0.0.1:1002", transport: "tcp" });
  await registry.register({ service: SERVICE, region: "eu", address: "127.0.0.1:1003", transport: "grpc" });
  await registry.ensurePrimary(SERVICE, "us");
  await registry.ready({ services: [SERVICE] });
  // The watch delivers the registrations after ready may have resolved: wait for all three.
  for (let i = 0; (await registry.view(SERVICE)).instances.length < 3 || (await registry.view(SERVICE)).primary === undefined; i++) {
    if (i > 500) throw new Error("the cache never saw the three instances and the primary");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return registry;
}

describe("registry resolver", () => {
  it("routing - decideRoute sends writes and linearizable reads to the primary, eventual reads to the caller's region", async () => {
    const registry = await populated();
    const view = registry.snapshot(SERVICE);
    const decide = (method: MethodDescriptor, consistency: Consistency | undefined, local = "eu", transport?: string) =>
      decideRoute(view, method, context(method, consistency, local), local, transport);
    expect(decide(write, undefined)).toMatchObject({ region: "us", primary: { region: "us" } });
    expect(decide(read, "linearizable")).toMatchObject({ region: "us", primary: { region: "us" } });
    expect(decide(read, "eventual")).toEqual({ region: "eu", primary: undefined });
    // No instance of the caller's region over that transport: any instance will do.
    expect(decide(read, "eventual", "ap")).toEqual({ region: undefined, primary: undefined });
    expect(decide(read, "eventual", "us", "grpc")).toEqual({ region: undefined, primary: undefined });
  });

  it("routing - the resolver follows the route the middleware recorded, else decides it the same way", async () => {
    const registry = delegating(await populated());
    const resolver = registryResolver(registry, { transport: "tcp" });
    const addresses = async (ctx: CallContext) => (await resolver.resolve(SERVICE, ctx)).map((e) => e.address);
    expect(await addresses(context(write, undefined))).toEqual(["127.0.0.1:1001"]);
    expect(await addresses(context(read, "eventual"))).toEqual(["127.0.0.1:1002"]);
    const recorded = context(write, undefined);
    recorded.values.set(routeKey, { region: "eu" } satisfies Route);
    expect(await addresses(recorded)).toEqual(["127.0.0.1:1002"]);
  });

  it("routing - consistencyMiddleware works over any Registry implementation, not only createRegistry's", async () => {
    const registry = delegating(await populated());
    const routes: (Route | undefined)[] = [];
    const chain = consistencyMiddleware(registry, { transport: "tcp" })(async (req) => {
      routes.push(req.ctx.values.get(routeKey));
      return { message: req.message, headers: {} };
    });
    const call = (method: MethodDescriptor, consistency: Consistency) => {
      const ctx = context(method, consistency);
      return chain({ service: Accounts, method, message: method.input.create(), headers: {}, ctx });
    };
    await call(read, "eventual");
    await call(write, "eventual");
    expect(routes.map((r) => r?.region)).toEqual(["eu", "us"]);
  });
});
