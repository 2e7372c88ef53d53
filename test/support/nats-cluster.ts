/**
 * Real nats-server processes on 127.0.0.1 for tests and benchmarks: one server per region, random
 * free ports, a configuration file and a log per server in a temporary folder removed afterwards.
 * With more than one region the servers are joined by gateways (every server names every other
 * as a gateway), which is how NATS links clusters across regions: a request goes to a queue
 * subscriber in the local cluster when there is one, to another cluster's otherwise.
 *
 * With `links: true` (or a `latencyMs`), every gateway connection goes through a link of
 * tools/linkproxy, one per ordered pair of servers (link i>j carries what server i dials to server
 * j's gateway), so a test or the cross-region demo can add latency between regions, or cut one
 * region off (`cutOff`, `heal`), as etcd-cluster.ts does for Raft. Client URLs are always direct.
 * NATS gossips gateway URLs between servers and reconnects to any URL it learned, so a link per
 * configured URL would be bypassed after the first reconnect; instead each server has one front
 * door, the only gateway address any server knows for it (configured, and `advertise`d), which
 * finds the dialing server by the connection's source port (Linux's /proc) and hands the socket
 * to that pair's link.
 *
 * Servers are SIGKILLed when the cluster is stopped, when this process exits, and by a small
 * watchdog shell process if this process dies without running its exit handlers.
 */
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { createLink, type Link } from "../../tools/linkproxy/index.js";
import { findBinary, freePort, ProcessGroup, sleep, startWithRetries, type ProcessSlot } from "./processes.js";

/** Options of startNatsCluster. */
export interface NatsClusterOptions {
  /** One server per region, named after it. Default ["local"]: a single server, no gateways. */
  readonly regions?: readonly string[];
  /** The servers' max_payload, bytes. Default NATS's own, 1 MiB. */
  readonly maxPayload?: number;
  /** How long to wait for the servers (and their gateways) to be up, ms. Default 15 000. */
  readonly startTimeoutMs?: number;
  /**
   * Route every gateway connection through a link of tools/linkproxy (one per ordered pair of
   * servers), for `cutOff`, `heal`, `link` and `setLatency`. Default false, or true when
   * `latencyMs` or `jitterMs` is given. Only with more than one region.
   */
  readonly links?: boolean;
  /** One-way latency of every gateway link, ms (implies `links`). Default 0. */
  readonly latencyMs?: number;
  /** Jitter of every gateway link, ms (implies `links`). Default 0. */
  readonly jitterMs?: number;
  /**
   * Mutual TLS, per region (PEM): the server takes clients and gateways over TLS with `cert` and
   * asks each for a certificate `ca` signed (`verify`); its gateways dial with `cert` too. The
   * certificate must be good for server and client auth and name 127.0.0.1. Default: plaintext.
   */
  readonly tls?: Readonly<Record<string, { readonly ca: string; readonly cert: string; readonly key: string }>>;
}

/** One server as the harness knows it. */
export interface NatsNode {
  readonly region: string;
  readonly index: number;
  /** `nats://127.0.0.1:port`, for clients. */
  readonly url: string;
  readonly port: number;
  /** HTTP monitoring port (`/healthz`, `/varz`, `/gatewayz`, `/subsz`). */
  readonly monitorPort: number;
  readonly gatewayPort: number;
  readonly running: boolean;
  readonly logFile: string;
}

/** Running nats-server processes; see the module comment. */
export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** Client URL of each server, in region order. */
  readonly urls: readonly string[];
  /** The temporary folder with configurations and logs. */
  readonly dataDir: string;
  /** The client URL of the server of `region`. */
  url(region: string): string;
  /** SIGKILLs a server (clients see the connection drop) and waits for it to be gone. */
  kill(index: number): Promise<void>;
  /** Starts a killed server again on the same ports and waits until it is healthy (and its gateways are up). */
  restart(index: number): Promise<void>;
  /** Waits until every running server is healthy and, with gateways, connected to every other running one. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Whether the gateways go through links (see NatsClusterOptions.links); the four methods below need them. */
  readonly hasLinks: boolean;
  /** Blackholes every gateway link to and from the server (a cut cable around its region). */
  cutOff(index: number): void;
  /** Heals every gateway link (or the server's links only). */
  heal(index?: number): void;
  /** The link that carries the gateway connection dialed by server `from` to server `to`. */
  link(from: number, to: number): Link;
  /** Sets the one-way latency of every gateway link. */
  setLatency(latencyMs: number, jitterMs?: number): void;
  /** Kills every server, closes the links and removes the folder. */
  stop(): Promise<void>;
}

/** The nats-server binary: $NATS_SERVER_BIN, /usr/sbin, /usr/bin, /usr/local/bin or the PATH; undefined when missing. */
export function findNatsServer(): string | undefined {
  return findBinary("nats-server", [process.env.NATS_SERVER_BIN, "/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]);
}

/** What to tell a developer without nats-server. */
export const NATS_MISSING =
  "nats-server was not found (looked at $NATS_SERVER_BIN, /usr/sbin, /usr/bin, /usr/local/bin and the PATH): install it with " +
  "`bash scripts/setup.sh` (Debian's nats-server package) to run the NATS tests";

/** Starts the servers and waits until they are up; retries with new ports if one was taken. */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const bin = findNatsServer();
  if (!bin) throw new Error(NATS_MISSING);
  return startWithRetries(() => new ClusterImpl(bin, options));
}

interface NodeState extends ProcessSlot {
  region: string;
  index: number;
  port: number;
  monitorPort: number;
  gatewayPort: number;
  configFile: string;
}

class ClusterImpl implements NatsCluster {
  private readonly states: NodeState[] = [];
  private readonly processes = new ProcessGroup("meridian-nats-", this.states, "MERIDIAN_KEEP_NATS");
  private readonly regions: readonly string[];
  private readonly links = new Map<string, Link>();
  /** Per server with links: the front door its peers dial for its gateway. */
  private readonly doors = new Map<number, { server: net.Server; port: number }>();

  constructor(
    private readonly bin: string,
    private readonly options: NatsClusterOptions,
  ) {
    this.regions = options.regions ?? ["local"];
  }

  get dataDir(): string {
    return this.processes.dataDir;
  }

  get nodes(): NatsNode[] {
    return this.states.map((s) => ({
      region: s.region,
      index: s.index,
      url: `nats://127.0.0.1:${s.port}`,
      port: s.port,
      monitorPort: s.monitorPort,
      gatewayPort: s.gatewayPort,
      running: s.child !== undefined,
      logFile: s.logFile,
    }));
  }

  get urls(): string[] {
    return this.states.map((s) => `nats://127.0.0.1:${s.port}`);
  }

  url(region: string): string {
    const s = this.states.find((x) => x.region === region);
    if (s === undefined) throw new Error(`no NATS server for region ${region}; regions: ${this.regions.join(", ")}`);
    return `nats://127.0.0.1:${s.port}`;
  }

  private get gateways(): boolean {
    return this.regions.length > 1;
  }

  get hasLinks(): boolean {
    const o = this.options;
    return this.gateways && (o.links ?? (o.latencyMs !== undefined || o.jitterMs !== undefined));
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.regions.length; i++) {
      const region = this.regions[i]!;
      this.states.push({
        region,
        index: i,
        port: await freePort(),
        monitorPort: await freePort(),
        gatewayPort: await freePort(),
        child: undefined,
        exited: undefined,
        earlyExit: undefined,
        configFile: join(this.dataDir, `${region}.conf`),
        logFile: join(this.dataDir, `${region}.log`),
      });
    }
    if (this.hasLinks) {
      for (const from of this.states) {
        for (const to of this.states) {
          if (from === to) continue;
          this.links.set(
            `${from.index}>${to.index}`,
            await createLink({
              listen: false,
              target: `127.0.0.1:${to.gatewayPort}`,
              latencyMs: this.options.latencyMs ?? 0,
              jitterMs: this.options.jitterMs ?? 0,
            }),
          );
        }
      }
    }
    if (this.hasLinks) for (const s of this.states) this.doors.set(s.index, await this.openDoor(s));
    for (const s of this.states) writeFileSync(s.configFile, this.config(s));
    this.processes.startWatchdog();
    for (const s of this.states) this.spawnNode(s);
    await this.waitReady(this.options.startTimeoutMs ?? 15_000);
  }

  /** A server's configuration file. */
  private config(s: NodeState): string {
    const lines = [
      `server_name: ${JSON.stringify(`meridian-${s.region}`)}`,
      `listen: "127.0.0.1:${s.port}"`,
      `http: "127.0.0.1:${s.monitorPort}"`,
    ];
    if (this.options.maxPayload !== undefined) lines.push(`max_payload: ${this.options.maxPayload}`);
    const tls = this.tlsBlock(s);
    lines.push(...tls);
    if (this.gateways) {
      const others = this.states
        .filter((o) => o !== s)
        .map((o) => `    { name: ${JSON.stringify(o.region)}, urls: ["nats://${this.gatewayAddress(o)}"] }`);
      lines.push(
        "gateway {",
        `  name: ${JSON.stringify(s.region)}`,
        `  listen: "127.0.0.1:${s.gatewayPort}"`,
        ...(this.doors.has(s.index) ? [`  advertise: "${this.gatewayAddress(s)}"`] : []),
        ...tls.map((l) => `  ${l}`),
        "  gateways: [",
        others.join(",\n"),
        "  ]",
        "}",
      );
    }
    return `${lines.join("\n")}\n`;
  }

  /** The `tls { }` block of a server (its files written to the data folder), or none. */
  private tlsBlock(s: NodeState): string[] {
    const pem = this.options.tls?.[s.region];
    if (pem === undefined) return [];
    const file = (what: string, text: string) => {
      const path = join(this.dataDir, `${s.region}-${what}.pem`);
      writeFileSync(path, text, { mode: 0o600 });
      return JSON.stringify(path);
    };
    return ["tls {", `  cert_file: ${file("cert", pem.cert)}`, `  key_file: ${file("key", pem.key)}`, `  ca_file: ${file("ca", pem.ca)}`, "  verify: true", "  timeout: 5", "}"];
  }

  /** Where servers dial the gateway of server `to`: its front door, or direct. */
  private gatewayAddress(to: NodeState): string {
    const door = this.doors.get(to.index);
    return door ? `127.0.0.1:${door.port}` : `127.0.0.1:${to.gatewayPort}`;
  }

  /** The front door of a server's gateway: hands each connection to the link of the server that dialed it. */
  private async openDoor(to: NodeState): Promise<{ server: net.Server; port: number }> {
    const server = net.createServer((socket) => {
      socket.on("error", () => undefined);
      const from = this.dialer(socket);
      const link = from === undefined ? undefined : this.links.get(`${from}>${to.index}`);
      if (link) link.attach(socket);
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return { server, port: (server.address() as net.AddressInfo).port };
  }

  /** The index of the server that opened a connection: the process owning its source port (Linux /proc). */
  private dialer(socket: net.Socket): number | undefined {
    try {
      const local = (socket.remotePort ?? 0).toString(16).toUpperCase().padStart(4, "0");
      const peer = (socket.localPort ?? 0).toString(16).toUpperCase().padStart(4, "0");
      let inode: string | undefined;
      for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
        for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
          const f = line.trim().split(/\s+/);
          if (f[1]?.endsWith(`:${local}`) && f[2]?.endsWith(`:${peer}`)) inode = f[9];
        }
        if (inode !== undefined) break;
      }
      if (inode === undefined) return undefined;
      const wanted = `socket:[${inode}]`;
      for (const s of this.states) {
        const pid = s.child?.pid;
        if (pid === undefined) continue;
        const fds = readdirSync(`/proc/${pid}/fd`);
        if (fds.some((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`) === wanted; } catch { return false; } })) return s.index;
      }
    } catch {
      // No /proc (not Linux): the connection is refused and the gateway retries.
    }
    return undefined;
  }

  private spawnNode(s: NodeState): void {
    this.processes.spawn(s, this.bin, ["-c", s.configFile]);
  }

  async waitReady(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "no server answered yet";
    while (Date.now() < deadline) {
      for (const s of this.states) {
        if (!s.child && s.earlyExit && !this.processes.stopped) {
          throw new Error(`nats-server ${s.region} ${s.earlyExit} while starting; log:\n${this.processes.tail(s)}`);
        }
      }
      try {
        const running = this.states.filter((s) => s.child);
        await Promise.all(running.map((s) => this.healthy(s)));
        if (this.gateways) await Promise.all(running.map((s) => this.gatewaysUp(s, running)));
        return;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      await sleep(50);
    }
    throw new Error(`NATS servers not ready after ${timeoutMs} ms (${last}); logs in ${this.dataDir}`);
  }

  private async monitor(s: NodeState, path: string): Promise<unknown> {
    const res = await fetch(`http://127.0.0.1:${s.monitorPort}${path}`, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) throw new Error(`${path} of ${s.region}: HTTP ${res.status}`);
    return res.json();
  }

  private async healthy(s: NodeState): Promise<void> {
    const h = (await this.monitor(s, "/healthz")) as { status?: string };
    if (h.status !== "ok") throw new Error(`${s.region} is not healthy: ${JSON.stringify(h)}`);
  }

  /** Outbound and inbound gateway connections to every other running server. */
  private async gatewaysUp(s: NodeState, running: NodeState[]): Promise<void> {
    const g = (await this.monitor(s, "/gatewayz")) as {
      outbound_gateways?: Record<string, { connection?: unknown }>;
      inbound_gateways?: Record<string, unknown[]>;
    };
    for (const o of running) {
      if (o === s) continue;
      if (!g.outbound_gateways?.[o.region]?.connection) throw new Error(`${s.region} has no outbound gateway to ${o.region} yet`);
      if (!(g.inbound_gateways?.[o.region]?.length ?? 0)) throw new Error(`${s.region} has no inbound gateway from ${o.region} yet`);
    }
  }

  async kill(index: number): Promise<void> {
    await this.processes.kill(this.states[index]!);
  }

  async restart(index: number): Promise<void> {
    const s = this.states[index]!;
    if (s.child) return;
    this.spawnNode(s);
    await this.waitReady(this.options.startTimeoutMs ?? 15_000);
  }

  cutOff(index: number): void {
    this.needLinks("cutOff");
    for (const [key, link] of this.links) {
      const [from, to] = key.split(">").map(Number);
      if (from === index || to === index) link.blackhole(true);
    }
  }

  heal(index?: number): void {
    this.needLinks("heal");
    for (const [key, link] of this.links) {
      const [from, to] = key.split(">").map(Number);
      if (index === undefined || from === index || to === index) link.heal();
    }
  }

  link(from: number, to: number): Link {
    this.needLinks("link");
    const link = this.links.get(`${from}>${to}`);
    if (!link) throw new Error(`no gateway link from server ${from} to server ${to}`);
    return link;
  }

  setLatency(latencyMs: number, jitterMs = 0): void {
    this.needLinks("setLatency");
    for (const link of this.links.values()) link.setLatency(latencyMs, jitterMs);
  }

  private needLinks(what: string): void {
    if (!this.hasLinks) {
      throw new Error(`NatsCluster.${what} needs gateway links: start the cluster with more than one region and \`links: true\` (or a latencyMs)`);
    }
  }

  async stop(): Promise<void> {
    if (this.processes.stopped) return;
    await this.processes.stop();
    for (const door of this.doors.values()) await new Promise<void>((resolve) => door.server.close(() => resolve()));
    for (const link of this.links.values()) await link.close();
  }
}
