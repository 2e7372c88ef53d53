/**
 * The transports under the conformance suites: one bed each (memory, TCP, gRPC, NATS), giving
 * servers and clients on it and closing them after each test. A bed's servers register the
 * suites' services (EchoService, StreamService) and list AdminService at the transport (so a call
 * to it reaches the runtime, which answers UNIMPLEMENTED, on every transport alike).
 */
import {
  createClient,
  createServer,
  type Client,
  type ClientOptions,
  type ClientTransport,
  type Handlers,
  type Logger,
  type Server,
  type ServerOptions,
  type ServerTransport,
} from "meridian-rpc";
import type { ServiceDescriptor } from "meridian-rpc/runtime";
import { GrpcClientTransport, GrpcServerTransport } from "meridian-rpc/transports/grpc";
import { MEMORY_STREAM_WINDOW, MemoryClientTransport, MemoryNetwork, MemoryServerTransport } from "meridian-rpc/transports/memory";
import { NatsClientTransport, NatsServerTransport } from "meridian-rpc/transports/nats";
import { STREAM_INITIAL_WINDOW, TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { AdminService, EchoService, StreamService } from "../rpc/gen/echo.js";
import { echoHandlers, type EchoServer } from "../rpc/helpers.js";
import { echoUnary, type StreamBed } from "./streaming-suite.js";

/** What a server on a bed serves: the EchoService methods (or another descriptor of the same service name). */
export interface EchoServerOptions {
  readonly handlers?: Partial<Handlers<typeof EchoService>>;
  /** The server's region (sent back as `x-served-region`). Default "cn-east". */
  readonly region?: string;
  /** Registered instead of EchoService: a descriptor of the same name with other codecs. */
  readonly service?: ServiceDescriptor;
}

/** A transport under the conformance suites. */
export interface Bed extends StreamBed {
  /** What `ctx.peer` looks like on a server of this transport. */
  readonly peer: RegExp;
  /**
   * Whether the transport tells a server that a unary call was cancelled (gRPC's RST_STREAM; the
   * memory transport). TTHeader and NATS request/reply have no such message: the server's signal
   * aborts at the deadline or on close instead.
   */
  readonly cancelsUnary: boolean;
  /** The largest request the transport takes by default, in bytes (NATS: its max_payload). */
  readonly largest: number;
  /** An echo server (test/rpc/helpers.ts echoHandlers, named `name`), what it saw and logged. */
  echoServer(name: string, options?: EchoServerOptions): Promise<EchoServer & { address: string }>;
  /** A client of `service` calling these addresses, of region "cn-north". */
  clientOf<S extends ServiceDescriptor>(service: S, addresses: readonly string[], options?: Partial<ClientOptions>): Client<S>;
}

/** How one transport makes its two halves. */
interface Maker {
  readonly name: string;
  readonly window: number;
  readonly peer: RegExp;
  readonly cancelsUnary: boolean;
  readonly largest: number;
  server(services: readonly ServiceDescriptor[]): ServerTransport;
  /** A client transport for these addresses (and the endpoints to give createClient). */
  client(addresses: readonly string[]): { transport: ClientTransport; endpoints: { address: string }[] | undefined };
}

/**
 * The admission of the suites' servers: the default but for a burst allowance of a second, not
 * 100 ms. The suites test what a transport carries, not overload; their bursts (a hundred calls
 * and streams at once at a fresh server, client and server in one process on a loaded CI
 * machine) can wait past 100 ms and be shed. Admission is tested in test/rpc/overload.test.ts,
 * test/tcp/admission.test.ts and runtime/rpc/governance.
 */
const SUITE_ADMISSION = { intervalMs: 1000 };

function bed(make: () => Maker): Bed {
  let m: Maker | undefined;
  const maker = (): Maker => (m ??= make());
  const servers: Server[] = [];
  const clients: ClientTransport[] = [];
  const clientFor = (addresses: readonly string[]) => {
    const c = maker().client(addresses);
    clients.push(c.transport);
    return c;
  };
  const start = async (setup: (s: Server) => void, options: Partial<ServerOptions>, extra: readonly ServiceDescriptor[] = []) => {
    const services = [EchoService, StreamService, AdminService, ...extra];
    const server = createServer({ admission: SUITE_ADMISSION, ...options, transport: maker().server(services) });
    setup(server);
    const { address } = await server.listen();
    servers.push(server);
    return { server, address };
  };
  const b: Bed = {
    get name() {
      return maker().name;
    },
    get window() {
      return maker().window;
    },
    get peer() {
      return maker().peer;
    },
    get cancelsUnary() {
      return maker().cancelsUnary;
    },
    get largest() {
      return maker().largest;
    },
    server(handlers, options = {}) {
      return start((s) => s.register(StreamService, handlers).register(EchoService, echoUnary), options);
    },
    client(address, options = {}) {
      return b.clientOf(StreamService, [address], options);
    },
    echoClient(address, options = {}) {
      return b.clientOf(EchoService, [address], options);
    },
    async echoServer(name, options = {}) {
      const calls: EchoServer["calls"] = [];
      const logged: EchoServer["logged"] = [];
      const logger: Logger = { error: (message, details) => logged.push({ message, details }) };
      const handlers = { ...echoHandlers(name, calls), ...options.handlers };
      const { server, address } = await start(
        (s) => s.register((options.service ?? EchoService) as typeof EchoService, handlers),
        { logger, region: options.region ?? "cn-east" },
      );
      return { server, address, name, calls, logged };
    },
    clientOf(service, addresses, options = {}) {
      const { transport, endpoints } = clientFor(addresses);
      return createClient(service, { region: "cn-north", endpoints, ...options, transport });
    },
    async close() {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await Promise.all(servers.splice(0).map((s) => s.close({ graceMs: 0 })));
    },
  };
  return b;
}

/** The in-process transport, on a network of its own. */
export function memoryBed(): Bed {
  return bed(() => {
    const network = new MemoryNetwork();
    return {
      name: "memory",
      cancelsUnary: true,
      window: MEMORY_STREAM_WINDOW,
      peer: /^memory:\/\/client-/,
      largest: 4 * 1024 * 1024,
      server: () => new MemoryServerTransport({ network }),
      client: (addresses) => ({ transport: new MemoryClientTransport({ network }), endpoints: addresses.map((address) => ({ address })) }),
    };
  });
}

/** The TCP transport over 127.0.0.1. */
export function tcpBed(): Bed {
  return bed(() => ({
    name: "tcp",
    cancelsUnary: false,
    window: STREAM_INITIAL_WINDOW,
    peer: /^127\.0\.0\.1:\d+$/,
    largest: 3 * 1024 * 1024,
    server: () => new TcpServerTransport({ host: "127.0.0.1" }),
    client: (addresses) => ({
      transport: new TcpClientTransport({ backoffBaseMs: 10, backoffMaxMs: 50 }),
      endpoints: addresses.map((address) => ({ address })),
    }),
  }));
}

/** The gRPC transport (grpc-js, HTTP/2) over 127.0.0.1. */
export function grpcBed(): Bed {
  return bed(() => ({
    name: "grpc",
    cancelsUnary: true,
    // grpc-js's own flow control is in bytes; the suite's window checks only need an upper bound.
    window: 64,
    peer: /127\.0\.0\.1:\d+$/,
    largest: 3 * 1024 * 1024,
    server: (services) => new GrpcServerTransport({ services }),
    client: (addresses) => ({ transport: new GrpcClientTransport(), endpoints: addresses.map((address) => ({ address })) }),
  }));
}

/**
 * The NATS transport on a real nats-server at `url()` (test/nats/helpers.ts useNatsServer). Every
 * server of the bed is in the same queue group on the default subject prefix, so clients call the
 * prefix, whichever addresses they are given.
 */
export function natsBed(url: () => string): Bed {
  return bed(() => ({
    name: "nats",
    cancelsUnary: false,
    window: 32,
    peer: /^_INBOX\./,
    // NATS's default max_payload is 1 MiB, headers included.
    largest: 512 * 1024,
    server: (services) => new NatsServerTransport({ servers: url(), services, connectOptions: { reconnectTimeWait: 50, reconnectJitter: 10 } }),
    client: () => ({
      transport: new NatsClientTransport({ servers: url(), connectOptions: { reconnectTimeWait: 50, reconnectJitter: 10 } }),
      endpoints: undefined,
    }),
  }));
}
