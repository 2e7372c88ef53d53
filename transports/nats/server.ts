import type { Msg, Subscription } from "@nats-io/transport-node";
import { sharedWriter } from "../../runtime/index.js";
import { type MethodDescriptor, type ServiceDescriptor, Code, RpcError, HeaderKeys, type Headers, type ServerTransport } from "../../runtime/api.js";
import {
  deadlineExceeded,
  startTimer,
  type Timer,
  ServerCall,
  errorHeaders,
  dispatchCall,
  statusToHeaders,
  type CallDispatcher,
  type OutgoingReply,
  type StreamDispatcher,
  settleCall,
  copyHeaders,
  statusHeaders,
} from "../../runtime/transport.js";
import { NatsLink, type NatsConnectionOptions, type NatsStatus, type NatsStatusListener } from "./connection.js";
import { decodeHeaders, encodeHeaders, headerBytes, NatsKey, StreamFrame, type ReceivedHeaders } from "./wire.js";
import { methodSubject, NatsServerStream } from "./stream.js";

/** Options of {@link NatsServerTransport}. */
export interface NatsServerOptions extends NatsConnectionOptions {
  /**
   * The services to serve. NATS routes by subject, so the transport subscribes every method of
   * these up front (`<prefix>.<package.Service>.<Method>`); register the same services on the
   * server (createServer) to give them handlers.
   */
  services: readonly ServiceDescriptor[];
  /**
   * The queue group of a service's subscriptions. Default: the service's full name, so every
   * instance of a service shares its load, and NATS gateways prefer instances in the caller's
   * cluster.
   */
  queue?: (service: string) => string;
  /** Sent back as `x-served-region` when a reply does not say already (createServer's `region` sets it too). */
  region?: string;
  /**
   * Most calls (unary and streams) this server serves at once. NATS hands requests over as they
   * come and one connection carries every caller's, so reading less is not an option: past the
   * limit a request is answered at once with RESOURCE_EXHAUSTED, before any handler runs, and the
   * caller may try another member of the queue group. Default
   * {@link DEFAULT_NATS_MAX_CONCURRENT_CALLS}.
   */
  maxConcurrentCalls?: number;
}

/** The header of an answer given before any handler ran: the client may send the call elsewhere (HeaderKeys.refused). */
const REFUSED = { [HeaderKeys.refused]: "1" };

/** Default of `maxConcurrentCalls`: bounds the memory a flood of requests can hold. */
export const DEFAULT_NATS_MAX_CONCURRENT_CALLS = 1000;

/**
 * One unary call being served: the runtime's ServerCall (its signal created only when something
 * reads it), aborted by a timer at its deadline and when the server shuts down before answering.
 */
class NatsServerCall extends ServerCall {
  private timer: Timer | undefined;

  constructor(
    service: string,
    method: string,
    headers: Headers,
    readonly payload: Uint8Array,
    deadline: number | undefined,
    readonly peer: string,
  ) {
    super(service, method, headers, deadline);
  }

  protected override follow(): void {
    if (this.deadline === undefined) return;
    this.timer = startTimer(this.deadline - Date.now(), () => this.abort(deadlineExceeded("the call's deadline passed")), true);
  }

  protected override unfollow(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}

/** The client's inbox in a reply subject (`_INBOX.<id>.<token>` -> `_INBOX.<id>`): how a caller shows as `peer`. */
function peerOf(reply: string): string {
  const i = reply.lastIndexOf(".");
  return i > 0 ? reply.slice(0, i) : reply;
}

/**
 * The server half of Meridian's NATS transport: subscribes every method of its services in a
 * queue group per service, hands each request to the dispatcher and publishes the reply, with
 * its headers, to the request's reply subject. Streaming methods run the protocol of
 * docs/nats.md through the stream dispatcher.
 */
export class NatsServerTransport implements ServerTransport {
  private readonly link: NatsLink;
  private readonly subs: Subscription[] = [];
  private readonly calls = new Set<NatsServerCall>();
  private readonly streams = new Set<NatsServerStream>();
  private readonly idle: (() => void)[] = [];
  private listening = false;
  private draining = false;
  private closing: Promise<void> | undefined;

  private readonly maxConcurrentCalls: number;

  constructor(private readonly options: NatsServerOptions) {
    this.link = new NatsLink(options, "server");
    this.maxConcurrentCalls = Math.max(1, options.maxConcurrentCalls ?? DEFAULT_NATS_MAX_CONCURRENT_CALLS);
  }

  /** The connection as it stands: state, server, reconnect and disconnect counts, last error. */
  status(): NatsStatus {
    return this.link.status;
  }

  /** Calls `listener` on every connection event; returns the unsubscribe. */
  onStatus(listener: NatsStatusListener): () => void {
    return this.link.addListener(listener);
  }

  /** Calls being served right now (unary and streaming). */
  get inflight(): number {
    return this.calls.size + this.streams.size;
  }

  /**
   * Subscribes every method and resolves once the NATS server has the subscriptions (a flush), with
   * the subject prefix as the address: the Endpoint address clients use for this server.
   */
  async listen(dispatch: CallDispatcher, streams?: StreamDispatcher): Promise<{ address: string }> {
    if (this.listening) throw new Error("NatsServerTransport.listen() called twice");
    this.listening = true;
    const nc = await this.link.connect();
    const queueOf = this.options.queue ?? ((service: string) => service);
    for (const service of this.options.services) {
      const name = service.typeName;
      const queue = queueOf(name);
      for (const method of Object.values(service.methods)) {
        const subject = methodSubject(this.link.prefix, name, method);
        this.subs.push(
          nc.subscribe(subject, {
            queue,
            callback: (err, msg) => {
              if (err !== null) return;
              try {
                this.onRequest(msg, name, method, dispatch, streams);
              } catch (e) {
                // A bug on the way to a handler: the caller gets INTERNAL, the server goes on.
                if (msg.reply) this.publishReply(msg.reply, { headers: errorHeaders(e) });
              }
            },
          }),
        );
      }
    }
    await nc.flush();
    return { address: this.link.prefix };
  }

  private onRequest(msg: Msg, service: string, method: MethodDescriptor, dispatch: CallDispatcher, streams: StreamDispatcher | undefined): void {
    const reply = msg.reply;
    if (!reply) return; // a publish, not a request: nobody waits for an answer
    let rh: ReceivedHeaders;
    try {
      rh = decodeHeaders(msg);
    } catch (e) {
      this.publishReply(reply, { headers: errorHeaders(new RpcError(Code.INVALID_ARGUMENT, `unreadable request headers: ${(e as Error).message}`)) });
      return;
    }
    const timeout = rh.timeout === undefined ? NaN : Number(rh.timeout);
    const deadline = timeout > 0 ? Date.now() + timeout : undefined;
    if (this.inflight >= this.maxConcurrentCalls && (rh.frame === StreamFrame.open || rh.frame === undefined)) {
      const err = new RpcError(
        Code.RESOURCE_EXHAUSTED,
        `the server is serving ${this.inflight} calls, its limit (maxConcurrentCalls); try again later or another instance`,
        { headers: REFUSED },
      );
      if (rh.frame === StreamFrame.open) this.refuseStream(reply, err);
      else this.publishReply(reply, { headers: errorHeaders(err) });
      return;
    }
    if (rh.frame === StreamFrame.open) {
      this.openStream(msg, rh, service, method, deadline, streams);
      return;
    }
    if (method.kind !== "unary") {
      const err = new RpcError(Code.UNIMPLEMENTED, `${service}.${method.name} is a ${method.kind} method: call it as a stream`);
      this.publishReply(reply, { headers: errorHeaders(err) });
      return;
    }
    const call = new NatsServerCall(service, method.name, rh.headers, msg.data, deadline, peerOf(reply));
    this.calls.add(call);
    dispatchCall(
      dispatch,
      call,
      (_, r) => this.answer(call, reply, r),
      (e) => ({ headers: errorHeaders(e) }),
      () => this.answer(call, reply, { headers: errorHeaders(undefined) }),
    );
  }

  private answer(call: NatsServerCall, reply: string, r: OutgoingReply): void {
    call.done();
    this.calls.delete(call);
    this.publishReply(reply, r);
    this.checkIdle();
  }

  /** Encodes and publishes a reply; one too large for max_payload is replaced by a RESOURCE_EXHAUSTED error. */
  private publishReply(reply: string, r: OutgoingReply): void {
    const nc = this.link.nc;
    if (nc === undefined) return;
    let headers = r.headers;
    const region = this.options.region;
    if (region !== undefined && headers[HeaderKeys.servedRegion] === undefined) {
      headers = copyHeaders(headers);
      headers[HeaderKeys.servedRegion] = region;
    }
    let payload: Uint8Array | undefined;
    if (r.encode !== undefined) {
      const w = sharedWriter();
      try {
        r.encode(w);
        payload = w.finish();
      } catch (e) {
        w.discard();
        this.publishReply(reply, { headers: errorHeaders(e) });
        return;
      }
    }
    const block = encodeHeaders(headers);
    const size = headerBytes(block) + (payload?.length ?? 0);
    if (size > this.link.maxPayload) {
      const err = new RpcError(Code.RESOURCE_EXHAUSTED, `the response of ${size} bytes exceeds the NATS server's max_payload of ${this.link.maxPayload} bytes`);
      this.publishReply(reply, { headers: statusToHeaders(err, region === undefined ? {} : { [HeaderKeys.servedRegion]: region }) });
      return;
    }
    try {
      nc.publish(reply, payload, { headers: block });
    } catch {
      // The connection is closing; the caller's deadline or its own connection status tells it.
    }
  }

  private openStream(msg: Msg, rh: ReceivedHeaders, service: string, method: MethodDescriptor, deadline: number | undefined, streams: StreamDispatcher | undefined): void {
    const reply = msg.reply!;
    const refuse = (err: RpcError): void => this.refuseStream(reply, err);
    if (method.kind === "unary") return refuse(new RpcError(Code.UNIMPLEMENTED, `${service}.${method.name} is a unary method, not a stream`));
    if (streams === undefined) return refuse(new RpcError(Code.UNIMPLEMENTED, `this server does not serve streams (${service}.${method.name})`));
    if (this.draining) return refuse(new RpcError(Code.UNAVAILABLE, "the server is shutting down", { headers: REFUSED }));
    const stream = new NatsServerStream(this.link, service, method.name, rh.headers, deadline, peerOf(reply), reply, Number(rh.credit) || 0);
    this.streams.add(stream);
    stream.accept();
    const over = (trailers: Headers): void => {
      this.streams.delete(stream);
      this.checkIdle();
      stream.end(trailers);
    };
    settleCall(
      () => streams(stream),
      over,
      errorHeaders,
      (e) => stream.abort(e instanceof RpcError ? e : new RpcError(Code.INTERNAL, "internal error")),
    );
  }

  /** Ends a stream before it started: an `end` frame with the error's status. */
  private refuseStream(reply: string, err: RpcError): void {
    try {
      this.link.nc?.publish(reply, undefined, { headers: encodeHeaders(statusHeaders(err), { [NatsKey.frame]: StreamFrame.end }) });
    } catch {
      // Closing.
    }
  }

  private checkIdle(): void {
    if (!this.draining || this.inflight > 0) return;
    for (const f of this.idle.splice(0)) f();
  }

  /**
   * Graceful shutdown: drains the subscriptions (the queue group's other members take new calls;
   * requests already delivered here are still served), lets calls in flight finish for up to
   * `graceMs`, aborts what is left (UNAVAILABLE), then closes the connection (unless it was
   * handed in).
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= this.shutdown(graceMs);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.draining = true;
    await Promise.all(this.subs.map((s) => s.drain().catch(() => undefined)));
    if (this.inflight > 0) {
      let timer: Timer | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idle.push(resolve)),
        new Promise<void>((resolve) => (timer = startTimer(graceMs, resolve))),
      ]);
      timer?.cancel();
    }
    const err = new RpcError(Code.UNAVAILABLE, `the server shut down (grace period of ${graceMs} ms over)`);
    for (const c of this.calls) c.abort(err);
    for (const s of this.streams) s.abort(err);
    await this.link.close();
  }
}
