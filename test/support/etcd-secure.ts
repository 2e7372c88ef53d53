/**
 * One real etcd member on 127.0.0.1 as production runs it, for the etcd TLS and authentication
 * tests: client-certificate TLS (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth)
 * and/or authentication enabled (a root user, through enableEtcdAuth). A random free port, data
 * in a temporary folder; killed and removed on stop(), on exit, and by a watchdog (ProcessGroup).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { type EtcdConnectOptions, enableEtcdAuth } from "meridian-rpc/registry/etcd";
import { etcd3Options } from "../../runtime/registry/etcd-client.js";
import type { ClientTls } from "meridian-rpc";
import { makeCerts, type TestCerts } from "./certs.js";
import { ETCD_MISSING, findEtcd } from "./etcd-cluster.js";
import { freePort, ProcessGroup, sleep, startWithRetries, type ProcessSlot } from "./processes.js";

/**
 * Test certificates with these extra client names (CN=<name>), for a secure etcd's suites; throws
 * saying what to install when openssl is missing (the etcd gate has already said etcd is there).
 */
export function etcdTestCerts(clients: readonly string[]): TestCerts {
  const certs = makeCerts({ clients });
  if (certs === undefined) throw new Error("openssl is not installed: run scripts/setup.sh (Debian's openssl package) to make the etcd TLS test certificates");
  return certs;
}

/** Options of startSecureEtcd. */
export interface SecureEtcdOptions {
  /**
   * Serve TLS with this certificate and key (a server certificate for 127.0.0.1), trusting client
   * certificates of `ca`; with `clientCertAuth` (default true) a client without one is refused.
   */
  readonly tls?: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer; readonly clientCertAuth?: boolean };
  /**
   * How the harness itself connects (to check health and enable authentication): a client
   * certificate of `tls.ca` when the member requires one.
   */
  readonly adminTls?: ClientTls;
  /** Enable authentication, with a root user of this password. */
  readonly rootPassword?: string;
  /** How long to wait for the member to answer, ms. Default 30 000. */
  readonly startTimeoutMs?: number;
}

/** A running member; see the module comment. */
export interface SecureEtcd {
  /** `https://127.0.0.1:port` with TLS, else `http://127.0.0.1:port`. */
  readonly url: string;
  readonly port: number;
  /** How to connect as root (TLS as the harness does, and the root user when authentication is on). */
  readonly root: EtcdConnectOptions;
  /** The member's log, for failure messages. */
  logTail(): string;
  /** Kills the member and removes its data. */
  stop(): Promise<void>;
}

/** Starts one member with the options' TLS and authentication, and waits until it answers. */
export async function startSecureEtcd(options: SecureEtcdOptions): Promise<SecureEtcd> {
  const bin = findEtcd();
  if (!bin) throw new Error(ETCD_MISSING);
  return startWithRetries(() => new SecureEtcdImpl(bin, options));
}

class SecureEtcdImpl implements SecureEtcd {
  private readonly slots: ProcessSlot[] = [];
  private readonly processes = new ProcessGroup("meridian-etcd-secure-", this.slots, "MERIDIAN_KEEP_ETCD");
  private readonly slot: ProcessSlot = { child: undefined, exited: undefined, earlyExit: undefined, logFile: join(this.processes.dataDir, "etcd.log") };
  private clientPort = 0;

  constructor(
    private readonly bin: string,
    private readonly options: SecureEtcdOptions,
  ) {
    this.slots.push(this.slot);
  }

  get port(): number {
    return this.clientPort;
  }

  get url(): string {
    return `${this.options.tls ? "https" : "http"}://127.0.0.1:${this.clientPort}`;
  }

  get root(): EtcdConnectOptions {
    return {
      hosts: this.url,
      ...(this.options.adminTls ? { tls: this.options.adminTls } : {}),
      ...(this.options.rootPassword === undefined ? {} : { auth: { username: "root", password: this.options.rootPassword } }),
    };
  }

  logTail(): string {
    return this.processes.tail(this.slot);
  }

  async start(): Promise<void> {
    const dir = this.processes.dataDir;
    this.clientPort = await freePort();
    const peerPort = await freePort();
    const tls = this.options.tls;
    const args = [
      "--name=secure",
      `--data-dir=${join(dir, "data")}`,
      `--listen-client-urls=${this.url}`,
      `--advertise-client-urls=${this.url}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=secure=http://127.0.0.1:${peerPort}`,
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=warn",
    ];
    if (tls) {
      mkdirSync(join(dir, "tls"));
      const file = (name: string, pem: Buffer): string => {
        const path = join(dir, "tls", name);
        writeFileSync(path, pem, { mode: 0o600 });
        return path;
      };
      args.push(`--cert-file=${file("server.pem", tls.cert)}`, `--key-file=${file("server.key", tls.key)}`, `--trusted-ca-file=${file("ca.pem", tls.ca)}`);
      if (tls.clientCertAuth ?? true) args.push("--client-cert-auth");
    }
    this.processes.startWatchdog();
    this.processes.spawn(this.slot, this.bin, args);
    await this.waitAnswering(this.options.startTimeoutMs ?? 30_000);
    if (this.options.rootPassword !== undefined) {
      await enableEtcdAuth({ hosts: this.url, ...(this.options.adminTls ? { tls: this.options.adminTls } : {}), rootPassword: this.options.rootPassword });
    }
  }

  /** Polls the member's status (no authentication needed) until it answers with a leader. */
  private async waitAnswering(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const client = new Etcd3(etcd3Options(this.url, { hosts: this.url, ...(this.options.adminTls ? { tls: this.options.adminTls } : {}) }, 2000));
    let last = "no answer yet";
    try {
      while (Date.now() < deadline) {
        if (this.slot.earlyExit !== undefined) throw new Error(`etcd ${this.slot.earlyExit} during start; log:\n${this.logTail()}`);
        try {
          const status = await client.maintenance.status({ deadline: Date.now() + 1000 });
          if (status.leader !== "0") return;
          last = "no leader yet";
        } catch (e) {
          last = e instanceof Error ? e.message : String(e);
        }
        await sleep(100);
      }
    } finally {
      client.close();
    }
    throw new Error(`etcd at ${this.url} did not answer within ${timeoutMs} ms (${last}); log:\n${this.logTail()}`);
  }

  async stop(): Promise<void> {
    await this.processes.stop();
  }
}
