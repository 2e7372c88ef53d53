import { AsyncLocalStorage } from "node:async_hooks";
import { abortError, deadlineExceeded, earliest, raceSignal, timerAt, type Timer } from "./deadline.js";
import type { MethodDescriptor, ServiceDescriptor } from "./descriptors.js";
import type { RpcError } from "./errors.js";
import { Metainfo } from "./metainfo.js";
import { Cancellation, onAbort } from "./signal.js";
import type { PeerIdentity } from "./tls.js";
import type { CallSignal, Endpoint, Headers } from "./transport.js";

/** A typed key for per-call state, with the value it reads as when never set. */
export interface ContextKey<T> {
  readonly id: symbol;
  readonly defaultValue: T;
  readonly description: string;
}

/**
 * Creates a typed context key (connect-es's createContextKey): middleware and handlers share
 * per-call state through `ctx.values.get(key)` / `ctx.values.set(key, value)` without string
 * maps or casts.
 */
export function createContextKey<T>(defaultValue: T, options: { description?: string } = {}): ContextKey<T> {
  const description = options.description ?? "context key";
  return { id: Symbol(description), defaultValue, description };
}

/**
 * The values of a call, by typed key. A client call made while serving another call reads
 * through to the values of that server call (like a Go context); what it sets stays its own.
 */
export class ContextValues {
  private map: Map<symbol, unknown> | undefined;

  constructor(private readonly parent?: ContextValues) {}

  /** The value under `key`: this call's, else the parent call's, else the key's default. */
  get<T>(key: ContextKey<T>): T {
    if (this.map?.has(key.id)) return this.map.get(key.id) as T;
    return this.parent === undefined ? key.defaultValue : this.parent.get(key);
  }

  /** Sets the value under `key` for this call; returns this, for chaining. */
  set<T>(key: ContextKey<T>, value: T): this {
    (this.map ??= new Map()).set(key.id, value);
    return this;
  }

  /** Whether a value is set under `key`, here or in the parent call. */
  has(key: ContextKey<unknown>): boolean {
    return this.map?.has(key.id) === true || (this.parent?.has(key) ?? false);
  }

  /** Removes this call's value under `key` (a parent's value shows through again). */
  delete(key: ContextKey<unknown>): this {
    this.map?.delete(key.id);
    return this;
  }
}

/** Which end of a call a context belongs to. */
export type Side = "client" | "server";

/** The read consistency a call asks for (header `x-consistency-level`). */
export type Consistency = "linearizable" | "eventual";

/** What a CallContext is made from. */
export interface CallContextInit {
  readonly side: Side;
  readonly service: ServiceDescriptor;
  readonly method: MethodDescriptor;
  readonly headers: Headers;
  /**
   * Made on first use when not given: on a server from the request's headers, on a client empty
   * (a call that carries none).
   */
  readonly metainfo?: Metainfo | undefined;
  /** Made empty on first use when not given. */
  readonly values?: ContextValues | undefined;
  readonly deadline?: number | undefined;
  readonly region?: string | undefined;
  readonly consistency?: Consistency | undefined;
  readonly peer?: string | undefined;
  /** Server side: the caller's verified TLS identity, when its transport has one. */
  readonly peerIdentity?: PeerIdentity | undefined;
  /**
   * Server side: the incoming call, whose `signal` is read (and followed) only once something
   * follows this call's cancellation, so a transport may create that signal lazily.
   */
  readonly upstream?: { readonly signal: CallSignal } | undefined;
  /** Server side: when the call's start began (performance.now()), when a run queue started it. */
  readonly startedAt?: number | undefined;
}

/**
 * The state of one call, on either side: what a handler gets as its second argument and what
 * every middleware sees as `req.ctx`.
 *
 * `signal` aborts when the call is cancelled (by the caller, or the connection going away) or
 * when its deadline passes, with an RpcError (CANCELLED or DEADLINE_EXCEEDED) as its reason.
 * Cancellation is wired up lazily: until something reads `signal` or `cancellation`, a call
 * costs no AbortSignal, no listener and no deadline timer (a server then drops a handler's
 * answer that comes after the deadline when it comes), and `untimedCancellation`, what a
 * client gives a transport that times its calls itself, arms no deadline timer either.
 */
export class CallContext {
  readonly side: Side;
  readonly service: ServiceDescriptor;
  readonly method: MethodDescriptor;
  /** Request headers: what the client sends, or what the server received. */
  readonly headers: Headers;
  /**
   * Server side: response headers the handler and middleware add, sent back with the answer.
   * (A client reads the headers it received from the response, or through `onHeaders`.) Made on
   * first use: a client call never needs it.
   */
  get responseHeaders(): Headers {
    return (this.replyHeaders ??= {});
  }
  /**
   * The call's metainfo (see Metainfo). Made on first use when the context was given none: a
   * server call's is then read from its request headers as they are at that moment, a client
   * call's is empty.
   */
  get metainfo(): Metainfo {
    return (this.meta ??= this.side === "server" ? new Metainfo().readHeaders(this.headers, "transient", "persistent") : new Metainfo());
  }

  /** The metainfo if it was made (see `metainfo`): a server writes back the backward values of one. */
  get metainfoIfMade(): Metainfo | undefined {
    return this.meta;
  }

  /** Values middleware and handlers keep for this call (see ContextValues); made on first use. */
  get values(): ContextValues {
    return (this.vals ??= new ContextValues());
  }

  /** Absolute deadline (Date.now() clock, ms), or undefined for none. */
  deadline: number | undefined;
  /** The caller's region: the client's own on the client side, the caller's on the server side. */
  region: string | undefined;
  consistency: Consistency | undefined;
  /** The other end: the chosen instance's address on the client, the caller's on the server. */
  peer: string | undefined;
  /**
   * Server side: who the caller is, as its verified client certificate says (mutual TLS on the
   * TCP transport); undefined without one. What authorization middleware decides on.
   */
  readonly peerIdentity: PeerIdentity | undefined;
  /**
   * Server side: when the run queue started the call (performance.now() clock), to the clock as
   * the queue last read it: undefined without admission control (`admission: false`), and on the
   * client. What the stats middleware times a server call from.
   */
  readonly startedAt: number | undefined;
  /** Client side: the instance load balancing picked for this attempt. */
  endpoint: Endpoint | undefined = undefined;
  /** Client side: which attempt this is, from 1 (retries and backup requests count up). */
  attempt = 1;

  private meta: Metainfo | undefined;
  private vals: ContextValues | undefined;
  private replyHeaders: Headers | undefined = undefined;
  private readonly cancel = new Cancellation();
  private active = false;
  /** The deadline is armed (or the call is over): see `arm`. */
  private timed = false;
  private disposed = false;
  private sources: CallSignal[] | undefined;
  private upstreamCall: { readonly signal: CallSignal } | undefined;
  private timer: Timer | undefined;
  private unlinks: (() => void)[] | undefined;

  constructor(init: CallContextInit) {
    this.side = init.side;
    this.service = init.service;
    this.method = init.method;
    this.headers = init.headers;
    this.meta = init.metainfo;
    this.vals = init.values;
    this.deadline = init.deadline;
    this.region = init.region;
    this.consistency = init.consistency;
    this.peer = init.peer;
    this.peerIdentity = init.peerIdentity;
    this.upstreamCall = init.upstream;
    this.startedAt = init.startedAt;
  }

  /**
   * Aborts when the call is cancelled or its deadline passes; the reason is an RpcError. A real
   * AbortSignal, for APIs that need one (fetch, timers/promises); middleware and transports use
   * the cheaper `cancellation`.
   */
  get signal(): AbortSignal {
    return this.timedCancel().toAbortSignal();
  }

  /** The call's cancellation as a CallSignal: what transports get, cheap to follow. */
  get cancellation(): CallSignal {
    return this.timedCancel();
  }

  /**
   * The call's cancellation without its deadline: aborted when the call is cancelled, but not
   * when the deadline passes, for a transport that times the call itself
   * (`ClientTransport.timesCalls`). Reading `cancellation` or `signal` later arms the deadline.
   */
  get untimedCancellation(): CallSignal {
    this.activate();
    return this.cancel;
  }

  /** Ms left before the deadline (0 once passed), or undefined when there is none. */
  timeLeft(now: number = Date.now()): number | undefined {
    return this.deadline === undefined ? undefined : Math.max(0, this.deadline - now);
  }

  /** Aborts the call with `reason`; later calls do nothing. */
  abort(reason: RpcError): void {
    this.cancel.abort(reason);
  }

  /** Aborts this call when `signal` aborts (the caller's signal, a parent call's cancellation). */
  follow(signal: CallSignal | undefined): void {
    if (signal === undefined) return;
    if (this.active) this.link(signal);
    else (this.sources ??= []).push(signal);
  }

  /**
   * Sets the deadline to the earlier of the current one and `deadline`; the call aborts with
   * DEADLINE_EXCEEDED when it passes (once its cancellation is followed).
   */
  expireAt(deadline: number | undefined): void {
    const before = this.deadline;
    this.deadline = earliest(before, deadline);
    if (this.timed && this.deadline !== before) this.arm();
  }

  /** Settles like `promise`, or rejects with the abort reason as soon as the call is aborted. */
  race<T>(promise: Promise<T>): Promise<T> {
    return raceSignal(promise, this.cancellation);
  }

  /**
   * A context for one attempt of this client call (retries, backup requests): the same request,
   * headers, metainfo and values, its own cancellation (aborted with this one, or alone to cancel
   * the attempt), endpoint and response headers.
   */
  fork(attempt: number): CallContext {
    const c = new CallContext(this);
    c.attempt = attempt;
    c.follow(this.cancellation);
    return c;
  }

  /**
   * Releases the deadline timer and the links to other signals once the call is over; from then
   * on the call is no longer aborted (unless by `abort`).
   */
  dispose(): void {
    this.active = this.timed = this.disposed = true;
    this.sources = undefined;
    this.timer?.cancel();
    this.timer = undefined;
    if (this.unlinks !== undefined) for (const unlink of this.unlinks) unlink();
    this.unlinks = undefined;
  }

  /** The call's cancellation, wired up, its deadline armed. */
  private timedCancel(): Cancellation {
    this.activate();
    if (!this.timed) this.arm();
    return this.cancel;
  }

  /** Wires up cancellation on first use: the upstream signal, followed signals (the deadline: `arm`). */
  private activate(): void {
    if (this.active) return;
    this.active = true;
    if (this.upstreamCall !== undefined) this.link(this.upstreamCall.signal);
    if (this.sources !== undefined) for (const s of this.sources) this.link(s);
    this.sources = undefined;
  }

  /** Follows `signal`, turning a reason that is not an RpcError (a user's abort()) into CANCELLED. */
  private link(signal: CallSignal): void {
    if (signal.aborted) this.cancel.abort(abortError(signal));
    else (this.unlinks ??= []).push(onAbort(signal, () => this.cancel.abort(abortError(signal))));
  }

  /** (Re-)arms the deadline timer; any deadline, however far (a peer's timeout may be huge). */
  private arm(): void {
    this.timed = true;
    this.timer?.cancel();
    this.timer = undefined;
    if (this.deadline === undefined || this.cancel.aborted || this.disposed) return;
    if (this.deadline <= Date.now()) this.cancel.abort(deadlineExceeded());
    else this.timer = timerAt(this.deadline, () => this.cancel.abort(deadlineExceeded()));
  }
}

let storage: AsyncLocalStorage<CallContext> | undefined;

/**
 * Runs `fn` with `ctx` as the current server call, so client calls made anywhere below it
 * inherit the call's deadline, cancellation, consistency and persistent metainfo without
 * passing `parent`. The AsyncLocalStorage is created on first use: a process whose servers turn
 * `asyncContext` off never pays for it (Node 20 tracks every promise once one is in use).
 */
export function runWithContext<T>(ctx: CallContext, fn: () => T): T;
/** The same, calling `fn(arg)`: no closure needed for a call's one argument. */
export function runWithContext<A, T>(ctx: CallContext, fn: (arg: A) => T, arg: A): T;
export function runWithContext<A, T>(ctx: CallContext, fn: (arg?: A) => T, arg?: A): T {
  return (storage ??= new AsyncLocalStorage<CallContext>()).run(ctx, fn, arg);
}

/** The server call being handled in this async flow, if any (see runWithContext). */
export function currentContext(): CallContext | undefined {
  return storage?.getStore();
}
