/**
 * The transports the demo's service can run on, behind one small shape: a server transport for
 * an instance and a client transport for a region's callers. Each is imported only when chosen,
 * so a run on TCP never loads grpc-js or the NATS client.
 */
import type { ClientTransport, ServerTransport } from "meridian-rpc";
import type { ServiceDescriptor } from "meridian-rpc/runtime";
import type { Identity, TransportName } from "./protocol.js";
import { clientTls, serverTls } from "./security.js";

/** Makes a region's transports. */
export interface TransportKit {
  readonly name: TransportName;
  /**
   * A server transport for one instance. `listen` is the port (tcp, grpc) or the subject prefix
   * (nats) the coordinator gave the instance.
   */
  server(listen: string, services: readonly ServiceDescriptor[]): ServerTransport;
  /** The address the instance registers: `127.0.0.1:<port>`, or the subject prefix for nats. */
  address(listen: string): string;
  /** One client transport for the region's callers. */
  client(): ClientTransport;
  /** Whether endpoint addresses are TCP addresses, reached through the links between regions. */
  readonly viaLinks: boolean;
}

/**
 * Something the chosen options need is not there: a transport not in this build, or a program
 * (etcd, nats-server) not installed. The demo exits 2 with the message, which says what to do.
 */
export class NotAvailableError extends Error {
  override readonly name = "NotAvailableError";
}

/** Loads the kit of a transport; with an identity, every server it makes asks for mutual TLS and every client presents it. */
export async function transportKit(name: TransportName, options: { natsUrl?: string; identity?: Identity } = {}): Promise<TransportKit> {
  const id = options.identity;
  switch (name) {
    case "tcp": {
      const { TcpClientTransport, TcpServerTransport } = await import("meridian-rpc/transports/tcp");
      return {
        name,
        viaLinks: true,
        server: (listen) => new TcpServerTransport({ host: "127.0.0.1", port: Number(listen), ...(id === undefined ? {} : { tls: serverTls(id) }) }),
        address: (listen) => `127.0.0.1:${listen}`,
        // Short connect timeout and reconnect backoff: a healed link should be used again quickly.
        client: () => new TcpClientTransport({ connectTimeoutMs: 300, backoffBaseMs: 100, backoffMaxMs: 1000, ...(id === undefined ? {} : { tls: clientTls(id) }) }),
      };
    }
    case "grpc": {
      const grpc = await import("meridian-rpc/transports/grpc").catch((e: unknown) => {
        throw new NotAvailableError(`the gRPC transport is not available yet (transports/grpc): ${(e as Error).message}`);
      });
      return {
        name,
        viaLinks: true,
        server: (listen, services) =>
          new grpc.GrpcServerTransport({ services, host: "127.0.0.1", port: Number(listen), ...(id === undefined ? {} : { tls: serverTls(id) }) }),
        address: (listen) => `127.0.0.1:${listen}`,
        client: () => new grpc.GrpcClientTransport({ connectTimeoutMs: 300, ...(id === undefined ? {} : { tls: clientTls(id) }) }),
      };
    }
    case "nats": {
      const nats = await import("meridian-rpc/transports/nats").catch((e: unknown) => {
        throw new NotAvailableError(`the NATS transport is not available yet (transports/nats): ${(e as Error).message}`);
      });
      const servers = options.natsUrl;
      if (servers === undefined) throw new NotAvailableError("the NATS transport needs the region's NATS server");
      // The region's NATS server asks for a client certificate of the demo's CA (see network.ts).
      const connectOptions = id === undefined ? {} : { connectOptions: { tls: { ca: id.ca, cert: id.cert, key: id.key } } };
      return {
        name,
        viaLinks: false,
        server: (listen, services) => new nats.NatsServerTransport({ servers, services, prefix: listen, ...connectOptions }),
        address: (listen) => listen,
        client: () => new nats.NatsClientTransport({ servers, ...connectOptions }),
      };
    }
  }
}
