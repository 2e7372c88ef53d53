import net from "node:net";
import { DelayedPipe, type PipeConditions } from "./pipe.js";

/** Options of createLink. */
export interface LinkOptions {
  /**
   * Where the link accepts connections: a port on 127.0.0.1 (0 for a free one), `host:port`, or
   * `false` for a link that only takes sockets handed to it with `attach` (see createSocksRouter).
   * Default 0.
   */
  listen?: number | string | false;
  /** Where connections are forwarded: `host:port`. */
  target: string;
  /** One-way delay added to each direction, in ms. Default 0. */
  latencyMs?: number;
  /** Up to this many ms more, drawn per chunk; order is still preserved. Default 0. */
  jitterMs?: number;
  /** Bytes queued per direction of one connection before its sender is paused. Default 1 MiB. */
  maxQueuedBytes?: number;
}

/** Counters of a link, for tests and the demo's live view. */
export interface LinkStats {
  /** Connections currently open through the link. */
  readonly connections: number;
  /** Connections accepted since the link was created. */
  readonly accepted: number;
  /** Bytes delivered, both directions. */
  readonly forwardedBytes: number;
  /** Bytes thrown away while blackholed, both directions. */
  readonly droppedBytes: number;
}

/** The state of a link: passing data, blackholed (cut cable) or dropped (resets and refusals). */
export type LinkState = "up" | "blackhole" | "dropped";

/**
 * A TCP proxy standing for one network link between regions. It forwards every connection it
 * accepts to its target with a one-way delay per direction, and can be cut on purpose:
 * `blackhole(true)` behaves like a cut cable (connections stay open, nothing arrives, nothing
 * comes back), `drop()` resets every connection and refuses new ones, `heal()` restores it.
 */
export interface Link {
  /** `127.0.0.1:port` where the link listens ("" for an attach-only link). */
  readonly address: string;
  /** The port the link listens on (0 for an attach-only link). */
  readonly port: number;
  readonly target: string;
  readonly state: LinkState;
  readonly stats: LinkStats;
  /** Changes the one-way delay for data read from now on. */
  setLatency(latencyMs: number, jitterMs?: number): void;
  /**
   * Cuts (true) or restores (false) the link like a cable: bytes are read and thrown away, data
   * already in flight is lost, connections stay open. When the link comes back, connections that
   * lost data are reset (their byte streams have holes); untouched ones carry on.
   */
  blackhole(on: boolean): void;
  /** Resets every connection through the link and refuses (resets) new ones until `heal()`. */
  drop(): void;
  /** Back to passing data after `blackhole(true)` or `drop()`. */
  heal(): void;
  /** Proxies an already accepted socket (`initial` = bytes already read from it). */
  attach(socket: net.Socket, initial?: Buffer): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

interface Connection {
  readonly client: net.Socket;
  readonly upstream: net.Socket | undefined;
  readonly pipes: DelayedPipe[];
  /** Never reached the target (accepted while blackholed): reset on heal. */
  tainted: boolean;
  /** Bytes dropped by its pipes when the blackhole began; more at heal means data was lost. */
  droppedMark: number;
}

/** Parses `host:port` (or a bare port) into its parts. */
export function parseHostPort(address: string | number): { host: string; port: number } {
  if (typeof address === "number") return { host: "127.0.0.1", port: address };
  const i = address.lastIndexOf(":");
  if (i < 0) return { host: "127.0.0.1", port: Number(address) };
  const host = address.slice(0, i).replace(/^\[|\]$/g, "");
  return { host: host === "" ? "127.0.0.1" : host, port: Number(address.slice(i + 1)) };
}

/** Creates a link and, unless `listen: false`, starts listening; see Link. */
export async function createLink(options: LinkOptions): Promise<Link> {
  const target = parseHostPort(options.target);
  const maxQueuedBytes = options.maxQueuedBytes ?? 1 << 20;
  let latencyMs = options.latencyMs ?? 0;
  let jitterMs = options.jitterMs ?? 0;
  let state: LinkState = "up";
  let accepted = 0;
  let closedBytes = { forwarded: 0, dropped: 0 };
  const connections = new Set<Connection>();

  const conditions: PipeConditions = {
    delayMs: () => latencyMs + (jitterMs > 0 ? Math.random() * jitterMs : 0),
    get blackholed() {
      return state === "blackhole";
    },
  };

  const droppedBy = (conn: Connection): number => conn.pipes.reduce((sum, pipe) => sum + pipe.dropped, 0);

  const destroy = (conn: Connection, reset: boolean): void => {
    if (!connections.delete(conn)) return;
    for (const pipe of conn.pipes) {
      closedBytes = { forwarded: closedBytes.forwarded + pipe.forwarded, dropped: closedBytes.dropped + pipe.dropped };
      pipe.close();
    }
    for (const socket of [conn.client, conn.upstream]) {
      if (!socket || socket.destroyed) continue;
      if (reset) socket.resetAndDestroy();
      else socket.destroy();
    }
  };

  const attach = (client: net.Socket, initial?: Buffer): void => {
    accepted++;
    client.setNoDelay(true);
    client.on("error", () => undefined);
    if (state === "dropped") {
      client.resetAndDestroy();
      return;
    }
    if (state === "blackhole") {
      // A cut cable: the connection looks open but nothing gets through; reset on heal.
      const conn: Connection = { client, upstream: undefined, pipes: [], tainted: true, droppedMark: 0 };
      connections.add(conn);
      client.on("data", () => undefined);
      client.on("close", () => destroy(conn, false));
      client.resume();
      return;
    }
    const upstream = net.connect({ host: target.host, port: target.port, noDelay: true });
    upstream.on("error", () => undefined);
    const conn: Connection = {
      client,
      upstream,
      pipes: [
        new DelayedPipe(client, upstream, conditions, maxQueuedBytes),
        new DelayedPipe(upstream, client, conditions, maxQueuedBytes),
      ],
      tainted: false,
      droppedMark: 0,
    };
    connections.add(conn);
    // An error or close on either side ends both: a reset from the target resets the client.
    upstream.on("close", (hadError) => destroy(conn, hadError));
    client.on("close", (hadError) => destroy(conn, hadError));
    if (initial && initial.length > 0) client.unshift(initial);
    client.resume();
  };

  let server: net.Server | undefined;
  let address = "";
  let port = 0;
  if (options.listen !== false) {
    const listen = parseHostPort(options.listen ?? 0);
    server = net.createServer((socket) => attach(socket));
    await new Promise<void>((resolve, reject) => {
      server!.once("error", reject);
      server!.listen(listen.port, listen.host, () => {
        server!.off("error", reject);
        resolve();
      });
    });
    const bound = server.address() as net.AddressInfo;
    port = bound.port;
    address = `${listen.host}:${port}`;
  }

  const heal = () => {
    if (state === "blackhole") {
      for (const conn of [...connections]) if (conn.tainted || droppedBy(conn) > conn.droppedMark) destroy(conn, true);
    }
    state = "up";
  };

  const pipeTotals = () => {
    let forwarded = closedBytes.forwarded;
    let dropped = closedBytes.dropped;
    for (const conn of connections) {
      for (const pipe of conn.pipes) {
        forwarded += pipe.forwarded;
        dropped += pipe.dropped;
      }
    }
    return { forwarded, dropped };
  };

  return {
    address,
    port,
    target: options.target,
    get state() {
      return state;
    },
    get stats(): LinkStats {
      const totals = pipeTotals();
      return { connections: connections.size, accepted, forwardedBytes: totals.forwarded, droppedBytes: totals.dropped };
    },
    setLatency(ms: number, jitter = 0) {
      latencyMs = ms;
      jitterMs = jitter;
    },
    blackhole(on: boolean) {
      if (!on) {
        heal();
        return;
      }
      if (state === "dropped") return;
      if (state === "blackhole") return;
      state = "blackhole";
      for (const conn of connections) {
        conn.droppedMark = droppedBy(conn);
        for (const pipe of conn.pipes) pipe.discardQueued();
      }
    },
    drop() {
      state = "dropped";
      for (const conn of [...connections]) destroy(conn, true);
    },
    heal,
    attach,
    async close() {
      for (const conn of [...connections]) destroy(conn, false);
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
  };
}
