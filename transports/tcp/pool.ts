import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { startTimer, timerDelay } from "../../runtime/transport.js";
import { Code, RpcError, type ClientTls } from "../../runtime/api.js";
import { clientConnectOptions, isLoopbackHost, tlsErrorText } from "./tls.js";

/** How a pool connects and keeps its connections: the client options it needs. */
export interface PoolOptions {
  /** Connections per address. */
  readonly size: number;
  readonly connectTimeoutMs: number;
  /** First delay after a failed connect; doubles per failure up to `backoffMaxMs`, with jitter. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** A connection with no call in flight and no traffic for this long is closed (0: never). */
  readonly idleTimeoutMs: number;
  /** Opens a connection (see {@link dial}). */
  readonly dial: (address: string, timeoutMs: number) => Promise<Socket>;
}

/** What the pool needs of a connection. */
export interface PooledConnection {
  /** Not usable for new calls: closed, or the server said it is going away. */
  readonly retired: boolean;
  /** Its write queue is past the limit. */
  readonly congested: boolean;
  /** Calls waiting for a response. */
  readonly inflight: number;
  /** Changes whenever a frame goes in or out. */
  readonly activity: number;
  /** Closes it gracefully (after flushing); used for idle close. */
  close(reason: string): void;
}

/** Splits `host:port` (or `[v6]:port`) into its parts. */
export function parseAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(":");
  const port = Number(address.slice(i + 1));
  let host = address.slice(0, i);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new RpcError(Code.INVALID_ARGUMENT, `bad address "${address}": expected host:port`, { notSent: true });
  }
  return { host, port };
}

/**
 * Opens a connection to `address`, over TLS when `tls` is given (the server's certificate is
 * verified; the promise resolves after the handshake), in plaintext otherwise, which only a
 * loopback address gets unless `plaintext` says so. Fails with UNAVAILABLE (notSent) on error,
 * on a failed handshake (the reason says what did not verify) or after `timeoutMs`; with
 * FAILED_PRECONDITION (notSent) for plaintext to another machine that was not allowed.
 */
export function dial(address: string, timeoutMs: number, tls?: ClientTls, plaintext = false): Promise<Socket> {
  const { host, port } = parseAddress(address);
  if (tls === undefined && !plaintext && !isLoopbackHost(host)) {
    return Promise.reject(
      new RpcError(
        Code.FAILED_PRECONDITION,
        `refusing to call ${address} without TLS: it is not a loopback address. Set the client's tls option, or plaintext: true to send calls unencrypted on purpose`,
        { notSent: true },
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const socket = tls === undefined ? netConnect({ host, port }) : tlsConnect(clientConnectOptions(tls, host, port));
    const fail = (err: Error): void => {
      timer.cancel();
      socket.destroy();
      const tlsFailure = tls !== undefined && !/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|timed out/.test(err.message);
      const why = tlsFailure ? `TLS handshake failed: ${tlsErrorText(err)}` : err.message;
      reject(new RpcError(Code.UNAVAILABLE, `cannot connect to ${address}: ${why}`, { notSent: true, cause: err }));
    };
    const timer = startTimer(timeoutMs, () => fail(new Error(`connect timed out after ${timeoutMs} ms`)));
    socket.once("error", fail);
    socket.once(tls === undefined ? "connect" : "secureConnect", () => {
      timer.cancel();
      socket.off("error", fail);
      resolve(socket);
    });
  });
}

/**
 * The connections of one client to one address: up to `size` multiplexed connections, used in
 * round robin. The pool grows on demand (a call that finds fewer than `size` connections starts
 * another in the background) or all at once by `warmUp`. A failed connect starts a backoff
 * window (100 ms doubling to 10 s by default, with jitter) during which calls that find no
 * connection fail fast with UNAVAILABLE (notSent), so load balancing can go elsewhere; a
 * warmed-up pool also reconnects by itself after losing a connection, with the same backoff.
 *
 * Health, for load balancing (`avoidUntil`): a pool whose server said it is going away (`crrst`)
 * or whose last connect failed is to be avoided. It is probed with a background connect (at
 * once after `crrst`, then after each backoff, and only while a balancer asks), and comes back
 * when one succeeds: a new server on that address. `onChange` is called whenever the answer
 * changes other than by the passing of the time it gave.
 */
export class AddressPool<C extends PooledConnection> {
  readonly conns: C[] = [];
  private connecting = 0;
  private pendingConnect: Promise<C> | undefined;
  private failures = 0;
  private retryAt = 0;
  private lastError: RpcError | undefined;
  private rr = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Keep `size` connections open (set by warm-up, cleared by idle close). */
  warmed = false;
  /** The server said it is going away (`crrst`), and no connection has been made since. */
  private draining = false;
  closed = false;
  private readonly idle = new Map<C, { activity: number; since: number }>();

  constructor(
    readonly address: string,
    private readonly options: PoolOptions,
    /** Wraps a connected socket into a connection that reports back through `release`. */
    private readonly wrap: (socket: Socket, pool: AddressPool<C>) => C,
    /** Called when `avoidUntil` may answer otherwise than it did. */
    private readonly onChange: () => void = () => {},
  ) {}

  /**
   * 0 when calls may come here; else the time (Date.now() clock) until which to avoid this
   * address, Infinity while a probe is in flight (its end calls `onChange`). Starts that probe
   * when one is due.
   */
  avoidUntil(now: number): number {
    if (!this.draining && (this.lastError === undefined || this.conns.some((c) => !c.retired))) return 0;
    if (this.closed) return Infinity;
    if (this.connecting > 0) return Infinity;
    if (now < this.retryAt) return this.retryAt;
    this.connect(this.options.connectTimeoutMs).catch(() => {
      // recorded in the backoff state, and reported through onChange
    });
    return Infinity;
  }

  /** The server said it is going away: avoid this address until a new connection is made. */
  markDraining(): void {
    if (this.draining) return;
    this.draining = true;
    this.onChange();
  }

  /**
   * A connection for the next call, or undefined when none is usable. Starts growing the pool
   * when it is below its size. Throws RESOURCE_EXHAUSTED when every connection is congested.
   */
  pick(): C | undefined {
    const conns = this.conns;
    const n = conns.length;
    if (n + this.connecting < this.options.size) this.grow();
    let congested = 0;
    for (let i = 0; i < n; i++) {
      const c = conns[this.rr++ % n]!;
      if (c.retired) continue;
      if (!c.congested) return c;
      congested++;
    }
    if (congested > 0) {
      throw new RpcError(
        Code.RESOURCE_EXHAUSTED,
        `too many bytes queued for ${this.address}: the peer is not reading fast enough (maxQueuedBytes)`,
        { notSent: true },
      );
    }
    return undefined;
  }

  /** A usable connection, connecting if needed. Fails fast inside a backoff window. */
  acquire(timeoutMs: number): Promise<C> {
    const c = this.pick();
    if (c !== undefined) return Promise.resolve(c);
    if (this.closed) return Promise.reject(closedError());
    if (this.pendingConnect !== undefined) return this.pendingConnect;
    if (Date.now() < this.retryAt && this.lastError !== undefined) {
      const e = this.lastError;
      return Promise.reject(
        new RpcError(Code.UNAVAILABLE, `${e.message} (next attempt in ${this.retryAt - Date.now()} ms)`, { notSent: true, cause: e }),
      );
    }
    return this.connect(timeoutMs);
  }

  /** Opens `size` connections now. Rejects with the first error once all attempts are done. */
  async warmUp(): Promise<void> {
    this.warmed = true;
    const attempts: Promise<C>[] = [];
    for (let i = this.conns.length + this.connecting; i < this.options.size; i++) attempts.push(this.connect(this.options.connectTimeoutMs));
    const results = await Promise.allSettled(attempts);
    const failed = results.find((r) => r.status === "rejected");
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }

  /** Opens one more connection. */
  connect(timeoutMs: number): Promise<C> {
    this.connecting++;
    const p = this.options.dial(this.address, Math.min(timeoutMs, this.options.connectTimeoutMs)).then(
      (socket) => {
        this.connecting--;
        if (this.pendingConnect === p) this.pendingConnect = undefined;
        if (this.closed) {
          socket.destroy();
          throw closedError();
        }
        const recovered = this.draining || this.lastError !== undefined;
        this.failures = 0;
        this.retryAt = 0;
        this.lastError = undefined;
        this.draining = false;
        const c = this.wrap(socket, this);
        this.conns.push(c);
        if (recovered) this.onChange();
        return c;
      },
      (err: RpcError) => {
        this.connecting--;
        if (this.pendingConnect === p) this.pendingConnect = undefined;
        this.failures++;
        this.lastError = err;
        this.retryAt = Date.now() + this.backoff();
        this.scheduleReconnect();
        this.onChange();
        throw err;
      },
    );
    this.pendingConnect ??= p;
    return p;
  }

  private grow(): void {
    if (this.closed || Date.now() < this.retryAt) return;
    this.connect(this.options.connectTimeoutMs).catch(() => {
      // recorded in the backoff state; calls see it when no connection is left
    });
  }

  private backoff(): number {
    const { backoffBaseMs, backoffMaxMs } = this.options;
    const d = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.min(this.failures - 1, 30));
    return Math.round(d * (0.8 + Math.random() * 0.4));
  }

  /** Called by a connection when it is gone or retired. */
  release(c: C, unexpected: boolean): void {
    const i = this.conns.indexOf(c);
    if (i >= 0) this.conns.splice(i, 1);
    this.idle.delete(c);
    if (unexpected) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (!this.warmed || this.closed || this.reconnectTimer !== undefined) return;
    const delay = Math.max(0, this.retryAt - Date.now(), this.failures === 0 ? this.options.backoffBaseMs : 0);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.warmed || this.closed) return;
      const missing = this.options.size - this.conns.length - this.connecting;
      for (let i = 0; i < missing; i++) this.connect(this.options.connectTimeoutMs).catch(() => {});
    }, timerDelay(delay));
    this.reconnectTimer.unref();
  }

  /** Closes connections that have been idle for `idleTimeoutMs` (called periodically). */
  sweep(now: number): void {
    const limit = this.options.idleTimeoutMs;
    if (limit <= 0) return;
    for (const c of [...this.conns]) {
      const seen = this.idle.get(c);
      if (seen === undefined || seen.activity !== c.activity || c.inflight > 0) {
        this.idle.set(c, { activity: c.activity, since: now });
      } else if (now - seen.since >= limit) {
        this.warmed = false;
        c.close(`idle for ${limit} ms`);
      }
    }
  }

  /** Closes the pool: no new connections; `closeAll` closes the open ones. */
  close(): void {
    this.closed = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }
}

function closedError(): RpcError {
  return new RpcError(Code.UNAVAILABLE, "the TCP client transport is closed", { notSent: true });
}
