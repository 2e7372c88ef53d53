import { Code, RpcError, type Cancellation, type ServerTransport } from "../../runtime/api.js";
import {
  statusToHeaders,
  type CallDispatcher,
  type IncomingCall,
  type OutgoingReply,
  type StreamDispatcher,
  type Timer,
  settleCall,
  startTimer,
} from "../../runtime/transport.js";
import type { MemoryStreamCall } from "./stream.js";

/** The URL scheme of in-process addresses: `memory://<name>`. */
export const MEMORY_SCHEME = "memory://";

/**
 * An in-process "network": servers bind names in it and clients find them by address. Tests
 * that want isolation create their own; everything else shares `defaultMemoryNetwork`.
 */
export class MemoryNetwork {
  private readonly servers = new Map<string, MemoryServerTransport>();

  /** The server listening at `address` (`memory://name` or just `name`), if any. */
  lookup(address: string): MemoryServerTransport | undefined {
    return this.servers.get(address.startsWith(MEMORY_SCHEME) ? address.slice(MEMORY_SCHEME.length) : address);
  }

  /** Binds `name` to `server`; fails when another server holds it. */
  bind(name: string, server: MemoryServerTransport): void {
    const holder = this.servers.get(name);
    if (holder !== undefined && holder !== server) {
      throw new RpcError(Code.ALREADY_EXISTS, `${MEMORY_SCHEME}${name} is already bound by another server; pick another name`);
    }
    this.servers.set(name, server);
  }

  /** Releases `name` if `server` holds it. */
  unbind(name: string, server: MemoryServerTransport): void {
    if (this.servers.get(name) === server) this.servers.delete(name);
  }
}

/** The network memory transports use unless given another. */
export const defaultMemoryNetwork = new MemoryNetwork();

/** Options of the in-process server transport. */
export interface MemoryServerOptions {
  /** The name to listen on (`memory://<name>`). Default: a fresh `server-<n>`. */
  name?: string;
  network?: MemoryNetwork;
}

/** A call in flight on the server, and how to cut it off. */
interface InFlight {
  readonly done: Promise<unknown>;
  cut(reason: RpcError): void;
}

let serial = 0;

/**
 * The server half of the in-process transport: listens on a name in a MemoryNetwork and hands
 * calls from MemoryClientTransports to the dispatcher, with their payload as encoded bytes, and
 * streams to the stream dispatcher. Graceful close stops accepting (new calls fail UNAVAILABLE,
 * `notSent`), waits up to `graceMs` for calls and streams in flight, then aborts what is left and
 * fails it with UNAVAILABLE.
 */
export class MemoryServerTransport implements ServerTransport {
  readonly name: string;
  private readonly network: MemoryNetwork;
  private dispatch: CallDispatcher | undefined;
  private streams: StreamDispatcher | undefined;
  private closing = false;
  private readonly inflight = new Set<InFlight>();

  constructor(options: MemoryServerOptions = {}) {
    this.name = options.name ?? `server-${++serial}`;
    this.network = options.network ?? defaultMemoryNetwork;
  }

  /** This server's address, `memory://<name>`. */
  get address(): string {
    return MEMORY_SCHEME + this.name;
  }

  async listen(dispatch: CallDispatcher, streams?: StreamDispatcher): Promise<{ address: string }> {
    this.network.bind(this.name, this);
    this.dispatch = dispatch;
    this.streams = streams;
    this.closing = false;
    return { address: this.address };
  }

  /**
   * Serves one streaming call (what a MemoryClientTransport calls): hands its server end to the
   * stream dispatcher and ends the call with the trailers it resolves with. A closing server
   * refuses it with UNAVAILABLE (`notSent`); a forced close fails it with UNAVAILABLE.
   */
  serveStream(call: MemoryStreamCall): void {
    const streams = this.streams;
    if (this.dispatch === undefined || this.closing) {
      call.fail(new RpcError(Code.UNAVAILABLE, `${this.address} is not accepting calls (closed or closing)`, { notSent: true }));
      return;
    }
    if (streams === undefined) {
      call.finish(statusToHeaders(new RpcError(Code.UNIMPLEMENTED, `${this.address} does not serve streams`), {}));
      return;
    }
    const entry: InFlight = {
      done: call.done,
      cut: (reason) => call.fail(reason),
    };
    this.inflight.add(entry);
    void call.done.then(() => this.inflight.delete(entry));
    settleCall(
      () => streams(call.server),
      (trailers) => call.finish(trailers),
      () => statusToHeaders(new RpcError(Code.INTERNAL, "internal error"), {}),
      () => call.fail(new RpcError(Code.INTERNAL, "internal error")),
    );
  }

  /**
   * Serves one call (what a MemoryClientTransport calls). `abort` is the call's server-side
   * cancellation (`call.signal`): the client aborts it when the call is cancelled, the server on a
   * forced close.
   */
  serve(call: IncomingCall, abort: Cancellation): Promise<OutgoingReply> {
    const dispatch = this.dispatch;
    if (dispatch === undefined || this.closing) {
      return Promise.reject(new RpcError(Code.UNAVAILABLE, `${this.address} is not accepting calls (closed or closing)`, { notSent: true }));
    }
    return new Promise<OutgoingReply>((resolve, reject) => {
      const entry: InFlight = {
        done: dispatch(call).then(resolve, reject),
        cut(reason) {
          abort.abort(reason);
          reject(reason);
        },
      };
      this.inflight.add(entry);
      void entry.done.finally(() => this.inflight.delete(entry));
    });
  }

  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.network.unbind(this.name, this);
    if (this.inflight.size > 0) {
      let timer: Timer | undefined;
      const grace = new Promise<void>((resolve) => (timer = startTimer(graceMs, resolve)));
      await Promise.race([Promise.allSettled([...this.inflight].map((c) => c.done)), grace]);
      timer?.cancel();
    }
    for (const c of this.inflight) c.cut(new RpcError(Code.UNAVAILABLE, `${this.address} closed before answering`));
    this.inflight.clear();
    this.dispatch = undefined;
    this.streams = undefined;
  }
}

/** Creates the server half of the in-process transport. */
export function createMemoryServerTransport(options: MemoryServerOptions = {}): MemoryServerTransport {
  return new MemoryServerTransport(options);
}
