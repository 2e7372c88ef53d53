/**
 * One region of the demo, run as its own process by demo.ts (child_process.fork): the region's
 * instances of the KeyValue service (registered in the registry under leases, fenced), its
 * replica of the keys, and its clients driving traffic through Meridian's consistency routing.
 * Calls to other regions go through the coordinator's links (latency, partitions); calls inside
 * the region go straight to the instance. Everything it sees is reported to the coordinator.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import {
  OutcomeUnknownError,
  Replica,
  StoreError,
  StoreUnavailableError,
  createRegistry,
  createRemoteStore,
  fencingMiddleware,
  listenAndRegister,
  routingOptions,
  type RegisteredServer,
  type Registry,
  type ServiceSnapshot,
  type Store,
} from "meridian-rpc/registry";
import {
  HeaderKeys,
  RpcError,
  createClient,
  createServer,
  type Client,
  type ClientTransport,
  type Endpoint,
  type Handlers,
  type Middleware,
  type Resolver,
} from "meridian-rpc";
import { TcpClientTransport } from "meridian-rpc/transports/tcp";
import { KeyValue } from "./gen/kv.js";
import { DATA_PREFIX, PAUSE_HEADER, now, type CommitEntry, type Identity, type FromRegion, type OpRecord, type RegionConfig, type SeenEntry, type StoreConfig, type ToRegion, type Tuning } from "./protocol.js";
import { clientTls } from "./security.js";
import { keyValueHandlers, writeOutcomeMiddleware } from "./service.js";
import { transportKit, type TransportKit } from "./transports.js";
import { Workload, recordGet, recordPut } from "./workload.js";

/** How long a region keeps trying a registry call the registry did not run for now (registration, the rogue move), ms. */
const START_RETRY_MS = 20_000;

/** Whether a store call failed without any effect and may simply be tried again: the registry never ran it. */
function notApplied(e: unknown): boolean {
  return e instanceof StoreUnavailableError || (e instanceof StoreError && e.cause instanceof RpcError && e.cause.notSent);
}

function send(msg: FromRegion): void {
  process.send?.(msg);
}

/** The store of a region's registry client: the embedded registry through the region's link, or the region's own etcd member. */
async function openStore(config: StoreConfig, tuning: Tuning, identity: Identity | undefined): Promise<Store> {
  if (config.kind === "embedded") {
    return createRemoteStore({
      transport: new TcpClientTransport({ connectTimeoutMs: 300, backoffBaseMs: 100, backoffMaxMs: 1000, ...(identity === undefined ? {} : { tls: clientTls(identity) }) }),
      address: config.address,
      timeoutMs: tuning.storeTimeoutMs,
      pollWaitMs: 1000,
    });
  }
  const { createEtcdStore } = await import("meridian-rpc/registry/etcd");
  return createEtcdStore({ hosts: config.hosts, timeoutMs: tuning.storeTimeoutMs, keepaliveMs: 2000 });
}

/**
 * A resolver that sends calls for another region's instances through this region's link to
 * them: the registry holds each instance's own address, the link map says how this region
 * reaches it. Arrays are memoized so load balancers keep their state.
 */
function viaLinks(inner: Resolver, routes: Readonly<Record<string, string>>): Resolver {
  const memo = new WeakMap<readonly Endpoint[], readonly Endpoint[]>();
  const map = (list: readonly Endpoint[]): readonly Endpoint[] => {
    let mapped = memo.get(list);
    if (mapped === undefined) {
      mapped = list.map((e) => (routes[e.address] === undefined ? e : { ...e, address: routes[e.address]! }));
      memo.set(list, mapped);
    }
    return mapped;
  };
  return {
    resolve(service, ctx) {
      const r = inner.resolve(service, ctx);
      return Array.isArray(r) ? map(r) : (r as Promise<readonly Endpoint[]>).then(map);
    },
  };
}

class RegionProcess {
  private readonly ops: OpRecord[] = [];
  private readonly seen: SeenEntry[] = [];
  private readonly commits: CommitEntry[] = [];
  private registry!: Registry;
  private replica!: Replica;
  private servers: RegisteredServer[] = [];
  private clientTransport!: ClientTransport;
  private workload!: Workload;
  private client!: Client<typeof KeyValue>;
  private probeClient!: Client<typeof KeyValue>;
  private reportTimer: NodeJS.Timeout | undefined;
  private view!: ServiceSnapshot;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private cpuAt = { usage: process.cpuUsage(), time: performance.now() };

  /** Released by the coordinator's `resume`: what a write marked with PAUSE_HEADER waits for. */
  private resumePaused: (() => void) | undefined;

  constructor(private readonly config: RegionConfig) {}

  /**
   * The demo's pause (innermost server middleware, so after fencingMiddleware admitted the call):
   * a write carrying PAUSE_HEADER tells the coordinator it was admitted and waits; the coordinator
   * freezes this whole process (SIGSTOP, as a long GC pause would), moves the primary, lets the
   * new primary write, then thaws it (SIGCONT) and sends `resume`.
   */
  private readonly pauseMiddleware: Middleware = (next) => async (req) => {
    if (req.headers[PAUSE_HEADER] === undefined) return next(req);
    await new Promise<void>((resolve) => {
      this.resumePaused = resolve;
      send({ type: "paused", region: this.config.region, epoch: Number(req.ctx.responseHeaders[HeaderKeys.epoch] ?? 0) });
    });
    return next(req);
  };

  async start(): Promise<void> {
    const { config } = this;
    const { region, tuning } = config;
    const kit = await transportKit(config.transport, {
      ...(config.natsUrl === undefined ? {} : { natsUrl: config.natsUrl }),
      ...(config.identity === undefined ? {} : { identity: config.identity }),
    });
    const store = await openStore(config.store, tuning, config.identity);
    this.registry = createRegistry({
      store,
      region,
      healthIntervalMs: tuning.healthIntervalMs,
      staleAfterMs: tuning.staleAfterMs,
      primaryLeaseMs: tuning.primaryLeaseMs,
      leaseTtlMs: tuning.leaseTtlMs,
      timeoutMs: tuning.storeTimeoutMs,
    });
    this.replica = new Replica(store, DATA_PREFIX, {
      syncMs: tuning.replicaSyncMs,
      timeoutMs: tuning.storeTimeoutMs,
      now,
      onApplied: (key, revision) => this.seen.push([key.slice(DATA_PREFIX.length), revision, now()]),
    });
    await this.replica.ready();
    // The cache's view of the service: a live object, kept current by the registry's watch.
    this.view = await this.registry.view(KeyValue.typeName);

    const handlers = keyValueHandlers({
      region,
      registry: this.registry,
      replica: this.replica,
      onCommit: (revision, at) => this.commits.push([revision, at]),
    });
    for (const instance of config.instances) this.servers.push(await this.startInstance(kit, handlers, instance.listen));

    this.clientTransport = kit.client();
    const routing = routingOptions(this.registry, { downForMs: tuning.downForMs });
    this.client = createClient(KeyValue, {
      transport: this.clientTransport,
      ...routing,
      resolver: kit.viaLinks ? viaLinks(routing.resolver, config.routes) : routing.resolver,
      timeoutMs: tuning.callTimeoutMs,
    });
    // Straight to this region's first instance, no routing: for fencing probes.
    this.probeClient = createClient(KeyValue, {
      transport: this.clientTransport,
      endpoints: [{ address: kit.address(config.instances[0]!.listen) }],
      region,
      timeoutMs: tuning.callTimeoutMs,
    });
    this.workload = new Workload({
      client: this.client,
      region,
      keys: config.keys,
      rate: config.rate,
      seed: config.seed,
      record: (op) => this.ops.push(op),
    });
    this.loopDelay.enable();
    this.reportTimer = setInterval(() => this.report(), 250);
    send({ type: "ready", region, addresses: this.servers.map((s) => s.address) });
  }

  /**
   * Starts one instance and registers it. A registration the registry certainly did not apply
   * (refused before its handler, e.g. shed while this machine is loaded, or the registry not
   * reachable yet) is tried again with a new server, for up to START_RETRY_MS: a transient
   * refusal must not fail the region's start. Any other error fails it at once.
   */
  private async startInstance(kit: TransportKit, handlers: Handlers<typeof KeyValue>, listen: string): Promise<RegisteredServer> {
    const deadline = now() + START_RETRY_MS;
    for (;;) {
      const server = createServer({
        transport: kit.server(listen, [KeyValue]),
        region: this.config.region,
        middleware: [writeOutcomeMiddleware, fencingMiddleware(this.registry), this.pauseMiddleware],
        metrics: false,
      }).register(KeyValue, handlers);
      try {
        return await listenAndRegister(server, this.registry, { services: [KeyValue], transport: kit.name, advertise: kit.address(listen) });
      } catch (e) {
        if (!notApplied(e) || now() > deadline) throw e;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  /**
   * Tries to move the service's primary with this region's own registry identity, until the
   * registry gives a verdict: a move, or a refusal. A call the registry did not run (shed, not
   * reachable) or whose outcome is unknown is tried again, for up to START_RETRY_MS, so a
   * loaded machine cannot pass for a refusal.
   */
  private async rogueMove(to: string): Promise<{ moved: boolean; code?: string; message: string }> {
    const deadline = now() + START_RETRY_MS;
    for (;;) {
      try {
        const moved = await this.registry.movePrimary(KeyValue.typeName, to);
        return { moved: true, message: `moved to ${moved.region}, epoch ${moved.epoch}` };
      } catch (e) {
        if ((notApplied(e) || e instanceof OutcomeUnknownError) && now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 250));
          continue;
        }
        return { moved: false, ...(e instanceof StoreError ? { code: e.code } : {}), message: e instanceof Error ? e.message : String(e) };
      }
    }
  }

  /** Sends what happened since the last report. */
  report(): void {
    const primary = this.view.primary;
    const usage = process.cpuUsage(this.cpuAt.usage);
    const t = performance.now();
    const cpu = (usage.user + usage.system) / 1000 / Math.max(1, t - this.cpuAt.time);
    this.cpuAt = { usage: process.cpuUsage(), time: t };
    const loopDelayP99Ms = this.loopDelay.percentile(99) / 1e6;
    this.loopDelay.reset();
    send({
      type: "report",
      region: this.config.region,
      ops: this.ops.splice(0),
      seen: this.seen.splice(0),
      commits: this.commits.splice(0),
      replicaStaleMs: this.replica.staleMs(),
      primary: primary && { region: primary.region, epoch: primary.epoch },
      registryReachable: this.registry.health().reachable,
      inFlight: this.workload.inFlight,
      loopDelayP99Ms,
      cpu,
    });
  }

  /** Carries out an instruction and answers it. */
  async handle(msg: Exclude<ToRegion, { type: "init" }>): Promise<void> {
    switch (msg.type) {
      case "warm-up": {
        const endpoints = this.view.endpoints().map((e) => ({ ...e, address: this.config.routes[e.address] ?? e.address }));
        await this.clientTransport.warmUp?.(endpoints).catch(() => undefined);
        send({ type: "reply", id: msg.id });
        return;
      }
      case "traffic":
        if (msg.on) this.workload.start();
        else await this.workload.stop();
        send({ type: "reply", id: msg.id });
        return;
      case "probe": {
        const op = await recordPut(
          this.probeClient,
          this.config.region,
          this.config.keys[0]!,
          `probe:${this.config.region}:${msg.id}`,
          { headers: { [HeaderKeys.epoch]: String(msg.epoch) } },
          { probe: true },
        );
        this.ops.push(op);
        send({ type: "reply", id: msg.id, op });
        return;
      }
      case "paused-write": {
        // Straight to this region's first instance, with time to outlive the pause.
        const op = await recordPut(
          this.probeClient,
          this.config.region,
          this.config.keys[0]!,
          `paused:${this.config.region}:${msg.id}`,
          { timeoutMs: 60_000, headers: { [PAUSE_HEADER]: "1" } },
          { probe: true, paused: true },
        );
        this.ops.push(op);
        send({ type: "reply", id: msg.id, op });
        return;
      }
      case "resume":
        this.resumePaused?.();
        this.resumePaused = undefined;
        send({ type: "reply", id: msg.id });
        return;
      case "rogue-move":
        send({ type: "reply", id: msg.id, move: await this.rogueMove(msg.to) });
        return;
      case "replica-state":
        send({
          type: "reply",
          id: msg.id,
          revisions: Object.fromEntries(Object.entries(this.replica.revisions()).map(([key, revision]) => [key.slice(DATA_PREFIX.length), revision])),
        });
        return;
      case "final-reads":
        for (const key of this.config.keys) {
          this.ops.push(await recordGet(this.client, this.config.region, key, "linearizable"));
          this.ops.push(await recordGet(this.client, this.config.region, key, "eventual"));
        }
        this.report();
        send({ type: "reply", id: msg.id });
        return;
      case "stop":
        await this.stop();
        send({ type: "reply", id: msg.id });
        return;
    }
  }

  async stop(): Promise<void> {
    await this.workload?.stop();
    if (this.reportTimer) clearInterval(this.reportTimer);
    this.report();
    await Promise.all(this.servers.map((s) => s.close({ graceMs: 500 }).catch(() => undefined)));
    await this.clientTransport?.close().catch(() => undefined);
    this.replica?.stop();
    await this.registry?.close().catch(() => undefined);
  }
}

let regionProcess: RegionProcess | undefined;
let regionName: RegionConfig["region"] = "cn-north";

// Ctrl-C reaches the whole process group: the coordinator decides when a region stops.
process.on("SIGINT", () => undefined);
// The coordinator is gone: nothing left to report to.
process.on("disconnect", () => process.exit(0));
process.on("message", (raw: ToRegion) => {
  const run = async () => {
    if (raw.type === "init") {
      regionName = raw.config.region;
      regionProcess = new RegionProcess(raw.config);
      await regionProcess.start();
    } else {
      await regionProcess?.handle(raw);
      if (raw.type === "stop") setTimeout(() => process.exit(0), 50);
    }
  };
  run().catch((e: unknown) => {
    send({ type: "fatal", region: regionName, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  });
});
