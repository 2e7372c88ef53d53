/**
 * A real etcd cluster on 127.0.0.1 for tests and the cross-region demo: one member per region,
 * random free ports, data in a temporary folder removed afterwards. Every peer connection goes
 * through a link of tools/linkproxy, one link per ordered pair of members (each member dials its
 * peers through its own SOCKS5 router, see createSocksRouter), so a test can cut one member off,
 * or add latency between two regions, without touching the others. Client URLs are direct.
 *
 * Members are SIGKILLed when the cluster is stopped, when this process exits, and by a small
 * watchdog shell process if this process dies without running its exit handlers.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createLink, createSocksRouter, type Link, type SocksRouter } from "../../tools/linkproxy/index.js";
import { findBinary, freePort, ProcessGroup, sleep, startWithRetries, type ProcessSlot } from "./processes.js";

export { freePort } from "./processes.js";

/** Options of startEtcdCluster. */
export interface EtcdClusterOptions {
  /** Member names, one per region; default ["m0", "m1", "m2"]. */
  readonly names?: readonly string[];
  /** Raft heartbeat, ms. Default 100. */
  readonly heartbeatMs?: number;
  /** Raft election timeout, ms. Default 1000. */
  readonly electionTimeoutMs?: number;
  /** One-way latency of every peer link, ms. Default 0. */
  readonly latencyMs?: number;
  /** Jitter of every peer link, ms. Default 0. */
  readonly jitterMs?: number;
  /** How long to wait for a healthy cluster, ms. Default 30 000. */
  readonly startTimeoutMs?: number;
  /** etcd's log level (its log goes to <data folder>/<name>.log). Default "warn". */
  readonly logLevel?: "debug" | "info" | "warn" | "error";
}

/** One member as the harness knows it. */
export interface EtcdMember {
  readonly name: string;
  readonly index: number;
  /** `http://127.0.0.1:port`, direct (not through a link). */
  readonly clientUrl: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** Raft member id (decimal string), known once the cluster was healthy once. */
  readonly id: string | undefined;
  readonly running: boolean;
  /** Where this member's log goes. */
  readonly logFile: string;
}

/** A running etcd cluster; see the module comment. */
export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  readonly clientUrls: readonly string[];
  /** The temporary folder with the members' data and logs. */
  readonly dataDir: string;
  /** Waits until every running member agrees on a leader and answers a linearizable read. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** The index of the current leader (as the running members see it), waiting for one. */
  leader(timeoutMs?: number): Promise<number>;
  /** SIGKILLs a member and waits for it to be gone. */
  kill(index: number): Promise<void>;
  /** Starts a killed member again on the same ports and data. */
  restart(index: number): Promise<void>;
  /** Blackholes every link to and from the member (a cut cable around its region). */
  cutOff(index: number): void;
  /** Heals every link (or the member's links only). */
  heal(index?: number): void;
  /** The link that carries connections dialed by member `from` to member `to`. */
  link(from: number, to: number): Link;
  /** Sets the one-way latency of every link between two different members. */
  setLatency(latencyMs: number, jitterMs?: number): void;
  /** Kills every member, closes the links and removes the data folder. */
  stop(): Promise<void>;
}

/** The etcd binary: $ETCD_BIN, /usr/bin/etcd, or `etcd` on the PATH; undefined when missing. */
export function findEtcd(): string | undefined {
  return findBinary("etcd", [process.env.ETCD_BIN, "/usr/bin/etcd", "/usr/local/bin/etcd"]);
}

/** What to tell a developer without etcd. */
export const ETCD_MISSING =
  "etcd was not found (looked at $ETCD_BIN, /usr/bin/etcd and the PATH): install it with `bash scripts/setup.sh` " +
  "(Debian's etcd-server package) to run the etcd tests";

/** Starts a cluster and waits until it is healthy; retries with new ports if one was taken. */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const bin = findEtcd();
  if (!bin) throw new Error(ETCD_MISSING);
  return startWithRetries(() => new ClusterImpl(bin, options));
}

interface MemberState extends ProcessSlot {
  name: string;
  index: number;
  clientPort: number;
  peerPort: number;
  id: string | undefined;
  router: SocksRouter | undefined;
}

class ClusterImpl implements EtcdCluster {
  private readonly states: MemberState[] = [];
  private readonly processes = new ProcessGroup("meridian-etcd-", this.states, "MERIDIAN_KEEP_ETCD");
  private readonly links = new Map<string, Link>();
  private readonly names: readonly string[];
  private readonly token = `meridian-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

  constructor(
    private readonly bin: string,
    private readonly options: EtcdClusterOptions,
  ) {
    this.names = options.names ?? ["m0", "m1", "m2"];
  }

  get dataDir(): string {
    return this.processes.dataDir;
  }

  get members(): EtcdMember[] {
    return this.states.map((s) => ({
      name: s.name,
      index: s.index,
      clientUrl: `http://127.0.0.1:${s.clientPort}`,
      clientPort: s.clientPort,
      peerPort: s.peerPort,
      id: s.id,
      running: s.child !== undefined,
      logFile: s.logFile,
    }));
  }

  get clientUrls(): string[] {
    return this.states.map((s) => `http://127.0.0.1:${s.clientPort}`);
  }

  async start(): Promise<void> {
    const n = this.names.length;
    for (let i = 0; i < n; i++) {
      this.states.push({
        name: this.names[i]!,
        index: i,
        clientPort: await freePort(),
        peerPort: await freePort(),
        id: undefined,
        child: undefined,
        exited: undefined,
        router: undefined,
        logFile: join(this.dataDir, `${this.names[i]}.log`),
        earlyExit: undefined,
      });
    }
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        this.links.set(
          `${i}>${j}`,
          await createLink({
            listen: false,
            target: `127.0.0.1:${this.states[j]!.peerPort}`,
            latencyMs: this.options.latencyMs ?? 0,
            jitterMs: this.options.jitterMs ?? 0,
          }),
        );
      }
    }
    for (const s of this.states) {
      s.router = await createSocksRouter({
        route: (_host, port) => {
          const to = this.states.findIndex((t) => t.peerPort === port);
          return to < 0 || to === s.index ? undefined : this.links.get(`${s.index}>${to}`);
        },
      });
    }
    this.processes.startWatchdog();
    for (let i = 0; i < n; i++) this.spawnMember(i);
    await this.waitHealthy(this.options.startTimeoutMs ?? 30_000);
  }

  private spawnMember(index: number): void {
    const s = this.states[index]!;
    const dir = join(this.dataDir, s.name);
    mkdirSync(dir, { recursive: true });
    const cluster = this.states.map((m) => `${m.name}=http://localhost.:${m.peerPort}`).join(",");
    const args = [
      `--name=${s.name}`,
      `--data-dir=${dir}`,
      `--listen-peer-urls=http://127.0.0.1:${s.peerPort}`,
      // "localhost." is not a loopback literal, so Go sends peer traffic through HTTP_PROXY.
      `--initial-advertise-peer-urls=http://localhost.:${s.peerPort}`,
      `--listen-client-urls=http://127.0.0.1:${s.clientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${s.clientPort}`,
      `--initial-cluster=${cluster}`,
      "--initial-cluster-state=new",
      `--initial-cluster-token=${this.token}`,
      `--heartbeat-interval=${this.options.heartbeatMs ?? 100}`,
      `--election-timeout=${this.options.electionTimeoutMs ?? 1000}`,
      "--pre-vote=true",
      "--grpc-keepalive-min-time=1s",
      "--logger=zap",
      "--log-outputs=stderr",
      `--log-level=${this.options.logLevel ?? "warn"}`,
    ];
    const env: NodeJS.ProcessEnv = { ...process.env, HTTP_PROXY: s.router!.url, http_proxy: s.router!.url };
    delete env.NO_PROXY;
    delete env.no_proxy;
    delete env.HTTPS_PROXY;
    delete env.https_proxy;
    delete env.ALL_PROXY;
    delete env.all_proxy;
    this.processes.spawn(s, this.bin, args, env);
  }

  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "no member answered yet";
    while (Date.now() < deadline) {
      const running = this.states.filter((s) => s.child);
      for (const s of this.states) {
        if (!s.child && s.earlyExit && !this.processes.stopped && s.id === undefined) {
          throw new Error(`etcd member ${s.name} ${s.earlyExit} during start; log:\n${this.processes.tail(s)}`);
        }
      }
      try {
        const statuses = await Promise.all(running.map((s) => this.status(s, 1000)));
        const leaders = new Set(statuses.map((st) => st.leader));
        const leader = statuses[0]?.leader;
        if (leaders.size === 1 && leader && leader !== "0" && statuses.some((st) => st.header.member_id === leader)) {
          running.forEach((s, i) => (s.id = statuses[i]!.header.member_id));
          await Promise.all(running.map((s) => this.linearizableRead(s, 2000)));
          return;
        }
        last = `leaders seen: ${[...leaders].join(", ")}`;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      await sleep(100);
    }
    throw new Error(`etcd cluster not healthy after ${timeoutMs} ms (${last}); logs in ${this.dataDir}`);
  }

  async leader(timeoutMs = 15_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const running = this.states.filter((s) => s.child);
      const statuses = await Promise.all(running.map((s) => this.status(s, 1000).catch(() => undefined)));
      for (const st of statuses) {
        if (!st || st.leader === "0") continue;
        const index = this.states.findIndex((s) => s.id === st.leader);
        if (index >= 0 && this.states[index]!.child) return index;
      }
      await sleep(100);
    }
    throw new Error(`no etcd leader within ${timeoutMs} ms`);
  }

  async kill(index: number): Promise<void> {
    await this.processes.kill(this.states[index]!);
  }

  async restart(index: number): Promise<void> {
    const s = this.states[index]!;
    if (s.child) return;
    this.spawnMember(index);
  }

  cutOff(index: number): void {
    for (const [key, link] of this.links) {
      const [from, to] = key.split(">").map(Number);
      if (from === index || to === index) link.blackhole(true);
    }
  }

  heal(index?: number): void {
    for (const [key, link] of this.links) {
      const [from, to] = key.split(">").map(Number);
      if (index === undefined || from === index || to === index) link.heal();
    }
  }

  link(from: number, to: number): Link {
    const link = this.links.get(`${from}>${to}`);
    if (!link) throw new Error(`no link from member ${from} to member ${to}`);
    return link;
  }

  setLatency(latencyMs: number, jitterMs = 0): void {
    for (const link of this.links.values()) link.setLatency(latencyMs, jitterMs);
  }

  async stop(): Promise<void> {
    if (this.processes.stopped) return;
    await this.processes.stop();
    for (const s of this.states) await s.router?.close();
    for (const link of this.links.values()) await link.close();
  }

  private async status(s: MemberState, timeoutMs: number): Promise<{ header: { member_id: string }; leader: string }> {
    const res = await fetch(`http://127.0.0.1:${s.clientPort}/v3/maintenance/status`, {
      method: "POST",
      body: "{}",
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`status of ${s.name}: HTTP ${res.status}`);
    return (await res.json()) as { header: { member_id: string }; leader: string };
  }

  private async linearizableRead(s: MemberState, timeoutMs: number): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${s.clientPort}/v3/kv/range`, {
      method: "POST",
      body: JSON.stringify({ key: Buffer.from("meridian/health").toString("base64") }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`read on ${s.name}: HTTP ${res.status}`);
  }
}
