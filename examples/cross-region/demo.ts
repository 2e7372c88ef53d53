/**
 * Meridian's cross-region demo (`npm run demo`): three regions on this machine, each its own
 * process with instances of the KeyValue service, a registry (embedded, or etcd with one member
 * per region), links between regions with latency that are cut on purpose, real traffic, a live
 * view, and at the end a summary table and the verdict of a linearizability checker. It exits
 * non-zero when an invariant failed: a lost or doubled write, a non-linearizable history, or a
 * write accepted by a fenced primary. docs/demo.md walks through it.
 *
 *   node --conditions=meridian-source --import tsx examples/cross-region/demo.ts [options]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createRegistry, type Registry } from "meridian-rpc/registry";
import { ETCD_MISSING, findEtcd } from "../../test/support/etcd-cluster.js";
import { StoreLog, audit, resolveUnknownWrites, type AuditResult, type Invariant } from "./audit.js";
import { KeyValue } from "./gen/kv.js";
import { startNetwork, type Network } from "./network.js";
import {
  FIRST_PRIMARY,
  REGIONS,
  SECONDARY_CUT,
  SECOND_PRIMARY,
  tuningFor,
  now,
  type FromRegion,
  type OpRecord,
  type Region,
  type TransportName,
  type Tuning,
} from "./protocol.js";
import { RegionHandle } from "./regions.js";
import { phaseRows, summaryTable, verdictLines, type PhaseRegionRow } from "./report.js";
import { moveDelayMs, schedule, type TimedPhase } from "./scenario.js";
import { makeIdentities, type DemoIdentities } from "./security.js";
import { windowStats } from "./stats.js";
import { NotAvailableError } from "./transports.js";
import { LiveView, clock, type RegionLive } from "./view.js";

const USAGE = `usage: npm run demo -- [options]

  --duration <s>      length of the scripted scenario, seconds (default 60; phases have minimums)
  --registry <kind>   embedded (default: a one-node registry served by the demo) or etcd
                      (three members, one per region; needs etcd, see scripts/setup.sh)
  --transport <name>  tcp (default), grpc or nats
  --latency <ms>      one-way latency between regions (default 30; none inside a region)
  --rate <n>          calls per second started by each region's clients (default 40)
  --instances <n>     instances of the service per region (default 2)
  --keys <n>          keys the clients use (default 8)
  --seed <n>          seed of the traffic mix (default 1)
  --json <file>       also write the summary as JSON
  --ops <file>        also write every recorded call, one JSON object per line
  --plain             plain periodic lines even on a terminal (no redraw, no colour)
  --plaintext         no TLS and no registry authentication (default: certificates made at
                      start, mutual TLS on every link, the registry authorizes by certificate)
  -h, --help          this text

Exit status: 0 when every invariant held, 1 when one failed, 2 when the demo could not run.`;

/** The demo's options. */
export interface DemoOptions {
  readonly durationMs: number;
  readonly registry: "embedded" | "etcd";
  readonly transport: TransportName;
  readonly latencyMs: number;
  readonly rate: number;
  readonly instances: number;
  readonly keys: number;
  readonly seed: number;
  readonly json: string | undefined;
  readonly opsFile: string | undefined;
  readonly plain: boolean;
  /** No TLS anywhere, and a registry without authentication. */
  readonly plaintext: boolean;
}

class UsageError extends Error {}

function parseOptions(argv: readonly string[]): DemoOptions | "help" {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: "string" },
      registry: { type: "string" },
      transport: { type: "string" },
      latency: { type: "string" },
      rate: { type: "string" },
      instances: { type: "string" },
      keys: { type: "string" },
      seed: { type: "string" },
      json: { type: "string" },
      ops: { type: "string" },
      plain: { type: "boolean" },
      plaintext: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return "help";
  const num = (name: string, raw: string | undefined, fallback: number, min: number) => {
    if (raw === undefined) return fallback;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min) throw new UsageError(`--${name} must be a number >= ${min}, got "${raw}"`);
    return v;
  };
  const registry = values.registry ?? "embedded";
  if (registry !== "embedded" && registry !== "etcd") throw new UsageError(`--registry must be embedded or etcd, got "${registry}"`);
  const transport = values.transport ?? "tcp";
  if (transport !== "tcp" && transport !== "grpc" && transport !== "nats") throw new UsageError(`--transport must be tcp, grpc or nats, got "${transport}"`);
  return {
    durationMs: num("duration", values.duration, 60, 1) * 1000,
    registry,
    transport,
    latencyMs: num("latency", values.latency, 30, 0),
    rate: num("rate", values.rate, 40, 1),
    instances: Math.floor(num("instances", values.instances, 2, 1)),
    keys: Math.floor(num("keys", values.keys, 8, 1)),
    seed: Math.floor(num("seed", values.seed, 1, 0)),
    json: values.json,
    opsFile: values.ops,
    plain: values.plain ?? false,
    plaintext: values.plaintext ?? false,
  };
}

/** The demo was interrupted (Ctrl-C). */
class InterruptedError extends Error {}

const PRIMARY_KEY = `meridian/services/${KeyValue.typeName}/primary`;

/** One run of the demo: see the module comment. */
class Demo {
  private readonly out = process.stdout;
  private readonly view: LiveView;
  private readonly cleanups: (() => Promise<void>)[] = [];
  private readonly regions = new Map<Region, RegionHandle>();
  private readonly ops: OpRecord[] = [];
  private readonly recent: OpRecord[] = [];
  private readonly commits = new Map<number, number>();
  private readonly seen = new Map<Region, Map<number, number>>();
  private readonly live = new Map<Region, { replicaStaleMs: number; registryReachable: boolean }>();
  private readonly events: { atMs: number; text: string }[] = [];
  private readonly logDir = mkdtempSync(join(tmpdir(), "meridian-demo-"));
  private network: Network | undefined;
  /** The demo's certificates (undefined with --plaintext). */
  private identities: DemoIdentities | undefined;
  /** The rogue primary move's verdict, once tried. */
  private authorization: Invariant | undefined;
  private operator: Registry | undefined;
  private log: StoreLog | undefined;
  private origin = 0;
  private primary: { region: string; epoch: number } | undefined;
  private interrupted = false;
  private readonly interruption: Promise<never>;
  private interrupt!: (e: Error) => void;
  private stopping = false;
  private readonly tuning: Tuning;
  /** Set while the coordinator waits for a region's paused write to be admitted. */
  private onPaused: ((msg: Extract<FromRegion, { type: "paused" }>) => void) | undefined;

  constructor(private readonly options: DemoOptions) {
    this.tuning = tuningFor(options.registry);
    this.view = new LiveView(this.out, options.plain ? { tty: false, colour: false } : {});
    this.interruption = new Promise<never>((_, reject) => (this.interrupt = reject));
    this.interruption.catch(() => undefined);
    for (const r of REGIONS) this.seen.set(r, new Map());
  }

  private get paint() {
    return this.view.paint;
  }

  /** Ends the run early (Ctrl-C, a region died): every wait below rejects. */
  abort(e: Error): void {
    if (e instanceof InterruptedError) this.interrupted = true;
    this.interrupt(e);
  }

  /** Waits for `p`, unless the run is aborted meanwhile. */
  private race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.interruption]);
  }

  /** Sleeps, unless the run is aborted meanwhile. */
  private sleep(msValue: number): Promise<void> {
    return Promise.race([new Promise<void>((resolve) => setTimeout(resolve, msValue)), this.interruption]);
  }

  private elapsed(): number {
    return this.origin === 0 ? 0 : now() - this.origin;
  }

  private event(text: string): void {
    const atMs = this.elapsed();
    this.events.push({ atMs: Math.round(atMs), text });
    this.view.event(atMs, text);
  }

  private onMessage(msg: FromRegion): void {
    if (msg.type === "paused") this.onPaused?.(msg);
    if (msg.type !== "report") return;
    for (const op of msg.ops) {
      this.ops.push(op);
      this.recent.push(op);
    }
    const seen = this.seen.get(msg.region)!;
    for (const [, revision, at] of msg.seen) if (!seen.has(revision)) seen.set(revision, at);
    for (const [revision, at] of msg.commits) this.commits.set(revision, at);
    this.live.set(msg.region, { replicaStaleMs: msg.replicaStaleMs, registryReachable: msg.registryReachable });
    if (process.env.MERIDIAN_DEMO_DEBUG) process.stderr.write(`${msg.region} loop p99 ${msg.loopDelayP99Ms.toFixed(1)} ms cpu ${(msg.cpu * 100).toFixed(0)}% in flight ${msg.inFlight}\n`);
  }

  async run(): Promise<number> {
    const { options } = this;
    const p = this.paint;
    const phases = schedule(options.durationMs);
    const totalMs = phases.at(-1)!.endMs;
    this.out.write(`${p.bold("Meridian cross-region demo")}: ${REGIONS.join(", ")}; the KeyValue service, ${options.instances} instances per region\n`);

    if (options.registry === "etcd" && findEtcd() === undefined) throw new NotAvailableError(ETCD_MISSING);
    if (!options.plaintext) {
      this.out.write(p.dim("making a CA and certificates for every region, the registry and the operator (openssl)...\n"));
      this.identities = makeIdentities();
      if (this.identities === undefined) throw new NotAvailableError("openssl was not found: the demo makes its certificates with it. Install Debian's openssl, or run with --plaintext");
    }
    this.out.write(p.dim(`starting the ${options.registry === "etcd" ? "etcd cluster and the " : ""}links between regions...\n`));
    const starting = startNetwork({
      registry: options.registry,
      transport: options.transport,
      latencyMs: options.latencyMs,
      instancesPerRegion: options.instances,
      registryTimeoutMs: this.tuning.storeTimeoutMs,
      ...(this.identities === undefined ? {} : { identities: this.identities }),
    });
    // Registered before waiting, so a Ctrl-C during the start still closes what it started.
    this.cleanups.push(async () => (await starting.catch(() => undefined))?.close());
    this.network = await this.race(starting);
    const network = this.network;
    this.out.write(`${network.description}\n`);

    // The operator: a registry client of its own (in the region that is never cut off).
    this.operator = createRegistry({
      store: network.store,
      region: SECOND_PRIMARY,
      ownStore: false,
      healthIntervalMs: this.tuning.healthIntervalMs,
      primaryLeaseMs: this.tuning.primaryLeaseMs,
      timeoutMs: 2000,
    });
    const operator = this.operator;
    this.cleanups.push(() => operator.close());
    await this.race(operator.ensurePrimary(KeyValue.typeName, FIRST_PRIMARY));
    this.log = await this.race(StoreLog.start(network.store, PRIMARY_KEY));
    const log = this.log;
    this.cleanups.push(async () => log.stop());
    this.primary = log.primaries.at(-1);
    log.onPrimary = (rec) => (this.primary = { region: rec.region, epoch: rec.epoch });

    // The regions.
    const keys = Array.from({ length: options.keys }, (_, i) => `k${String(i).padStart(2, "0")}`);
    this.out.write(p.dim(`starting ${REGIONS.length} region processes (logs in ${this.logDir})...\n`));
    for (const region of REGIONS) {
      const handle = new RegionHandle(region, join(this.logDir, `${region}.log`), (msg) => this.onMessage(msg));
      this.regions.set(region, handle);
      void handle.exited.then(() => {
        if (handle.failed && !this.stopping) this.abort(handle.failed);
      });
      handle.start({
        region,
        transport: options.transport,
        store: network.storeConfig(region),
        instances: network.instances(region),
        routes: network.routes(region),
        ...(network.natsUrl(region) === undefined ? {} : { natsUrl: network.natsUrl(region)! }),
        ...(this.identities === undefined ? {} : { identity: this.identities.regions[region] }),
        keys,
        rate: options.rate,
        seed: options.seed * 1000 + REGIONS.indexOf(region),
        tuning: this.tuning,
      });
    }
    this.cleanups.push(async () => {
      this.stopping = true;
      await Promise.all([...this.regions.values()].map((h) => h.stop()));
    });
    await Promise.race([Promise.all([...this.regions.values()].map((h) => h.ready)), this.interruption, this.timeout(90_000, "the regions to start")]);
    const expected = REGIONS.length * options.instances;
    for (let waited = 0; (await this.race(operator.resolve(KeyValue.typeName))).length < expected; waited += 100) {
      if (waited > 15_000) throw new Error(`only ${(await operator.resolve(KeyValue.typeName)).length} of ${expected} instances registered after 15 s`);
      await this.sleep(100);
    }

    await this.all({ type: "warm-up" });

    // The scenario.
    this.out.write(`\n${p.bold("Scenario")} (${clock(totalMs)}):\n`);
    for (const ph of phases) this.out.write(`  ${clock(ph.startMs)}  ${p.bold(ph.title)}: ${ph.story}\n`);
    this.out.write("\n");
    this.origin = now();
    await this.all({ type: "traffic", on: true });
    for (const phase of phases) await this.runPhase(phase, phases.length, totalMs);
    await this.all({ type: "traffic", on: false });

    // Final check.
    this.view.done();
    this.event(`${p.bold("final check")}: traffic stopped; waiting for every replica to catch up, then reading every key from every region`);
    const replicas = await this.converge(log, 10_000);
    await this.all({ type: "final-reads" });
    await this.waitForLog(log);
    this.stopping = true;
    await Promise.all([...this.regions.values()].map((h) => h.stop()));
    log.stop();

    // Audit.
    this.out.write(p.dim("resolving unknown outcomes by write id and checking the history...\n"));
    const resolutions = await this.race(resolveUnknownWrites(network.store, this.ops));
    const result = audit({ ops: this.ops, log, resolutions, replicas, checkBudgetMs: 60_000 });
    const rows = phaseRows({ phases, origin: this.origin, ops: this.ops, commits: this.commits, seen: this.seen });
    const audited = this.authorization === undefined ? result : { ...result, invariants: [...result.invariants, this.authorization] };
    const ok = audited.invariants.every((i) => i.ok);
    this.printSummary(rows, audited, ok);
    if (options.json) this.writeJson(options.json, phases, rows, audited, ok);
    if (options.opsFile) writeFileSync(options.opsFile, this.ops.map((op) => JSON.stringify({ ...op, atMs: Math.round(op.call - this.origin) })).join("\n") + "\n");
    return ok ? 0 : 1;
  }

  private timeout(msValue: number, what: string): Promise<never> {
    return new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${msValue} ms waiting for ${what}`)), msValue).unref());
  }

  /** Sends an instruction to every region and waits for all the replies. */
  private async all(msg: Parameters<RegionHandle["request"]>[0]): Promise<void> {
    await Promise.race([Promise.all([...this.regions.values()].map((h) => h.request(msg))), this.interruption]);
  }

  /** Runs one phase: its actions at the start and inside it, and the live view every 250 ms. */
  private async runPhase(phase: TimedPhase, count: number, totalMs: number): Promise<void> {
    const network = this.network!;
    const p = this.paint;
    this.event(`${p.bold(`phase ${phase.index + 1}/${count}: ${phase.title}`)} - ${phase.story}`);
    const timers: { atMs: number; run: () => Promise<void> }[] = [];
    const at = (offsetMs: number, run: () => Promise<void>) => timers.push({ atMs: phase.startMs + offsetMs, run });
    switch (phase.id) {
      case "steady":
        at(1000, () => this.rogueMove());
        break;
      case "secondary-cut":
        network.cutOff(SECONDARY_CUT);
        this.event(`${p.red("cut")}: every link into and out of ${SECONDARY_CUT} is blackholed (service calls and the registry)`);
        break;
      case "primary-cut": {
        network.heal(SECONDARY_CUT);
        network.cutOff(FIRST_PRIMARY);
        this.event(`${p.green("healed")} ${SECONDARY_CUT}; ${p.red("cut")}: every link into and out of ${FIRST_PRIMARY}, the primary`);
        const delay = moveDelayMs(phase);
        let epoch = 0;
        at(delay, async () => {
          epoch = await this.movePrimary(phase, SECOND_PRIMARY);
        });
        at(delay + this.tuning.primaryLeaseMs + 500, async () => {
          await this.probe(FIRST_PRIMARY, epoch - 1, "the cut-off old primary");
        });
        break;
      }
      case "heal":
        network.heal();
        this.event(`${p.green("healed")}: every link is back`);
        at(1000, async () => {
          const epoch = this.primary?.epoch ?? 1;
          if (epoch > 1) {
            // Once the old primary hears from the registry again, it knows it was replaced.
            while (this.live.get(FIRST_PRIMARY)?.registryReachable !== true && this.elapsed() < phase.endMs - 500) await this.sleep(100);
            await this.probe(FIRST_PRIMARY, epoch - 1, "the old primary, back");
            await this.probe(SECOND_PRIMARY, epoch - 1, "the new primary, asked with the old epoch");
          }
        });
        break;
      case "primary-paused":
        at(500, () => this.pausedPrimary(phase));
        break;
      default:
        break;
    }
    const running: Promise<void>[] = [];
    while (this.elapsed() < phase.endMs) {
      for (const t of timers.splice(0)) {
        if (this.elapsed() >= t.atMs) running.push(t.run().catch((e: unknown) => this.event(p.red(`${(e as Error).message}`))));
        else timers.push(t);
      }
      this.view.update({
        elapsedMs: this.elapsed(),
        totalMs,
        phase,
        phaseCount: count,
        primary: this.primary,
        regions: this.liveRegions(),
        writes: this.writeCounts(),
      });
      await this.sleep(Math.min(250, Math.max(1, phase.endMs - this.elapsed())));
    }
    await Promise.race([Promise.all(running), this.interruption]);
  }

  /** The operator moves the primary by compare-and-set, retrying while the registry elects a leader. */
  private async movePrimary(phase: TimedPhase, to: Region): Promise<number> {
    const p = this.paint;
    const from = this.primary?.epoch ?? 1;
    const previous = this.primary?.region ?? FIRST_PRIMARY;
    for (;;) {
      try {
        const moved = await this.operator!.movePrimary(KeyValue.typeName, to, { expectedEpoch: from });
        this.event(
          `${p.cyan("operator")}: primary moved ${previous} -> ${p.bold(to)} by compare-and-set, ${p.bold(`epoch ${from} -> ${moved.epoch}`)}; ` +
            `${to} accepts writes in ${this.tuning.primaryLeaseMs} ms, once ${previous}'s lease on the role has run out ` +
            `(the same move by hand: meridian registry primary ${KeyValue.typeName} --move-to ${to} --registry ${this.network!.registryUrl}${this.identities === undefined ? "" : " --ca <ca> --cert <operator cert> --key <operator key>"})`,
        );
        return moved.epoch;
      } catch (e) {
        if (this.elapsed() > phase.endMs) throw new Error(`the primary could not be moved: ${(e as Error).message}`);
        await this.sleep(300);
      }
    }
  }

  /**
   * A region tries to move the primary to itself with its own registry identity: an instance of
   * the service, not an operator. The registry must refuse it (PERMISSION_DENIED); the outcome
   * is the `authorization` invariant. Only where the registry authorizes by certificate (the
   * embedded registry without --plaintext).
   */
  private async rogueMove(): Promise<void> {
    const p = this.paint;
    const region = SECONDARY_CUT;
    if (this.identities === undefined || this.options.registry !== "embedded") {
      this.event(p.dim(`no authorization check: the registry ${this.options.plaintext ? "runs without authentication (--plaintext)" : "is etcd, which the demo runs without authentication"}`));
      return;
    }
    const reply = await this.regions.get(region)!.request({ type: "rogue-move", to: region });
    const move = reply.move!;
    const refused = !move.moved && move.code === "PERMISSION_DENIED";
    this.authorization = {
      id: "authorization",
      title: "Authorization",
      ok: refused,
      detail: refused
        ? `a primary move by ${region} (an instance, not an operator) was refused: PERMISSION_DENIED`
        : `a primary move by ${region} (an instance, not an operator) was not refused with PERMISSION_DENIED: ${move.code ?? "moved"} ${move.message}`,
    };
    if (refused) this.event(`${p.cyan("authorization")}: ${region}, an instance of the service without the operator role, tried to move the primary to itself: refused, ${move.code} "${move.message}"`);
    else this.event(p.red(`AUTHORIZATION FAILED: ${region} tried to move the primary to itself without the operator role: ${move.code ?? "moved"} ${move.message}`));
  }

  /**
   * The pause case: an instance of the primary admits a write (fencing passed), then its whole
   * process is frozen (SIGSTOP) between admitting and writing, as a long GC pause or a stalled
   * event loop would do. Meanwhile the operator moves the primary back and the new primary
   * writes; then the old instance thaws (SIGCONT) and goes on with its write, which the store's
   * fence must refuse (FAILED_PRECONDITION), since the primary that admitted it is gone.
   */
  private async pausedPrimary(phase: TimedPhase): Promise<void> {
    const p = this.paint;
    const region = (this.primary?.region ?? SECOND_PRIMARY) as Region;
    const to = region === FIRST_PRIMARY ? SECOND_PRIMARY : FIRST_PRIMARY;
    const handle = this.regions.get(region)!;
    const admitted = new Promise<Extract<FromRegion, { type: "paused" }>>((resolve) => (this.onPaused = resolve));
    const write = handle.request({ type: "paused-write" }, 120_000);
    const notice = await this.race(Promise.race([admitted, this.timeout(10_000, `${region}'s paused write to be admitted`)]));
    this.onPaused = undefined;
    handle.child.kill("SIGSTOP");
    this.event(`${p.yellow("paused")}: an instance of ${region} admitted a write (epoch ${notice.epoch}) and its process is frozen before it writes (SIGSTOP)`);
    const epoch = await this.movePrimary(phase, to);
    // Thaw once the new primary has written (or the phase nears its end).
    while (!this.log!.writes.some((w) => w.stamp.e === epoch) && this.elapsed() < phase.endMs - 1500) await this.sleep(100);
    const first = this.log!.writes.find((w) => w.stamp.e === epoch);
    handle.child.kill("SIGCONT");
    this.event(
      `${p.yellow("thawed")}: ${region} goes on with the write it admitted under epoch ${notice.epoch}` +
        (first ? `, after ${to} wrote ${first.key} at revision ${first.revision} under epoch ${epoch}` : ""),
    );
    await handle.request({ type: "resume" });
    const op = (await this.race(write)).op!;
    if (op.outcome === "ok") this.event(p.red(`FENCING FAILED: the paused instance of ${region} wrote after the primary moved (revision ${op.revision})`));
    else this.event(`${p.cyan("fencing")}: the paused instance's write was refused by the store's fence: ${op.code} "${op.message}"`);
  }

  /** Sends a write with an old epoch straight to a region's instance; it must be refused. */
  private async probe(region: Region, epoch: number, who: string): Promise<void> {
    const p = this.paint;
    const reply = await this.regions.get(region)!.request({ type: "probe", epoch });
    const op = reply.op!;
    if (op.outcome === "ok") this.event(p.red(`FENCING FAILED: ${who} (${region}) accepted a write sent with epoch ${epoch}`));
    else this.event(`${p.cyan("fencing")}: a write sent straight to ${who} (${region}) with epoch ${epoch} was refused: ${op.code} "${op.message}"`);
  }

  private liveRegions(): RegionLive[] {
    const t = now();
    while (this.recent.length > 0 && this.recent[0]!.ret < t - 2000) this.recent.shift();
    return REGIONS.map((region) => {
      const live = this.live.get(region);
      return {
        region,
        primary: this.primary?.region === region,
        cut: this.network!.cut.has(region),
        stats: windowStats(
          this.recent.filter((op) => op.region === region && !op.probe),
          2000,
        ),
        replicaStaleMs: live?.replicaStaleMs ?? Infinity,
        registryReachable: live?.registryReachable ?? false,
      };
    });
  }

  private writeCounts(): { ok: number; unknown: number; failed: number } {
    const counts = { ok: 0, unknown: 0, failed: 0 };
    for (const op of this.ops) if (op.kind !== "get" && !op.probe) counts[op.outcome === "ok" ? "ok" : op.outcome]++;
    return counts;
  }

  /** Waits until every region's replica holds the store's newest revision of every key. */
  private async converge(log: StoreLog, timeoutMs: number): Promise<Map<Region, Record<string, number>>> {
    const started = now();
    for (;;) {
      const replicas = new Map<Region, Record<string, number>>();
      for (const [region, h] of this.regions) replicas.set(region, (await h.request({ type: "replica-state" })).revisions ?? {});
      const latest = log.latest();
      const behind = [...replicas].filter(([, revs]) => [...latest].some(([key, w]) => (revs[key] ?? 0) !== w.revision)).map(([r]) => r);
      if (behind.length === 0) {
        this.event(`every replica holds the newest revision of every key (${Math.round(now() - started)} ms after the traffic stopped)`);
        return replicas;
      }
      if (now() - started > timeoutMs) {
        this.event(this.paint.red(`replicas still behind after ${timeoutMs} ms: ${behind.join(", ")}`));
        return replicas;
      }
      await this.sleep(100);
    }
  }

  /** Gives the auditor's watch time to see every acknowledged write. */
  private async waitForLog(log: StoreLog): Promise<void> {
    const maxRevision = Math.max(0, ...this.ops.filter((op) => op.kind !== "get" && op.outcome === "ok" && op.revision !== undefined).map((op) => op.revision!));
    for (let i = 0; i < 50 && Math.max(0, ...log.writes.map((w) => w.revision)) < maxRevision; i++) await this.sleep(100);
  }

  private printSummary(rows: readonly PhaseRegionRow[], result: AuditResult, ok: boolean): void {
    const p = this.paint;
    const lines = [
      "",
      `${p.bold("Summary")} per phase and region. Latency: every call, failed ones included. Reads and writes ok: their availability.`,
      "Fallback: linearizable reads served by the local replica, saying so. Stale reads: local reads that missed a write acknowledged",
      "before they began. Propagation: p50 / p99 from a write's commit at the primary until this region's replica had it.",
      "",
      ...summaryTable(rows),
      "",
      p.bold("Invariants"),
      ...verdictLines(result, p),
      "",
      ok ? p.green(p.bold("PASS: every invariant held")) : p.red(p.bold("FAIL: an invariant was broken (details above)")),
    ];
    if (!ok) lines.push(p.dim(`region logs: ${this.logDir}`));
    this.out.write(lines.join("\n") + "\n");
  }

  private writeJson(path: string, phases: readonly TimedPhase[], rows: readonly PhaseRegionRow[], result: AuditResult, ok: boolean): void {
    const lin = result.linearizability;
    writeFileSync(
      path,
      JSON.stringify(
        {
          ok,
          options: this.options,
          description: this.network?.description,
          phases: phases.map(({ id, title, story, startMs, endMs }) => ({ id, title, story, startMs, endMs })),
          rows,
          invariants: result.invariants,
          linearizability: { verdict: lin.verdict, elapsedMs: lin.elapsedMs, ...(lin.ok ? { operations: lin.operations, keys: lin.keys } : { reason: lin.reason }) },
          writes: result.writes,
          epochs: result.epochs,
          probes: result.probes,
          events: this.events,
        },
        null,
        2,
      ),
    );
  }

  /** Stops everything this run started, in reverse order. Safe to call twice. */
  async cleanup(keepLogs: boolean): Promise<void> {
    for (const c of this.cleanups.splice(0).reverse()) await c().catch(() => undefined);
    if (!keepLogs && process.env.MERIDIAN_KEEP_DEMO_LOGS === undefined) rmSync(this.logDir, { recursive: true, force: true });
  }

  /** Synchronous last resort on exit. */
  killNow(): void {
    for (const h of this.regions.values()) h.killNow();
  }

  get wasInterrupted(): boolean {
    return this.interrupted;
  }
}

/** How long a failure waits for a signal that may have caused it before it is reported, ms. */
const SIGNAL_GRACE_MS = 200;

async function main(): Promise<number> {
  let options: DemoOptions | "help";
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const demo = new Demo(options);
  process.on("exit", () => demo.killNow());
  const onSignal = () => demo.abort(new InterruptedError("interrupted"));
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let code: number;
  try {
    code = await demo.run();
  } catch (e) {
    // Ctrl-C reaches every process of the terminal's group (etcd, nats-server, the regions'
    // loaders): what that breaks there can be seen here before this process's own SIGINT is
    // handled. Let a pending signal land before deciding, so the interruption wins over the
    // failures it caused.
    if (!demo.wasInterrupted) await new Promise((resolve) => setTimeout(resolve, SIGNAL_GRACE_MS));
    if (demo.wasInterrupted) {
      process.stderr.write("\ninterrupted: stopping every process the demo started...\n");
      code = 130;
    } else if (e instanceof NotAvailableError) {
      process.stderr.write(`\n${e.message}\n`);
      code = 2;
    } else {
      process.stderr.write(`\nthe demo failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      code = 2;
    }
  }
  await demo.cleanup(code === 1 || code === 2);
  return code;
}

process.exitCode = await main();
// Anything still holding the event loop (a socket in close) must not keep the demo alive.
setTimeout(() => process.exit(process.exitCode), 200).unref();
