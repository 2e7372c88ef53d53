import { Code, RpcError, type Cancellation, type ServerTransport } from "../../runtime/api.js";
import {
  statusToHeaders,
  type CallDispatcher,
  type OutgoingReply,
  type StreamDispatcher,
  type Timer,
  settleCall,
  startTimer,
} from "../../runtime/transport.js";
import { MEMORY_SCHEME, type MemoryCall, type MemoryListener, type MemoryNetwork } from "./connection.js";
import type { MemoryStreamCall } from "./stream.js";

/** Options of the in-process server transport. */
export interface MemoryServerOptions {
  /** The name to listen on (`memory://<name>`). Default: a fresh `server-<n>`. */
  name?: string;
  /** The network to listen in; clients given the same one find this server. */
  network: MemoryNetwork;
}

/** A call in flight on the server, and how to cut it off. */
interface InFlight {
  readonly done: Promise<unknown>;
  cut(reason: RpcError): void;
}

let serial = 0;

function ignore(): void {}

/**
 * The server half of the in-process transport: listens on a name in a MemoryNetwork and hands
 * calls from MemoryClientTransports to the dispatcher, with their payload as encoded bytes, and
 * streams to the stream dispatcher. Graceful close stops accepting (new calls fail UNAVAILABLE,
 * `notSent`), waits up to `graceMs` for calls and streams in flight, then aborts what is left and
 * fails it with UNAVAILABLE.
 */
export class MemoryServerTransport implements ServerTransport, MemoryListener {
  readonly name: string;
  private readonly network: MemoryNetwork;
  private dispatch: CallDispatcher | undefined;
  private streams: StreamDispatcher | undefined;
  private closing = false;
  private readonly inflight = new Set<InFlight>();

  constructor(options: MemoryServerOptions) {
    this.name = options.name ?? `server-${++serial}`;
    this.network = options.network;
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
   * Serves one call (what a MemoryClientTransport calls): resolves with the dispatcher's reply,
   * or rejects once the call is aborted (the client aborts it when the call is cancelled, the
   * server on a forced close).
   */
  serve(call: MemoryCall): Promise<OutgoingReply> {
    const dispatch = this.dispatch;
    if (dispatch === undefined || this.closing) {
      return Promise.reject(new RpcError(Code.UNAVAILABLE, `${this.address} is not accepting calls (closed or closing)`, { notSent: true }));
    }
    const reply = Promise.race([dispatch(call), call.cut]);
    const entry: InFlight = { done: reply.then(ignore, ignore), cut: (reason) => call.abort(reason) };
    this.inflight.add(entry);
    void entry.done.then(() => {
      this.inflight.delete(entry);
      call.done();
    });
    return reply;
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

