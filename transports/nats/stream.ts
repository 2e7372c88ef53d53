import type { Msg } from "@nats-io/transport-node";
import { encodeShared } from "../../runtime/index.js";
import {
  abortError,
  startTimer,
  type Timer,
  statusFromHeaders,
  statusToHeaders,
  type CallSignal,
  type ClientStream,
  type IncomingStream,
  type TransportStreamRequest,
  type WriteMessage,
  statusHeaders,
} from "../../runtime/transport.js";
import { type MethodDescriptor, Code, RpcError, Cancellation, type Headers } from "../../runtime/api.js";
import type { Heartbeat, NatsLink, Route } from "./connection.js";
import { decodeHeaders, encodeHeaders, headerBytes, isNoResponders, NatsKey, StreamFrame, type ReceivedHeaders } from "./wire.js";

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * One end of a stream over NATS: credit-based flow control both ways, ordering checks, the
 * heartbeat, and the end of the call. Both ends send data messages to the subject of the other
 * (`to`) and receive on a token of their link's inbox.
 *
 * Flow control: each end grants its peer credit, in messages: `window` at the start, then, as
 * its consumer pulls messages out of the inbound queue, as many as were pulled (in batches of
 * half a window). A sender sends a data message only with credit in hand and otherwise waits, so
 * the inbound queue never holds more than `window` messages and a slow reader slows the writer.
 * Control messages (credit, headers, end, cancel, ping) are not counted.
 */
abstract class StreamEnd implements Route, Heartbeat {
  /** The peer's subject; undefined on a client until the server accepted the stream. */
  to: string | undefined;
  /** The terminal error of the call, once it failed. */
  error: RpcError | undefined;
  /** The peer ended its side (half-close from a client, trailers from a server). */
  remoteEnded = false;
  /** Nothing more is sent or received: routes, timers and listeners are gone. */
  finished = false;
  protected credit = 0;
  private creditWaiters: (() => void)[] = [];
  /** Payloads received and not yet pulled (at most the window). */
  private readonly inbound: Uint8Array[] = [];
  private inboundHead = 0;
  private puller: { resolve: (v: Uint8Array | undefined) => void; reject: (e: RpcError) => void } | undefined;
  private consumedSinceGrant = 0;
  private granted: number;
  private received = 0;
  private outSeq = 0;
  private lastSent = Date.now();
  private lastHeard = Date.now();
  private deadlineTimer: Timer | undefined;

  constructor(
    readonly link: NatsLink,
    readonly token: string,
    readonly deadline: number | undefined,
  ) {
    this.granted = link.window;
    link.route(token, this);
    link.watchHeartbeat(this);
    if (deadline !== undefined) {
      this.deadlineTimer = startTimer(deadline - Date.now(), () => this.expire(), true);
    }
  }

  /** This end's reply subject. */
  get subject(): string {
    return this.link.inbox + this.token;
  }

  // --- sending ---------------------------------------------------------------------------------

  /** Waits for credit (and for `to`), then publishes one data message. */
  protected async sendData(payload: Uint8Array, tooLarge: Code): Promise<void> {
    for (;;) {
      if (this.error !== undefined) throw this.error;
      if (this.finished) return; // the call ended with OK: nowhere to send, dropped
      if (this.credit > 0 && this.to !== undefined) break;
      await new Promise<void>((resolve) => this.creditWaiters.push(resolve));
    }
    const headers = encodeHeaders(undefined, { [NatsKey.seq]: String(++this.outSeq) });
    const size = headerBytes(headers) + payload.length;
    if (size > this.link.maxPayload) {
      this.outSeq--;
      throw new RpcError(tooLarge, `a stream message of ${size} bytes exceeds the NATS server's max_payload of ${this.link.maxPayload} bytes`);
    }
    this.credit--;
    this.publish(this.to, payload, headers);
  }

  /** Waits until the peer's subject is known (the server accepted the stream) or the call is over. */
  protected async addressed(): Promise<void> {
    while (this.to === undefined && this.error === undefined && !this.finished) {
      await new Promise<void>((resolve) => this.creditWaiters.push(resolve));
    }
  }

  /** Publishes a control message to the peer (when known); never throws. */
  protected control(frame: StreamFrame, headers?: Headers, extra?: Record<string, string>): void {
    if (this.to === undefined) return;
    this.publish(this.to, undefined, encodeHeaders(headers, { [NatsKey.frame]: frame, ...extra }));
  }

  protected publish(subject: string, payload: Uint8Array | undefined, headers: ReturnType<typeof encodeHeaders>, reply?: string): void {
    const nc = this.link.nc;
    if (nc === undefined) return;
    try {
      nc.publish(subject, payload, reply === undefined ? { headers } : { headers, reply });
      this.lastSent = Date.now();
    } catch {
      // The connection is closing: the loss is reported through `lost`.
    }
  }

  // --- receiving -------------------------------------------------------------------------------

  deliver(msg: Msg): void {
    if (this.finished) return;
    this.lastHeard = Date.now();
    let rh: ReceivedHeaders;
    try {
      rh = decodeHeaders(msg);
    } catch (e) {
      this.fail(new RpcError(Code.INTERNAL, `unreadable stream message headers: ${(e as Error).message}`, { cause: e }), true);
      return;
    }
    if (isNoResponders(msg, rh.code)) {
      this.fail(this.noResponders(), false);
      return;
    }
    if (rh.credit !== undefined) this.addCredit(Number(rh.credit));
    switch (rh.frame) {
      case undefined:
        this.onData(msg, rh);
        return;
      case StreamFrame.credit:
      case StreamFrame.ping:
        return;
      case StreamFrame.end:
        this.remoteEnded = true;
        this.onEnd(rh);
        this.wakePuller();
        return;
      case StreamFrame.cancel: {
        // The peer says why (its deadline passed, it was cancelled, ...); CANCELLED when it does not.
        const why = statusFromHeaders(rh.headers);
        this.fail(new RpcError(why?.code ?? Code.CANCELLED, `the peer ended the stream: ${why?.message || "cancelled"}`), false);
        return;
      }
      default:
        this.onControl(msg, rh);
    }
  }

  private onData(msg: Msg, rh: ReceivedHeaders): void {
    if (this.remoteEnded) return;
    if (++this.received > this.granted) {
      this.fail(new RpcError(Code.RESOURCE_EXHAUSTED, `the peer sent message ${this.received} with credit for ${this.granted} only`), true);
      return;
    }
    if (Number(rh.seq) !== this.received) {
      this.fail(new RpcError(Code.DATA_LOSS, `stream message ${this.received} missing (got ${rh.seq}): NATS dropped it`), true);
      return;
    }
    this.onFirstData(rh);
    const item = msg.data;
    const p = this.puller;
    if (p !== undefined) {
      this.puller = undefined;
      this.consumed();
      p.resolve(item);
    } else {
      this.inbound.push(item);
    }
  }

  private addCredit(n: number): void {
    if (!(n > 0)) return;
    this.credit += n;
    this.wakeSenders();
  }

  /** Lets senders waiting for credit (or for the call's end) look again. */
  protected wakeSenders(): void {
    const waiters = this.creditWaiters;
    this.creditWaiters = [];
    for (const w of waiters) w();
  }

  /** The next inbound payload, waiting for one; undefined once the peer ended; throws once failed. */
  protected pull(): Promise<Uint8Array | undefined> {
    if (this.inboundHead < this.inbound.length) {
      const item = this.inbound[this.inboundHead]!;
      this.inbound[this.inboundHead++] = undefined as never;
      if (this.inboundHead === this.inbound.length) this.inbound.length = this.inboundHead = 0;
      this.consumed();
      return Promise.resolve(item);
    }
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.remoteEnded) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => (this.puller = { resolve, reject }));
  }

  /** One message was taken by the consumer: grant it back, half a window at a time. */
  private consumed(): void {
    if (++this.consumedSinceGrant < Math.ceil(this.link.window / 2) || this.remoteEnded || this.finished) return;
    const n = this.consumedSinceGrant;
    this.consumedSinceGrant = 0;
    this.granted += n;
    this.control(StreamFrame.credit, undefined, { [NatsKey.credit]: String(n) });
  }

  private wakePuller(): void {
    const p = this.puller;
    if (p === undefined) return;
    this.puller = undefined;
    if (this.error !== undefined) p.reject(this.error);
    else p.resolve(undefined);
  }

  // --- the end ---------------------------------------------------------------------------------

  /**
   * Fails the call: pending and later sends and pulls reject with `error`; tells the peer when
   * `notify`. With `linger` the route stays (a client cancelled before the accept came, so that it
   * can still cancel the server's end) until the heartbeat or the deadline finishes it.
   */
  fail(error: RpcError, notify: boolean, linger = false): void {
    if (this.finished) return;
    if (this.error === undefined) {
      this.error = error;
      if (notify) this.control(StreamFrame.cancel, statusToHeaders(error, {}));
      // The call is over now: messages not yet pulled are dropped (trailers with an error status
      // go through onEnd instead, after the messages sent before them).
      this.inbound.length = this.inboundHead = 0;
      this.onFail(error);
      this.wakeSenders();
      this.wakePuller();
    }
    if (!linger) this.finish();
  }

  /** Stops routing, timers and the heartbeat; queued inbound messages can still be pulled. */
  protected finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.wakeSenders();
    this.link.unroute(this.token);
    this.link.forgetHeartbeat(this);
    this.deadlineTimer?.cancel();
  }

  lost(error: RpcError): void {
    this.fail(error, false);
  }

  private expire(): void {
    this.fail(new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded on the stream"), true);
  }

  tick(now: number): void {
    const hb = this.link.heartbeatMs;
    if (now - this.lastHeard >= 3 * hb) {
      if (this.error !== undefined) this.finish();
      else this.fail(new RpcError(Code.UNAVAILABLE, `the stream's peer sent nothing for ${now - this.lastHeard} ms (heartbeat ${hb} ms): it is gone`), true);
    } else if (this.to !== undefined && now - this.lastSent >= hb) {
      this.control(StreamFrame.ping);
    }
  }

  /** The error of a NATS no-responders status on this end's subject. */
  protected abstract noResponders(): RpcError;
  /** The first data message arrived (a client takes response headers from it). */
  protected onFirstData(_rh: ReceivedHeaders): void {}
  /** The peer ended its side. */
  protected abstract onEnd(rh: ReceivedHeaders): void;
  /** A control message other than credit, ping, end and cancel (accept, headers). */
  protected abstract onControl(msg: Msg, rh: ReceivedHeaders): void;
  /** The call failed (before the pending operations are woken). */
  protected abstract onFail(error: RpcError): void;
}

/** A promise with its resolve function, settled once. */
function settleable<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * The client end of a stream: opens it on the method subject (a queue group picks the server),
 * then talks to the server's own subject that came with the accept.
 */
export class NatsClientStream extends StreamEnd implements ClientStream {
  readonly responses: AsyncIterable<Uint8Array>;
  readonly headers: Promise<Headers>;
  readonly trailers: Promise<Headers>;
  private readonly gotHeaders = settleable<Headers>();
  private readonly gotTrailers = settleable<Headers>();
  private sending: Promise<void> = Promise.resolve();
  private sendClosed = false;
  private accepted = false;
  private headersSeen = false;
  private readonly signal: CallSignal;
  private readonly onAbort = { handleEvent: (): void => this.cancel(this.signal.reason) };

  constructor(
    link: NatsLink,
    private readonly req: TransportStreamRequest,
    private readonly subjectOfMethod: string,
  ) {
    super(link, link.nextToken(), req.deadline);
    this.headers = this.gotHeaders.promise;
    this.trailers = this.gotTrailers.promise;
    this.signal = req.signal;
    this.signal.addEventListener("abort", this.onAbort);
    this.responses = {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<Uint8Array>> => {
          const item = await this.pull();
          return item === undefined ? DONE : { done: false, value: item };
        },
        return: async (): Promise<IteratorResult<Uint8Array>> => {
          // The consumer stopped reading before the end: nobody wants the rest.
          if (!this.remoteEnded) this.cancel(new RpcError(Code.CANCELLED, "the response iterator was closed early"));
          return DONE;
        },
      }),
    };
  }

  /** Publishes the open message once connected. */
  open(timeoutMs: number): void {
    if (this.signal.aborted) {
      this.fail(abortError(this.signal, true), false);
      return;
    }
    const nc = this.link.nc!;
    const extra: Record<string, string> = { [NatsKey.frame]: StreamFrame.open, [NatsKey.credit]: String(this.link.window) };
    if (timeoutMs > 0) extra[NatsKey.timeout] = String(timeoutMs);
    const headers = encodeHeaders(this.req.headers, extra);
    if (headerBytes(headers) > this.link.maxPayload) {
      this.fail(new RpcError(Code.INVALID_ARGUMENT, "the stream's headers exceed the NATS server's max_payload", { notSent: true }), false);
      return;
    }
    try {
      nc.publish(this.subjectOfMethod, undefined, { headers, reply: this.subject });
    } catch (e) {
      this.fail(new RpcError(Code.UNAVAILABLE, `cannot open the stream: ${(e as Error).message}`, { cause: e, notSent: true }), false);
    }
  }

  send(encode: WriteMessage): Promise<void> {
    if (this.sendClosed) return Promise.reject(new RpcError(Code.FAILED_PRECONDITION, "send() after closeSend()"));
    let payload: Uint8Array;
    try {
      payload = encodeShared(encode);
    } catch (e) {
      return Promise.reject(RpcError.from(e));
    }
    const p = this.sending.then(() => this.sendOrDrop(payload));
    this.sending = p.catch(() => undefined);
    return p;
  }

  private async sendOrDrop(payload: Uint8Array): Promise<void> {
    // After the server finished with OK, more requests have nowhere to go: dropped, as gRPC does.
    if (this.remoteEnded && this.error === undefined) return;
    await this.sendData(payload, Code.INVALID_ARGUMENT);
  }

  closeSend(): Promise<void> {
    if (this.sendClosed) return this.sending;
    this.sendClosed = true;
    // A request stream closed before the server accepted it (no request sent: nothing waited for
    // credit) waits for the accept, or its end would go nowhere and the server would wait forever.
    const p = this.sending.then(async () => {
      await this.addressed();
      if (this.error !== undefined) throw this.error;
      if (!this.finished) this.control(StreamFrame.end);
    });
    this.sending = p.catch(() => undefined);
    return p;
  }

  cancel(reason?: unknown): void {
    if (this.finished) return;
    const err = abortError({ reason });
    // Not accepted yet: the route lingers so the server can be told once its accept arrives.
    this.fail(err, true, !this.accepted);
  }

  protected onControl(msg: Msg, rh: ReceivedHeaders): void {
    if (rh.frame === StreamFrame.accept) {
      this.accepted = true;
      this.to = msg.reply;
      if (this.error !== undefined) {
        // Cancelled while the open was on its way.
        this.control(StreamFrame.cancel, statusToHeaders(this.error, {}));
        this.finish();
        return;
      }
      this.wakeSenders();
    } else if (rh.frame === StreamFrame.headers) {
      this.resolveHeaders(rh.headers);
    }
  }

  protected noResponders(): RpcError {
    return this.accepted
      ? new RpcError(Code.UNAVAILABLE, "the stream's server is gone (no responders on its subject)")
      : new RpcError(Code.UNAVAILABLE, `no responders on ${this.subjectOfMethod}: no server of ${this.req.service} is subscribed (is it running, with this prefix?)`, {
          notSent: true,
        });
  }

  protected override onFirstData(rh: ReceivedHeaders): void {
    if (!this.headersSeen) this.resolveHeaders(rh.headers);
  }

  private resolveHeaders(h: Headers): void {
    if (this.headersSeen) return;
    this.headersSeen = true;
    this.gotHeaders.resolve(h);
  }

  protected onEnd(rh: ReceivedHeaders): void {
    const trailers = rh.headers;
    const err = statusFromHeaders(trailers);
    this.resolveHeaders(trailers);
    this.gotTrailers.resolve(trailers);
    if (err !== undefined) this.error = err;
    this.finish();
  }

  protected onFail(error: RpcError): void {
    const trailers = statusHeaders(error);
    this.resolveHeaders(trailers);
    this.gotTrailers.resolve(trailers);
  }

  protected override finish(): void {
    this.signal.removeEventListener("abort", this.onAbort);
    super.finish();
  }
}

/** The server end of a stream: what the StreamDispatcher gets as an IncomingStream. */
export class NatsServerStream extends StreamEnd implements IncomingStream {
  readonly signal: Cancellation = new Cancellation();
  readonly requests: AsyncIterable<Uint8Array>;
  private headersSent = false;

  constructor(
    link: NatsLink,
    readonly service: string,
    readonly method: string,
    readonly headers: Headers,
    deadline: number | undefined,
    readonly peer: string,
    clientSubject: string,
    clientCredit: number,
  ) {
    super(link, link.nextToken(), deadline);
    this.to = clientSubject;
    this.credit = clientCredit;
    this.requests = {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<Uint8Array>> => {
          const item = await this.pull();
          return item === undefined ? DONE : { done: false, value: item };
        },
      }),
    };
  }

  /** Tells the client the stream is taken, with the subject to send to and its request credit. */
  accept(): void {
    this.publish(this.to!, undefined, encodeHeaders(undefined, { [NatsKey.frame]: StreamFrame.accept, [NatsKey.credit]: String(this.link.window) }), this.subject);
  }

  sendHeaders(headers: Headers): void {
    if (this.headersSent || this.finished) return;
    this.headersSent = true;
    this.control(StreamFrame.headers, headers);
  }

  async send(encode: WriteMessage): Promise<void> {
    if (this.error !== undefined) throw this.error;
    await this.sendData(encodeShared(encode), Code.RESOURCE_EXHAUSTED);
  }

  /** The handler is done: sends the trailers, unless the call already failed. */
  end(trailers: Headers): void {
    if (this.error === undefined && !this.finished) this.control(StreamFrame.end, trailers);
    this.error ??= new RpcError(Code.CANCELLED, "the stream has ended");
    this.finish();
  }

  /** Aborts the call from the server side (shutdown): the handler sees its signal abort. */
  abort(error: RpcError): void {
    if (this.error === undefined && !this.finished) this.control(StreamFrame.end, statusToHeaders(error, {}));
    this.fail(error, false);
  }

  protected onEnd(): void {
    // The client half-closed: the request iterator ends once drained.
  }

  protected onControl(): void {
    // Nothing else is meant for a server end.
  }

  protected noResponders(): RpcError {
    return new RpcError(Code.CANCELLED, "the client is gone (no responders on its subject)");
  }

  protected onFail(error: RpcError): void {
    this.signal.abort(error);
  }
}

/** The subject a method is served on. */
export function methodSubject(prefix: string, service: string, method: MethodDescriptor | string): string {
  return `${prefix}.${service}.${typeof method === "string" ? method : method.name}`;
}
