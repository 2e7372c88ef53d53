/**
 * kill -9 loses no acknowledged write: the real `meridian registry serve` runs as a child process
 * on a data directory, clients hammer it with writes, it is SIGKILLed at random moments (three
 * times) and restarted on the same folder. Every acknowledged write must be there with its
 * revision, and every write whose outcome was unknown must resolve consistently by its write id
 * (applied: the key holds it; not applied: the key is absent). Bounded: a few seconds of load.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createRemoteStore, OutcomeUnknownError, StoreError, newWriteId, type Store } from "meridian-rpc/registry";
import { TcpClientTransport } from "meridian-rpc/transports/tcp";
import { spawnMeridian } from "../support/meridian-cli.js";
import { freePort, sleep } from "../support/processes.js";

/** Runs `meridian <args>` through tsx; `ready` resolves with the first stdout line. */
function meridian(args: string[]): { child: ChildProcess; ready: Promise<string>; exited: Promise<number | null>; output: () => string } {
  const child = spawnMeridian(args);
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const ready = new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out.split("\n")[0]!);
    });
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    void exited.then((code) => reject(new Error(`meridian ${args[1]} exited with ${code} before it was ready:\n${out}`)));
  });
  ready.catch(() => undefined);
  return { child, ready, exited, output: () => out };
}

/** Retries a read while the client's connection pool still backs off from the restarts (bounded). */
async function retrying<T>(op: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await op();
    } catch (e) {
      if (!(e instanceof StoreError && e.code === "UNAVAILABLE") || Date.now() > deadline) throw e;
      await sleep(200);
    }
  }
}

/** What a writer learned of one write; "not-sent" also covers a refusal before the handler. */
type Outcome = { key: string; value: string; writeId: string } & ({ kind: "acked"; revision: number } | { kind: "unknown" } | { kind: "not-sent" });

describe("durable registry - kill -9", () => {
  const dir = mkdtempSync(join(tmpdir(), "meridian-kill-"));
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("durable - SIGKILL at random moments under write load loses no acknowledged write; unknown ones resolve consistently", async () => {
    const port = await freePort();
    const dataDir = join(dir, "data");
    const serve = () => {
      const server = meridian(["registry", "serve", "--data", dataDir, "--listen", `127.0.0.1:${port}`, "--insecure"]);
      children.push(server.child);
      return server;
    };
    let server = serve();
    expect(await server.ready).toMatch(/serving .* on 127\.0\.0\.1:\d+ \(plaintext, no authentication, fsync always\)/);
    // A second server on the same folder is refused, naming the process that holds it.
    const intruder = meridian(["registry", "serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--insecure"]);
    children.push(intruder.child);
    expect(await intruder.exited).toBe(1);
    expect(intruder.output()).toContain(`is in use by process ${server.child.pid}`);

    const stores: Store[] = Array.from({ length: 6 }, () =>
      createRemoteStore({ transport: new TcpClientTransport({ connectTimeoutMs: 300 }), address: `127.0.0.1:${port}`, timeoutMs: 1500 }),
    );
    const outcomes: Outcome[] = [];
    const unexpected: unknown[] = [];
    let stop = false;
    let seq = 0;
    const writer = async (store: Store, w: number) => {
      while (!stop) {
        const key = `load/${w}/${seq++}`;
        const value = `v-${key}`;
        const writeId = newWriteId();
        try {
          const r = await store.compareAndSet(key, value, 0, { writeId });
          if (!r.ok) throw new Error(`create of a fresh key ${key} failed its compare`);
          outcomes.push({ key, value, writeId, kind: "acked", revision: r.revision });
        } catch (e) {
          if (e instanceof OutcomeUnknownError) outcomes.push({ key, value, writeId, kind: "unknown" });
          // Never sent, or refused before the handler (a restarted server sheds the backlog): not applied.
          else if (e instanceof StoreError && (e.code === "UNAVAILABLE" || e.code === "RESOURCE_EXHAUSTED")) outcomes.push({ key, value, writeId, kind: "not-sent" });
          else {
            unexpected.push(e);
            return;
          }
          await sleep(30);
        }
      }
    };
    const writers = stores.map((s, w) => writer(s, w));

    const kills = 3;
    for (let k = 0; k < kills; k++) {
      await sleep(400 + Math.random() * 800);
      const before = outcomes.filter((o) => o.kind === "acked").length;
      server.child.kill("SIGKILL");
      expect(await server.exited).toBeNull();
      await sleep(100);
      server = serve();
      await server.ready;
      // The load really was running when the server died.
      expect(before).toBeGreaterThan(0);
    }
    await sleep(500);
    stop = true;
    await Promise.all(writers);
    expect(unexpected).toEqual([]);

    const checker = stores[0]!;
    const acked = outcomes.filter((o) => o.kind === "acked");
    const unknown = outcomes.filter((o) => o.kind === "unknown");
    expect(acked.length).toBeGreaterThan(50);
    const all = new Map((await retrying(() => checker.list("load/"))).kvs.map((kv) => [kv.key, kv]));
    for (const o of acked) {
      expect(all.get(o.key)?.value, `acknowledged write ${o.key} lost`).toBe(o.value);
      if (o.kind === "acked") expect(all.get(o.key)?.modRevision).toBe(o.revision);
    }
    for (const o of acked.slice(0, 30)) {
      if (o.kind === "acked") expect(await retrying(() => checker.resolveWrite(o.writeId))).toEqual({ status: "applied", revision: o.revision });
    }
    for (const o of [...unknown, ...outcomes.filter((x) => x.kind === "not-sent")]) {
      const resolution = await retrying(() => checker.resolveWrite(o.writeId));
      if (resolution.status === "applied") expect(all.get(o.key)?.value).toBe(o.value);
      else expect(all.has(o.key), `${o.key} is in the store but its write resolved as not applied`).toBe(false);
      expect(o.kind === "not-sent" && resolution.status === "applied", `${o.key} was never sent but applied`).toBe(false);
    }
    // Nothing appeared that no writer tried.
    const tried = new Set(outcomes.map((o) => o.key));
    for (const key of all.keys()) expect(tried.has(key)).toBe(true);

    // The status command against the restarted server.
    const status = meridian(["registry", "status", "--registry", `embedded://127.0.0.1:${port}`]);
    children.push(status.child);
    expect(await status.exited, status.output()).toBe(0);
    expect(status.output()).toMatch(/: ok\n/);
    expect(status.output()).toMatch(new RegExp(`${all.size} keys`));
    expect(status.output()).toMatch(/fsync always/);

    await Promise.all(stores.map((s) => s.close()));
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    console.log(`kill -9 test: ${acked.length} acknowledged, ${unknown.length} unknown, ${outcomes.length - acked.length - unknown.length} not sent, ${kills} kills`);
  }, 90_000);
});
