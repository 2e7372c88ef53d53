/**
 * Real nats-server processes on 127.0.0.1 for tests and benchmarks: one server per region, random
 * free ports, a configuration file and a log per server in a temporary folder removed afterwards.
 * With more than one region the servers are joined by gateways (every server names every other
 * as a gateway), which is how NATS links clusters across regions: a request goes to a queue
 * subscriber in the local cluster when there is one, to another cluster's otherwise.
 *
 * Servers are SIGKILLed when the cluster is stopped, when this process exits, and by a small
 * watchdog shell process if this process dies without running its exit handlers.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { findBinary, freePort, ProcessGroup, sleep, startWithRetries, type ProcessSlot } from "./processes.js";

/** Options of startNatsCluster. */
export interface NatsClusterOptions {
  /** One server per region, named after it. Default ["local"]: a single server, no gateways. */
  readonly regions?: readonly string[];
  /** The servers' max_payload, bytes. Default NATS's own, 1 MiB. */
  readonly maxPayload?: number;
  /** How long to wait for the servers (and their gateways) to be up, ms. Default 15 000. */
  readonly startTimeoutMs?: number;
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
  /** Kills every server and removes the folder. */
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
    if (this.gateways) {
      const others = this.states
        .filter((o) => o !== s)
        .map((o) => `    { name: ${JSON.stringify(o.region)}, urls: ["nats://127.0.0.1:${o.gatewayPort}"] }`);
      lines.push(
        "gateway {",
        `  name: ${JSON.stringify(s.region)}`,
        `  listen: "127.0.0.1:${s.gatewayPort}"`,
        "  gateways: [",
        others.join(",\n"),
        "  ]",
        "}",
      );
    }
    return `${lines.join("\n")}\n`;
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

  async stop(): Promise<void> {
    await this.processes.stop();
  }
}
