/**
 * The demo's network between regions, owned by the coordinator: the registry (the embedded one
 * served here, or a 3-member etcd cluster with one member per region), the links of
 * tools/linkproxy in front of every instance for callers in other regions (one-way latency, and
 * cut off on demand), and for NATS one nats-server per region joined by gateways.
 */
import { EmbeddedNode, createEmbeddedStore, createRemoteStore, serveRegistry, type RegistryServer, type Store } from "meridian-rpc/registry";
import { createLink, type Link } from "../../tools/linkproxy/index.js";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { freePort, startEtcdCluster, type EtcdCluster } from "../../test/support/etcd-cluster.js";
import { REGIONS, SECOND_PRIMARY, type Region, type StoreConfig, type TransportName } from "./protocol.js";
import { clientTls, registryAuth, serverTls, type DemoIdentities } from "./security.js";
import { NotAvailableError } from "./transports.js";

/** Options of startNetwork. */
export interface NetworkOptions {
  readonly registry: "embedded" | "etcd";
  readonly transport: TransportName;
  /** One-way latency between two regions, ms. */
  readonly latencyMs: number;
  /** Instances of the service per region. */
  readonly instancesPerRegion: number;
  /** The timeout of one call to the registry by its clients, ms (the embedded registry's load shedding is sized from it). */
  readonly registryTimeoutMs: number;
  /**
   * The demo's certificates: mutual TLS on the registry server and the NATS servers, and the
   * registry authorizes by certificate (security.ts). Absent with --plaintext: no TLS, and the
   * registry serves without authentication.
   */
  readonly identities?: DemoIdentities;
}

/** One instance as the coordinator planned it. */
export interface PlannedInstance {
  readonly id: string;
  /** The port (tcp, grpc) or subject prefix (nats) it serves on. */
  readonly listen: string;
}

/** The running network; see the module comment. */
export interface Network {
  /** A line saying what runs where, for the demo's header. */
  readonly description: string;
  /** The registry as `meridian registry` takes it (`embedded://host:port`, `etcd://host:port,...`). */
  readonly registryUrl: string;
  /** Where a region's processes find the registry's store. */
  storeConfig(region: Region): StoreConfig;
  /** The coordinator's own store (the operator's registry client and the auditor): with certificates, as the operator. */
  readonly store: Store;
  instances(region: Region): readonly PlannedInstance[];
  /** Direct address of an instance -> the link a caller in `region` uses to reach it. */
  routes(region: Region): Record<string, string>;
  natsUrl(region: Region): string | undefined;
  /** Cuts every link into and out of a region, the registry's included. */
  cutOff(region: Region): void;
  /** Restores a region's links (all regions' when none is named). */
  heal(region?: Region): void;
  /** Regions currently cut off. */
  readonly cut: ReadonlySet<Region>;
  close(): Promise<void>;
}

/** The part of the NATS cluster harness the demo needs: links on the gateways, to cut regions apart. */
interface PartitionableNats {
  url(region: string): string;
  cutOff(index: number): void;
  heal(index?: number): void;
  stop(): Promise<void>;
}

/** Starts the registry, the NATS servers when asked, and the links between regions. */
export async function startNetwork(options: NetworkOptions): Promise<Network> {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    return await build(options, closers, close);
  } catch (e) {
    await close();
    throw e;
  }
}

async function build(options: NetworkOptions, closers: (() => Promise<void>)[], close: () => Promise<void>): Promise<Network> {
  const { latencyMs } = options;
  const cut = new Set<Region>();
  const index = (r: Region) => REGIONS.indexOf(r);

  // The registry.
  let storeConfig: (region: Region) => StoreConfig;
  let store: Store;
  let registryCut: (region: Region, on: boolean) => void;
  let registryLine: string;
  let registryUrl: string;
  if (options.registry === "embedded") {
    const node = await EmbeddedNode.open();
    // The registry is the control plane of three region processes whose calls each have
    // `registryTimeoutMs`. The server's default shedding (a queue standing over 5 ms) suits
    // handlers of the data plane; on a loaded machine this process's event loop alone lags that
    // much, and shedding a registration or a lease renewal then fails a region for nothing. Shed
    // only a queue that eats a fifth of a call's budget (expired calls are refused regardless).
    const admission = { targetMs: Math.max(5, options.registryTimeoutMs / 5), intervalMs: options.registryTimeoutMs };
    const ids = options.identities;
    const server: RegistryServer = await serveRegistry({
      transport: new TcpServerTransport({ port: 0, ...(ids === undefined ? {} : { tls: serverTls(ids.registry) }) }),
      node,
      admission,
      ...(ids === undefined ? { insecure: true } : { auth: registryAuth() }),
    });
    closers.push(async () => {
      await server.close();
      await node.close();
    });
    // The registry lives in SECOND_PRIMARY: the other regions reach it across a region link.
    const links = new Map<Region, Link>();
    for (const region of REGIONS) {
      const link = await createLink({ target: server.address, latencyMs: region === SECOND_PRIMARY ? 0 : latencyMs });
      closers.push(() => link.close());
      links.set(region, link);
    }
    // With certificates the coordinator is a client like any other: the operator, over mTLS.
    store =
      ids === undefined
        ? await createEmbeddedStore({ node })
        : createRemoteStore({ transport: new TcpClientTransport({ tls: clientTls(ids.operator) }), address: server.address, timeoutMs: options.registryTimeoutMs * 4 });
    closers.push(() => store.close());
    storeConfig = (region) => ({ kind: "embedded", address: links.get(region)!.address });
    registryCut = (region, on) => {
      const link = links.get(region)!;
      if (on && link.state === "up") link.blackhole(true);
      else if (!on && link.state !== "up") link.heal();
    };
    registryLine = `embedded registry (one node, in ${SECOND_PRIMARY}${ids === undefined ? ", no authentication" : ", mTLS, roles by certificate"})`;
    registryUrl = `embedded://${server.address}`;
  } else {
    const cluster: EtcdCluster = await startEtcdCluster({ names: [...REGIONS], latencyMs });
    closers.push(() => cluster.stop());
    const { createEtcdStore } = await import("meridian-rpc/registry/etcd");
    // The auditor and the operator talk to the member of the region that is never cut off.
    store = createEtcdStore({ hosts: cluster.members[index(SECOND_PRIMARY)]!.clientUrl, timeoutMs: 2000, keepaliveMs: 2000 });
    closers.push(() => store.close());
    storeConfig = (region) => ({ kind: "etcd", hosts: [cluster.members[index(region)]!.clientUrl] });
    // A member's links are up only when neither end is cut: heal every link, then cut again.
    const cutMembers = new Set<number>();
    registryCut = (region, on) => {
      const i = index(region);
      if (on === cutMembers.has(i)) return;
      if (on) {
        cutMembers.add(i);
        cluster.cutOff(i);
      } else {
        cutMembers.delete(i);
        cluster.heal(i);
        for (const other of cutMembers) cluster.cutOff(other);
      }
    };
    registryLine = "etcd, 3 members (one per region, Raft over the region links; plaintext, no authentication: see docs/demo.md)";
    registryUrl = `etcd://${cluster.clientUrls.map((u) => u.replace(/^http:\/\//, "")).join(",")}`;
  }

  // The service's instances and the links in front of them.
  const planned = new Map<Region, PlannedInstance[]>();
  const routes = new Map<Region, Record<string, string>>();
  const serviceLinks: { from: Region; to: Region; link: Link }[] = [];
  let nats: PartitionableNats | undefined;
  for (const region of REGIONS) routes.set(region, {});
  if (options.transport === "nats") {
    const { startNatsCluster, findNatsServer, NATS_MISSING } = await import("../../test/support/nats-cluster.js");
    if (findNatsServer() === undefined) throw new NotAvailableError(NATS_MISSING);
    // The gateways between the regions' servers go through links with the one-way latency.
    // With certificates: each server takes clients and gateways over TLS with the region's certificate, and verifies theirs.
    const ids = options.identities;
    const tls = ids === undefined ? undefined : Object.fromEntries(REGIONS.map((r) => [r, ids.regions[r]]));
    const cluster = await startNatsCluster({ regions: [...REGIONS], links: true, latencyMs, ...(tls === undefined ? {} : { tls }) });
    closers.push(() => cluster.stop());
    nats = cluster;
    for (const region of REGIONS) {
      const instances: PlannedInstance[] = [];
      // One subject prefix per region; the region's instances share it as a queue group.
      for (let i = 0; i < options.instancesPerRegion; i++) instances.push({ id: `${region}-${i + 1}`, listen: `demo.${region}` });
      planned.set(region, instances);
    }
  } else {
    for (const to of REGIONS) {
      const instances: PlannedInstance[] = [];
      for (let i = 0; i < options.instancesPerRegion; i++) {
        const port = await freePort();
        instances.push({ id: `${to}-${i + 1}`, listen: String(port) });
        for (const from of REGIONS) {
          if (from === to) continue;
          const link = await createLink({ target: `127.0.0.1:${port}`, latencyMs });
          closers.push(() => link.close());
          serviceLinks.push({ from, to, link });
          routes.get(from)![`127.0.0.1:${port}`] = link.address;
        }
      }
      planned.set(to, instances);
    }
  }

  /** Puts every link in the state the set of cut regions asks for (a link is up when neither end is cut). */
  const apply = () => {
    for (const region of REGIONS) registryCut(region, cut.has(region));
    for (const l of serviceLinks) {
      const down = cut.has(l.from) || cut.has(l.to);
      if (down && l.link.state === "up") l.link.blackhole(true);
      else if (!down && l.link.state !== "up") l.link.heal();
    }
    if (nats !== undefined) {
      nats.heal();
      for (const region of cut) nats.cutOff(index(region));
    }
  };

  const transportLine =
    (options.transport === "nats" ? "NATS, one server per region joined by gateways" : `${options.transport.toUpperCase()} through links between regions`) +
    (options.identities === undefined ? ", plaintext" : ", mutual TLS");
  return {
    description: `${registryLine} · ${transportLine} · ${latencyMs} ms one way between regions, none inside one`,
    registryUrl,
    storeConfig: (region) => storeConfig(region),
    store,
    instances: (region) => planned.get(region)!,
    routes: (region) => ({ ...routes.get(region)! }),
    natsUrl: (region) => nats?.url(region),
    cut,
    cutOff(region) {
      cut.add(region);
      apply();
    },
    heal(region) {
      if (region === undefined) cut.clear();
      else cut.delete(region);
      apply();
    },
    close,
  };
}
