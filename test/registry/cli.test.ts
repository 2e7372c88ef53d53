import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRegistry, type Registry, serveRegistry, type RegistryServer, createRemoteStore, type Store } from "meridian-rpc/registry";
import { registryCommand } from "../../cli/registry.js";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { freePort } from "../support/etcd-cluster.js";
import { meridianChild, meridianInProcess } from "../support/meridian-cli.js";

const SERVICE = "demo.Accounts";

/** `meridian <args>` in a child process. */
const meridian = (args: string[]) => meridianChild(args);
/** `meridian <args>` in this process. */
const run = (args: string[]) => meridianInProcess(args);

describe("cli - meridian registry primary", () => {
  let server: RegistryServer;
  let registry: Registry;
  let url: string;

  beforeAll(async () => {
    server = await serveRegistry({ insecure: true, transport: new TcpServerTransport() });
    url = `embedded://${server.address}`;
    registry = createRegistry({
      store: createRemoteStore({ transport: new TcpClientTransport(), address: server.address }),
      region: "test",
      primaryLeaseMs: 1500,
    });
    await registry.ensurePrimary(SERVICE, "us-east");
  });
  afterAll(async () => {
    await registry?.close();
    await server?.close();
  });

  it("cli - prints the primary and moves it by compare-and-set, end to end through the meridian command", async () => {
    const read = await meridian(["registry", "primary", SERVICE, "--registry", url]);
    expect(read.stderr).toBe("");
    expect(read.status).toBe(0);
    expect(read.stdout).toMatch(/^demo\.Accounts: primary us-east, epoch 1 \(lease 1500 ms, since .*, revision \d+\)\n$/);

    const move = await meridian(["registry", "primary", SERVICE, "--move-to", "eu-west", "--registry", url]);
    expect(move.stderr).toBe("");
    expect(move.status).toBe(0);
    expect(move.stdout).toContain("demo.Accounts: primary us-east, epoch 1");
    expect(move.stdout).toMatch(/moved demo\.Accounts: us-east \(epoch 1\) -> eu-west \(epoch 2, revision \d+\); eu-west accepts writes once us-east's lease \(1500 ms\)/);
    expect(await registry.primary(SERVICE)).toMatchObject({ region: "eu-west", epoch: 2, leaseMs: 1500, previousLeaseMs: 1500 });
  }, 60_000);

  it("cli - a move from an epoch that is no longer current fails and changes nothing", async () => {
    const before = (await registry.primary(SERVICE))!;
    const stale = await run(["registry", "primary", SERVICE, "--move-to", "cn-north", "--expect-epoch", String(before.epoch - 1), "--registry", url]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain(`not moved: the primary of ${SERVICE} is no longer at epoch ${before.epoch - 1} (now ${before.region}, epoch ${before.epoch})`);
    expect(await registry.primary(SERVICE)).toMatchObject({ region: before.region, epoch: before.epoch, revision: before.revision });
  });

  it("cli - a move that loses its compare-and-set to a concurrent move fails clearly", async () => {
    const before = (await registry.primary(SERVICE))!;
    // The command's store: just before the command's write to the primary record, another
    // operator moves the primary.
    let raced = false;
    const openStore = async (): Promise<Store> => {
      const inner = createRemoteStore({ transport: new TcpClientTransport(), address: server.address });
      return {
        ...inner,
        kind: inner.kind,
        get: (k, o) => inner.get(k, o),
        list: (p, o) => inner.list(p, o),
        delete: (k, e, o) => inner.delete(k, e, o),
        grantLease: (t, o) => inner.grantLease(t, o),
        keepAlive: (l, o) => inner.keepAlive(l, o),
        revokeLease: (l, o) => inner.revokeLease(l, o),
        resolveWrite: (w, o) => inner.resolveWrite(w, o),
        watch: (p, f, o) => inner.watch(p, f, o),
        close: () => inner.close(),
        async compareAndSet(key, value, expected, o) {
          if (key.endsWith(`/${SERVICE}/primary`) && !raced) {
            raced = true;
            await registry.movePrimary(SERVICE, "us-east");
          }
          return inner.compareAndSet(key, value, expected, o);
        },
      };
    };
    let stdout = "";
    let stderr = "";
    const code = await registryCommand(["primary", SERVICE, "--move-to", "cn-north", "--registry", url], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) }, { openStore });
    expect(raced).toBe(true);
    expect(code).toBe(1);
    expect(stdout).toContain(`primary ${before.region}, epoch ${before.epoch}`);
    expect(stderr).toContain(`no longer at epoch ${before.epoch} (now us-east, epoch ${before.epoch + 1}); someone changed it meanwhile`);
    expect(await registry.primary(SERVICE)).toMatchObject({ region: "us-east", epoch: before.epoch + 1 });
  });

  it("cli - json output, a service without a primary, the current region, bad usage and an unreachable registry", async () => {
    const json = await run(["registry", "primary", SERVICE, "--registry", url, "--json"]);
    expect(json.code).toBe(0);
    const current = (await registry.primary(SERVICE))!;
    expect(JSON.parse(json.stdout)).toEqual({ service: SERVICE, primary: current });

    const same = await run(["registry", "primary", SERVICE, "--move-to", current.region, "--registry", url]);
    expect(same.code).toBe(0);
    expect(same.stdout).toContain(`${current.region} is already the primary (epoch ${current.epoch}); nothing changed`);

    const none = await run(["registry", "primary", "demo.Nothing", "--registry", url]);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe("demo.Nothing: no primary region (set one with --move-to <region>)\n");
    const first = await run(["registry", "primary", "demo.Nothing", "--move-to", "eu-west", "--registry", url]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("moved demo.Nothing: none -> eu-west (epoch 1");

    const badUrl = await run(["registry", "primary", SERVICE, "--registry", "http://127.0.0.1:2379"]);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain("--registry must be embedded://host:port or etcd://host:port[,host:port...]");
    expect((await run(["registry", "primary", "--registry", url])).code).toBe(2);
    expect((await run(["registry", "lease", SERVICE, "--registry", url])).code).toBe(2);

    const closed = await freePort();
    const unreachable = await run(["registry", "primary", SERVICE, "--registry", `embedded://127.0.0.1:${closed}`, "--timeout", "500"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(`cannot read the primary of ${SERVICE} from embedded://127.0.0.1:${closed}`);
  });
});
