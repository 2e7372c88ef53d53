/**
 * The embedded registry server against hostile input: whatever a peer puts in a request (huge
 * keys, ids and prefixes, absurd TTLs and revisions), it answers a response or a short error and
 * goes on serving; it never echoes a peer's input at length, never spins, never ends the process.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveRegistry, type RegistryServer, RegistryService as Registry } from "meridian-rpc/registry";
import { createClient, type Client, Code, RpcError } from "meridian-rpc";
import { seededRandom } from "../../tools/random/index.js";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";

/** The codes a registry may answer bad input with; anything else (INTERNAL, UNKNOWN) is a bug. */
const EXPECTED = new Set([Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.FAILED_PRECONDITION, Code.RESOURCE_EXHAUSTED]);

describe("embedded registry server - hostile input", () => {
  let server: RegistryServer;
  let transport: TcpClientTransport;
  let client: Client<typeof Registry>;
  beforeAll(async () => {
    server = await serveRegistry({ insecure: true, transport: new TcpServerTransport(), maxKeys: 2000, maxLeases: 500 });
    transport = new TcpClientTransport();
    client = createClient(Registry, { transport, endpoints: [{ address: server.address }], timeoutMs: 5000 });
  });
  afterAll(async () => {
    await transport?.close();
    await server?.close();
  });

  /** The call's code and message length (0 for a success). */
  async function outcome(call: () => Promise<unknown>): Promise<{ code: Code; messageLength: number }> {
    try {
      await call();
      return { code: Code.OK, messageLength: 0 };
    } catch (e) {
      if (!(e instanceof RpcError)) throw e;
      return { code: e.code, messageLength: e.message.length };
    }
  }

  it("hostile - huge keys, ids and prefixes get short INVALID_ARGUMENT answers, never an echo", async () => {
    const huge = "k".repeat(3_500_000);
    const calls = [
      () => client.compareAndSet({ key: huge, value: "v", expectedModRevision: 0, lease: "", writeId: "w1", fenceKey: "", fenceModRevision: 0 }),
      () => client.compareAndSet({ key: "k", value: "v", expectedModRevision: 0, lease: "", writeId: huge, fenceKey: "", fenceModRevision: 0 }),
      () => client.compareAndSet({ key: "k", value: "v", expectedModRevision: 0, lease: huge, writeId: "w2", fenceKey: "", fenceModRevision: 0 }),
      () => client.compareAndSet({ key: "k", value: "v", expectedModRevision: 0, lease: "", writeId: "w3", fenceKey: huge, fenceModRevision: 1 }),
      () => client.compareAndSet({ key: "k", value: huge, expectedModRevision: 0, lease: "", writeId: "w4", fenceKey: "", fenceModRevision: 0 }),
      () => client.delete({ key: huge, writeId: "w5", fenceKey: "", fenceModRevision: 0 }),
      () => client.resolveWrite({ writeId: huge }),
      () => client.keepAlive({ lease: huge }),
    ];
    for (const call of calls) {
      const r = await outcome(call);
      expect(EXPECTED.has(r.code), `code ${Code[r.code]}`).toBe(true);
      expect(r.code).not.toBe(Code.OK);
      expect(r.messageLength).toBeLessThan(1000);
    }
    expect((await client.get({ key: "k" })).kv).toBeUndefined();
  }, 60_000);

  it("hostile - absurd TTLs and revisions are refused or harmless; the server keeps its pace", async () => {
    expect((await outcome(() => client.grantLease({ ttlMs: Number.MAX_SAFE_INTEGER }))).code).toBe(Code.INVALID_ARGUMENT);
    expect((await outcome(() => client.grantLease({ ttlMs: -5 }))).code).toBe(Code.INVALID_ARGUMENT);
    // The longest allowed lease: its expiry timer is past setTimeout's range and must not spin.
    const lease = await client.grantLease({ ttlMs: 7 * 24 * 3600_000 });
    const cpu = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const usedMs = (process.cpuUsage(cpu).user + process.cpuUsage(cpu).system) / 1000;
    expect(usedMs).toBeLessThan(400);
    await client.revokeLease({ lease: lease.id });
    for (const revision of [-1, Number.MAX_SAFE_INTEGER]) {
      const r = await client.compareAndSet({ key: "r", value: "v", expectedModRevision: revision, lease: "", writeId: `r${revision < 0 ? "n" : "p"}`, fenceKey: "", fenceModRevision: 0 });
      expect(r.ok).toBe(false);
      const w = await client.watch({ prefix: "", fromRevision: revision, waitMs: 10, limit: 0, session: "" });
      expect(w.revision).toBeGreaterThan(0);
    }
  }, 30_000);

  it("hostile - limits on keys and leases answer RESOURCE_EXHAUSTED and the server serves on", async () => {
    let exhausted = 0;
    for (let i = 0; i < 520; i++) {
      const r = await outcome(() => client.grantLease({ ttlMs: 60_000 }));
      if (r.code === Code.RESOURCE_EXHAUSTED) exhausted++;
    }
    expect(exhausted).toBeGreaterThan(0);
    const writes = Array.from({ length: 2100 }, (_, i) =>
      outcome(() => client.compareAndSet({ key: `many/${i}`, value: "x", expectedModRevision: 0, lease: "", writeId: `many-${i}`, fenceKey: "", fenceModRevision: 0 })),
    );
    const codes = (await Promise.all(writes)).map((r) => r.code);
    expect(codes.filter((c) => c === Code.RESOURCE_EXHAUSTED).length).toBeGreaterThan(0);
    expect(codes.every((c) => EXPECTED.has(c))).toBe(true);
    expect((await client.get({ key: "many/0" })).kv?.value).toBe("x");
  }, 60_000);

  it("hostile - a seeded fuzz of 400 requests with random fields never gets INTERNAL or a long message", async () => {
    const random = seededRandom(15);
    const int = (max: number) => Math.floor(random() * max);
    const text = () => {
      const lengths = [0, 1, 10, 100, 5000, 200_000];
      const n = lengths[int(lengths.length)]!;
      return String.fromCharCode(32 + int(90)).repeat(n);
    };
    const number = () => [0, 1, -1, 2 ** 31, -(2 ** 40), Number.MAX_SAFE_INTEGER][int(6)]!;
    for (let i = 0; i < 400; i++) {
      const method = int(9);
      const r = await outcome(() => {
        switch (method) {
          case 0:
            return client.get({ key: text() });
          case 1:
            return client.list({ prefix: text() });
          case 2:
            return client.compareAndSet({ key: text(), value: text(), expectedModRevision: number(), lease: text(), writeId: text(), fenceKey: text(), fenceModRevision: number() });
          case 3:
            return client.delete({ key: text(), expectedModRevision: random() < 0.5 ? undefined : number(), writeId: text(), fenceKey: text(), fenceModRevision: number() });
          case 4:
            return client.grantLease({ ttlMs: number() });
          case 5:
            return client.keepAlive({ lease: text() });
          case 6:
            return client.revokeLease({ lease: text() });
          case 7:
            return client.resolveWrite({ writeId: text() });
          default:
            return client.watch({ prefix: text(), fromRevision: number(), waitMs: int(20), limit: int(3), session: text() });
        }
      });
      expect(EXPECTED.has(r.code), `request ${i} (method ${method}) answered ${Code[r.code]}`).toBe(true);
      expect(r.messageLength).toBeLessThan(1000);
    }
    expect((await client.get({ key: "still-here" })).revision).toBeGreaterThan(0);
  }, 120_000);
});
