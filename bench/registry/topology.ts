/**
 * Three regions on one machine for the registry benchmark, each with a registry client, an
 * Accounts server (fencing, and a replica clock for `x-stale-ms`) and a routed client, with
 * every link between two regions going through tools/linkproxy with the one-way latency asked:
 *
 * - embedded: one registry server (serveRegistry over TCP) in the first region (the primary's),
 *   or in the region `registryRegion` names (the demo's placement: eu-west); the other regions'
 *   registry clients reach it through links;
 * - etcd: a 3-member cluster (test/support/etcd-cluster.ts), one member per region, peer links
 *   delayed; each region's registry client talks to its own member directly.
 *
 * RPC calls from region i to a server in region j (i != j) go through a link of their own (the
 * registry stores each server's direct address; a region's client transport maps it to its
 * link), so a region can be cut off completely: `cut(i)` blackholes every link to and from it.
 */
import {
  createRegistry,
  type Registry,
  serveRegistry,
  createRemoteStore,
  fencingMiddleware,
  listenAndRegister,
  routingOptions,
  type RegisteredServer,
  ReplicaClock,
  type Store,
} from "meridian-rpc/registry";
import { createEtcdStore } from "meridian-rpc/registry/etcd";
import { createClient, type Client, createServer, type ClientTransport } from "meridian-rpc";
import { createLink, type Link } from "../../tools/linkproxy/index.js";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { Accounts } from "../../test/registry/gen/accounts.js";
import { freePort, startEtcdCluster, type EtcdCluster } from "../../test/support/etcd-cluster.js";

/** The regions, the first one holding the primary (and, for `embedded`, the registry server). */
export const REGIONS = ["us-east", "eu-west", "cn-north"] as const;

/** Which store the regions share. */
export type StoreKind = "embedded" | "etcd";

/** One region of the topology. */
export interface RegionNode {
  readonly name: string;
  readonly index: number;
  readonly registry: Registry;
  /** The region's Accounts server, registered with its direct address. */
  readonly server: RegisteredServer;
  /** The region's replica clock (synced by pulling from the primary; reported as `x-stale-ms`). */
  readonly clock: ReplicaClock;
  /** A client in this region routing through the registry (`timeoutMs` = the call timeout). */
  readonly client: Client<typeof Accounts>;
}

/** Options of startTopology. */
export interface TopologyOptions {
  readonly store: StoreKind;
  /** One-way latency of every link between two regions, ms. */
  readonly latencyMs: number;
  /** Timeout of the routed clients' calls, ms. */
  readonly callTimeoutMs: number;
  /** How often a replica pulls from the primary (and syncs its clock), ms. */
  readonly replicationIntervalMs?: number;
  /** embedded: the index of the region that runs the registry server. Default 0 (with the primary). */
  readonly registryRegion?: number;
}

/** Three connected regions; see the module comment. */
export interface Topology {
  readonly store: StoreKind;
  readonly regions: readonly RegionNode[];
  /** The etcd cluster (etcd only). */
  readonly cluster: EtcdCluster | undefined;
  /** Blackholes every link to and from region `i` (registry, etcd peers, RPC). */
  cut(i: number): void;
  /** Heals every link of region `i`. */
  heal(i: number): void;
  close(): Promise<void>;
}

/** A client transport that sends calls for another region's server through that link. */
function viaLinks(inner: ClientTransport, route: Map<string, string>): ClientTransport {
  return {
    unary(req) {
      const target = req.endpoint && route.get(req.endpoint.address);
      return inner.unary(target ? { ...req, endpoint: { ...req.endpoint!, address: target } } : req);
    },
    close: () => inner.close(),
  };
}

/** Starts the three regions and waits until every region sees every server and the primary. */
export async function startTopology(options: TopologyOptions): Promise<Topology> {
  const { latencyMs } = options;
  const closers: (() => Promise<void>)[] = [];
  /** Links touching each region (cut together). */
  const regionLinks: Link[][] = REGIONS.map(() => []);
  let cluster: EtcdCluster | undefined;
  const stores: Store[] = [];
  try {
    if (options.store === "etcd") {
      cluster = await startEtcdCluster({ names: [...REGIONS], latencyMs });
      const c = cluster;
      closers.push(() => c.stop());
      for (let i = 0; i < REGIONS.length; i++) stores.push(createEtcdStore({ hosts: c.clientUrls[i]!, timeoutMs: 1000 }));
    } else {
      const home = options.registryRegion ?? 0;
      const rs = await serveRegistry({ insecure: true, transport: new TcpServerTransport() });
      closers.push(() => rs.close());
      for (let i = 0; i < REGIONS.length; i++) {
        let address = rs.address;
        if (i !== home) {
          const link = await createLink({ target: rs.address, latencyMs });
          closers.push(() => link.close());
          // The registry lives in region `home`: the link is cut with either end's region.
          regionLinks[i]!.push(link);
          regionLinks[home]!.push(link);
          address = link.address;
        }
        stores.push(createRemoteStore({ transport: new TcpClientTransport({ connectTimeoutMs: 1000 }), address }));
      }
    }

    const registries = REGIONS.map((region, i) => createRegistry({ store: stores[i]!, region }));
    // Registries close their stores; closers run in reverse, so these run before the store's server.
    for (const r of registries) closers.push(() => r.close());

    // One Accounts server per region, on its own port.
    const ports = await Promise.all(REGIONS.map(() => freePort()));
    const direct = ports.map((p) => `127.0.0.1:${p}`);
    const clocks = REGIONS.map(() => new ReplicaClock());
    const servers: RegisteredServer[] = [];
    for (let i = 0; i < REGIONS.length; i++) {
      const balances = new Map<string, number>();
      const clock = clocks[i]!;
      const rpcServer = createServer({
        transport: new TcpServerTransport({ port: ports[i]! }),
        region: REGIONS[i]!,
        middleware: [fencingMiddleware(registries[i]!, { staleness: () => (i === 0 ? 0 : clock.staleMs()) })],
        metrics: false,
      }).register(Accounts, {
        deposit: (req) => {
          const balance = (balances.get(req.account) ?? 0) + req.amount;
          balances.set(req.account, balance);
          return { balance };
        },
        balance: (req) => ({ balance: balances.get(req.account) ?? 0 }),
      });
      const server = await listenAndRegister(rpcServer, registries[i]!, { services: [Accounts], transport: "tcp" });
      servers.push(server);
      closers.push(() => server.close({ graceMs: 100 }));
    }

    // Links for RPC calls between regions, one per ordered pair.
    const routes = REGIONS.map(() => new Map<string, string>());
    for (let from = 0; from < REGIONS.length; from++) {
      for (let to = 0; to < REGIONS.length; to++) {
        if (from === to) continue;
        const link = await createLink({ target: direct[to]!, latencyMs });
        closers.push(() => link.close());
        regionLinks[from]!.push(link);
        regionLinks[to]!.push(link);
        routes[from]!.set(direct[to]!, link.address);
      }
    }

    await registries[0]!.ensurePrimary(Accounts.typeName, REGIONS[0]);
    const regions: RegionNode[] = [];
    for (let i = 0; i < REGIONS.length; i++) {
      const transport = viaLinks(new TcpClientTransport({ connectTimeoutMs: 1000 }), routes[i]!);
      closers.push(() => transport.close());
      const client = createClient(Accounts, { transport, ...routingOptions(registries[i]!, { transport: "tcp" }), timeoutMs: options.callTimeoutMs });
      regions.push({ name: REGIONS[i]!, index: i, registry: registries[i]!, server: servers[i]!, clock: clocks[i]!, client });
      if (i > 0) {
        // A replica pulling from the primary: each linearizable read served by the primary syncs
        // the clock to the time the read was issued.
        const primary = createClient(Accounts, { transport, endpoints: [{ address: direct[0]! }], timeoutMs: options.callTimeoutMs });
        let running = true;
        const loop = (async () => {
          while (running) {
            const issued = Date.now();
            const ok = await primary.balance({ account: "replication" }, { consistency: "linearizable" }).then(
              () => true,
              () => false,
            );
            if (ok) clocks[i]!.synced(issued);
            await new Promise((resolve) => setTimeout(resolve, options.replicationIntervalMs ?? 100));
          }
        })();
        closers.push(async () => {
          running = false;
          await loop;
        });
      }
    }
    // Ready when every region sees three servers and the primary.
    const deadline = Date.now() + 20_000;
    for (const r of regions) {
      for (;;) {
        const view = await r.registry.view(Accounts.typeName);
        if (view.instances.length === REGIONS.length && view.primary !== undefined && r.registry.health().reachable) break;
        if (Date.now() > deadline) throw new Error(`${r.name} does not see the whole topology (${view.instances.length} instances)`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    return {
      store: options.store,
      regions,
      cluster,
      cut(i) {
        for (const link of regionLinks[i]!) link.blackhole(true);
        cluster?.cutOff(i);
      },
      heal(i) {
        for (const link of regionLinks[i]!) link.heal();
        cluster?.heal(i);
      },
      close: () => closeAll(closers),
    };
  } catch (e) {
    await closeAll(closers);
    throw e;
  }
}

async function closeAll(closers: (() => Promise<void>)[]): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
}
