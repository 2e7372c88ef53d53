/**
 * Schemaless services (defineService, msgpackr with records) on every transport: a typed client
 * and typed handlers, no .proto anywhere; unary calls everywhere, streaming where the transport
 * streams. Real sockets for tcp and grpc, a real nats-server for nats (skipped without one).
 */
import { Packr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, RpcError, createClient, createServer, type ClientTransport, type Server, type ServerTransport } from "meridian-rpc";
import { DecodeError, type ServiceDescriptor } from "meridian-rpc/runtime";
import { defineService, method } from "meridian-rpc/generic";
import { GrpcClientTransport, GrpcServerTransport } from "meridian-rpc/transports/grpc";
import { MemoryNetwork, MemoryClientTransport, MemoryServerTransport } from "meridian-rpc/transports/memory";
import { NatsClientTransport, NatsServerTransport } from "meridian-rpc/transports/nats";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { findNatsServer, startNatsCluster, type NatsCluster } from "../support/nats-cluster.js";

interface Order {
  id: bigint;
  items: { sku: string; qty: number }[];
  placed: Date;
  note?: string;
  blob: Uint8Array;
}

const Shop = defineService({
  name: "demo.Shop",
  methods: {
    place: method.unary<Order, { accepted: boolean; id: bigint; total: number }>(),
    lookup: method.unary<{ id: bigint }, Order>({ idempotency: "NO_SIDE_EFFECTS" }),
    follow: method.serverStreaming<{ n: number }, { i: number; at: string }>({ idempotency: "NO_SIDE_EFFECTS" }),
    echo: { name: "EchoAny" },
  },
});

const order: Order = {
  id: 2n ** 62n + 3n,
  items: [
    { sku: "a", qty: 2 },
    { sku: "b", qty: 1 },
  ],
  placed: new Date("2024-05-01T10:00:00Z"),
  note: "leave at the door",
  blob: Uint8Array.from([0, 1, 255]),
};

function serve(server: Server): Server {
  return server.register(Shop, {
    place: (o) => {
      if (o.items.length === 0) throw new RpcError(Code.INVALID_ARGUMENT, "an order needs items");
      return { accepted: true, id: o.id, total: o.items.reduce((n, i) => n + i.qty, 0) };
    },
    lookup: ({ id }) => ({ ...order, id }),
    async *follow({ n }) {
      for (let i = 0; i < n; i++) yield { i, at: `t${i}` };
    },
    echo: (x) => x,
  });
}

describe("generic msgpack - defineService", () => {
  it("generic msgpack - a descriptor like a generated one: wire names, kinds, idempotency", () => {
    expect(Shop.typeName).toBe("demo.Shop");
    expect(Object.values(Shop.methods).map((m) => [m.name, m.kind, m.idempotency])).toEqual([
      ["Place", "unary", "IDEMPOTENCY_UNKNOWN"],
      ["Lookup", "unary", "NO_SIDE_EFFECTS"],
      ["Follow", "server_streaming", "NO_SIDE_EFFECTS"],
      ["EchoAny", "unary", "IDEMPOTENCY_UNKNOWN"],
    ]);
    expect(() => defineService({ name: "x.Y", methods: { a: { name: "A" }, b: { name: "A" } } })).toThrow(/two methods are named A/);
  });

  it("generic msgpack - payloads use records and decode on their own, anywhere msgpackr runs", () => {
    const bytes = Shop.methods.lookup.output.encode(order);
    expect(new Packr({ useRecords: true }).unpack(bytes)).toEqual({ ...order, blob: Buffer.from(order.blob) });
    // Records: the keys of the two items are written once.
    const withoutRecords = new Packr({ useRecords: false }).pack(order);
    expect(bytes.length).toBeLessThan(withoutRecords.length);
  });

  it("generic msgpack - bad payloads are DecodeErrors naming the method", () => {
    const codec = Shop.methods.place.input;
    expect(() => codec.decode(Uint8Array.from([0x92, 0x01]))).toThrow(DecodeError);
    expect(() => codec.decode(Uint8Array.from([0x92, 0x01]))).toThrow(/not a msgpack message: .* in demo.Shop\/Place.request/);
  });
});

/** One transport pair under test. */
interface Bench {
  readonly name: string;
  server(): ServerTransport;
  client(address: string): ClientTransport;
}

const network = new MemoryNetwork();
let nats: NatsCluster | undefined;
const natsBin = findNatsServer();
beforeAll(async () => {
  if (natsBin !== undefined) nats = await startNatsCluster();
}, 30_000);
afterAll(async () => {
  await nats?.stop();
});

const services: ServiceDescriptor[] = [Shop];
const benches: Bench[] = [
  { name: "memory", server: () => new MemoryServerTransport({ network }), client: (address) => new MemoryClientTransport({ address, network }) },
  { name: "tcp", server: () => new TcpServerTransport({ host: "127.0.0.1" }), client: (address) => new TcpClientTransport({ address }) },
  { name: "grpc", server: () => new GrpcServerTransport({ services }), client: (address) => new GrpcClientTransport({ address }) },
  {
    name: "nats",
    server: () => new NatsServerTransport({ servers: nats!.urls[0]!, services }),
    client: () => new NatsClientTransport({ servers: nats!.urls[0]! }),
  },
];

for (const bench of benches) {
  const run = bench.name === "nats" && natsBin === undefined ? describe.skip : describe;
  run(`generic msgpack - on ${bench.name}`, () => {
    let server: Server;
    let client: ReturnType<typeof createClient<typeof Shop>>;
    let transport: ClientTransport;
    beforeAll(async () => {
      server = serve(createServer({ transport: bench.server(), metrics: false, logger: { error: () => undefined } }));
      const { address } = await server.listen();
      transport = bench.client(address);
      client = createClient(Shop, { transport, timeoutMs: 5000 });
    });
    afterAll(async () => {
      await transport.close();
      await server.close({ graceMs: 0 });
    });

    it(`generic msgpack - ${bench.name}: unary calls with bigints, dates, bytes and nested records`, async () => {
      expect(await client.place(order)).toEqual({ accepted: true, id: order.id, total: 3 });
      const back = await client.lookup({ id: 7n });
      expect(back).toEqual({ ...order, id: 7n, blob: Buffer.from(order.blob) });
      expect(back.placed).toBeInstanceOf(Date);
      expect(await client.echo({ any: ["thing", 1, null] })).toEqual({ any: ["thing", 1, null] });
    });

    it(`generic msgpack - ${bench.name}: errors thrown by handlers reach the client`, async () => {
      await expect(client.place({ ...order, items: [] })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, message: "an order needs items" });
    });

    it(`generic msgpack - ${bench.name}: server streaming`, async () => {
      if (transport.stream === undefined) return; // this transport does not stream (yet)
      const got: number[] = [];
      for await (const r of client.follow({ n: 4 })) got.push(r.i);
      expect(got).toEqual([0, 1, 2, 3]);
    });
  });
}
