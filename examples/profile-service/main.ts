/**
 * profile-service: a two-region service with its own database, written the way docs/registry.md
 * recommends. Two regions (fra, sg), two instances each, on one embedded registry; the profiles
 * live in the service's own database (here a small in-memory one, standing in for Postgres or
 * the like in the primary region), fenced with the primary's epoch as a fencing token.
 *
 *   npm run example:profile-service
 *
 * It writes in fra (the first primary), reads in sg, moves the primary to sg, writes again from
 * fra's client (routed to sg once sg has waited out fra's lease), and then shows a write that an
 * instance of fra admitted under epoch 1 and that stalled past the move being refused by the
 * database's fence.
 */
import {
  EmbeddedNode,
  checkFencingToken,
  createEmbeddedStore,
  createRegistry,
  fencingMiddleware,
  fencingToken,
  listenAndRegister,
  routingOptions,
  type RegisteredServer,
  type Registry,
} from "meridian-rpc/registry";
import { Code, HeaderKeys, RpcError, createClient, createServer, type Client, type Headers } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { ProfileService, type Profile } from "./gen/profile.js";

/**
 * The service's own database. Every write is one transaction that checks and raises the fence
 * (the highest fencing token seen) and writes the row; in SQL:
 *
 *   BEGIN;
 *   UPDATE fence SET epoch = $token WHERE id = 1 AND epoch <= $token;  -- 0 rows: refused, ROLLBACK
 *   UPDATE profiles SET name = $name, version = version + 1 WHERE id = $id;
 *   COMMIT;
 *
 * Here a synchronous method is the transaction: nothing else runs in between.
 */
class ProfileDb {
  private fence: number | undefined;
  private readonly rows = new Map<string, { name: string; version: bigint }>();

  /** Writes a profile's name under `token`; StaleTokenError when a newer primary has written. */
  setName(id: string, name: string, token: number): Profile {
    this.fence = checkFencingToken(this.fence, token);
    const version = (this.rows.get(id)?.version ?? 0n) + 1n;
    this.rows.set(id, { name, version });
    return { id, name, version };
  }

  get(id: string): Profile {
    const row = this.rows.get(id);
    return { id, name: row?.name ?? "", version: row?.version ?? 0n };
  }
}

const REGIONS = ["fra", "sg"] as const;
const db = new ProfileDb();
const node = await EmbeddedNode.open();
const registries = new Map<string, Registry>();
const servers: RegisteredServer[] = [];
const transports: TcpClientTransport[] = [];

for (const region of REGIONS) {
  const registry = createRegistry({ store: await createEmbeddedStore({ node }), region, primaryLeaseMs: 1000 });
  registries.set(region, registry);
  for (let instance = 0; instance < 2; instance++) {
    const server = createServer({ transport: new TcpServerTransport({ port: 0 }), region, middleware: [fencingMiddleware(registry)], metrics: false });
    server.register(ProfileService, {
      // fencingMiddleware admitted the call as the primary's; its epoch goes with the write.
      setName: (req, ctx) => {
        if (req.id === "") throw new RpcError(Code.INVALID_ARGUMENT, "a profile needs an id");
        return db.setName(req.id, req.name, fencingToken(ctx));
      },
      getProfile: (req) => db.get(req.id),
    });
    servers.push(await listenAndRegister(server, registry, { services: [ProfileService], transport: "tcp" }));
  }
}
await registries.get("fra")!.ensurePrimary(ProfileService.typeName, "fra");
for (const registry of registries.values()) await registry.ready({ services: [ProfileService.typeName] });
console.log(`registry: ${(await registries.get("fra")!.resolve(ProfileService.typeName)).length} instances in ${REGIONS.join(" and ")}; primary fra, epoch 1`);

function client(region: string): Client<typeof ProfileService> {
  const transport = new TcpClientTransport();
  transports.push(transport);
  return createClient(ProfileService, { transport, ...routingOptions(registries.get(region)!, { transport: "tcp" }), timeoutMs: 5000 });
}
const fraClient = client("fra");
const sgClient = client("sg");
const served = (h: Headers) => `served in ${h[HeaderKeys.servedRegion]}${h[HeaderKeys.epoch] ? `, epoch ${h[HeaderKeys.epoch]}` : ""}`;

let headers: Headers = {};
let profile = await sgClient.setName({ id: "alice", name: "Alice" }, { onHeaders: (h) => (headers = h) });
console.log(`1. sg writes alice = ${profile.name} (version ${profile.version}): ${served(headers)}`);
profile = await sgClient.getProfile({ id: "alice" }, { consistency: "eventual", onHeaders: (h) => (headers = h) });
console.log(`2. sg reads alice = ${profile.name}: ${served(headers)}`);

const moved = await registries.get("sg")!.movePrimary(ProfileService.typeName, "sg");
const movedAt = Date.now();
console.log(`3. the operator moves the primary to sg: epoch ${moved.epoch}`);
profile = await fraClient.setName({ id: "alice", name: "Alice Liddell" }, { onHeaders: (h) => (headers = h) });
console.log(`4. fra writes alice = ${profile.name} (version ${profile.version}): ${served(headers)}, ${Date.now() - movedAt >= 900 ? "after sg waited out fra's lease" : "at once"}`);

// An instance of fra admitted a write under epoch 1 before the move, then stalled (a GC pause):
// it resumes now and writes with the token it was admitted under.
try {
  db.setName("alice", "Alice (stale)", 1);
  console.log("5. FENCING FAILED: the stalled write landed");
} catch (e) {
  console.log(`5. a write admitted under epoch 1 that stalled past the move: ${(e as RpcError).codeName}: ${(e as Error).message}`);
}
profile = await fraClient.getProfile({ id: "alice" }, { consistency: "linearizable", onHeaders: (h) => (headers = h) });
console.log(`6. fra reads alice linearizably = ${profile.name} (version ${profile.version}): ${served(headers)}`);

for (const t of transports) await t.close();
for (const s of servers) await s.close({ graceMs: 500 });
for (const r of registries.values()) await r.close();
await node.close();
console.log("done");
