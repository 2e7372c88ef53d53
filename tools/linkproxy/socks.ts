import net from "node:net";
import type { Link } from "./link.js";

/** Options of createSocksRouter. */
export interface SocksRouterOptions {
  /**
   * Picks the link for a CONNECT to `host:port`, or undefined to refuse it. The host is passed
   * as the client sent it (a name is not resolved).
   */
  route(host: string, port: number): Link | undefined;
  /** Port on 127.0.0.1 to listen on; default a free one. */
  port?: number;
}

/** A SOCKS5 endpoint that hands each connection to a link chosen by its destination. */
export interface SocksRouter {
  /** `127.0.0.1:port`. */
  readonly address: string;
  readonly port: number;
  /** The proxy URL for a Go program's environment (`HTTP_PROXY`), `socks5://127.0.0.1:port`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Creates a SOCKS5 (no authentication, CONNECT only) server whose connections go through links.
 * One router per sending process tells the links apart by sender: etcd members dial their peers
 * through their own router (Go honours `HTTP_PROXY=socks5://...`), so the link from member A to
 * member B can be cut without touching the link from C to B.
 */
export async function createSocksRouter(options: SocksRouterOptions): Promise<SocksRouter> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    handshake(socket, options.route).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    url: `socks5://127.0.0.1:${port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Reads exactly what the SOCKS5 greeting and CONNECT request need, then hands the socket over. */
async function handshake(socket: net.Socket, route: SocksRouterOptions["route"]): Promise<void> {
  const reader = new SocketReader(socket);
  const [version, methodCount] = await reader.read(2);
  if (version !== 5) throw new Error("not SOCKS5");
  await reader.read(methodCount!);
  socket.write(Buffer.from([5, 0]));
  const [, command, , addressType] = await reader.read(4);
  let host: string;
  if (addressType === 1) host = [...(await reader.read(4))].join(".");
  else if (addressType === 3) host = (await reader.read((await reader.read(1))[0]!)).toString("latin1");
  else if (addressType === 4) {
    const b = await reader.read(16);
    host = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(":");
  } else throw new Error("bad SOCKS5 address type");
  const port = (await reader.read(2)).readUInt16BE(0);
  const link = command === 1 ? route(host, port) : undefined;
  if (!link) {
    // 0x02: connection not allowed by ruleset.
    socket.end(Buffer.from([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]));
    return;
  }
  socket.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
  link.attach(socket, reader.rest());
}

/** Reads fixed-size pieces off a socket in paused mode, keeping any surplus for the next owner. */
class SocketReader {
  private buffered = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private failed: Error | undefined;
  private readonly onData = (chunk: Buffer) => {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    this.waiting?.();
  };
  private readonly onEnd = () => {
    this.failed = new Error("connection closed during SOCKS handshake");
    this.waiting?.();
  };

  constructor(private readonly socket: net.Socket) {
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("close", this.onEnd);
  }

  async read(n: number): Promise<Buffer> {
    while (this.buffered.length < n) {
      if (this.failed) throw this.failed;
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  /** Stops reading and returns the bytes read past the handshake. */
  rest(): Buffer {
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("close", this.onEnd);
    this.socket.pause();
    return this.buffered;
  }
}
