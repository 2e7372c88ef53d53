import { connect, createInbox, type Msg, type NatsConnection, type NodeConnectionOptions, type Status, type Subscription } from "@nats-io/transport-node";
import { Code, RpcError } from "../../runtime/api.js";

/** Where a NATS connection is: what `status().state` says. */
export type NatsState = "idle" | "connecting" | "connected" | "disconnected" | "reconnecting" | "closed";

/** A NATS transport's connection as it stands: the answer of `status()`. */
export interface NatsStatus {
  readonly state: NatsState;
  /** The server (`host:port`) connected to, or last connected to. */
  readonly server: string | undefined;
  /** When `state` last changed (Date.now() based, ms). */
  readonly since: number;
  /** Reconnects completed since the transport connected first. */
  readonly reconnects: number;
  /** Connections lost since the transport connected first. */
  readonly disconnects: number;
  /** The last connection error, if any. */
  readonly lastError: string | undefined;
  /** The connected server's max_payload (bytes), headers included. */
  readonly maxPayload: number | undefined;
}

/** Something that happened to the connection. */
export interface NatsStatusEvent {
  readonly type: "connecting" | "connected" | "disconnected" | "reconnecting" | "reconnected" | "error" | "ldm" | "closed";
  /** The status after the event. */
  readonly status: NatsStatus;
  readonly error?: Error;
}

/** Receives every connection event of a transport (connects, losses, reconnects, errors). */
export type NatsStatusListener = (event: NatsStatusEvent) => void;

/** Connection options shared by the NATS client and server transports. */
export interface NatsConnectionOptions {
  /** NATS server URLs (`nats://host:port` or `host:port`). Default "127.0.0.1:4222". Ignored with `connection`. */
  servers?: string | string[];
  /**
   * An open connection to use instead of making one. The transport subscribes on it but never
   * closes it; connection events still reach `status()` and `onStatus`.
   */
  connection?: NatsConnection;
  /**
   * More options for the connection the transport makes (name, credentials, TLS, ...). The
   * transport's defaults: reconnect forever (`maxReconnectAttempts: -1`) every 250 ms with 100 ms
   * jitter, a 2 s connect timeout, `noAsyncTraces`.
   */
  connectOptions?: Omit<NodeConnectionOptions, "servers">;
  /** Subject prefix: methods are served on `<prefix>.<package.Service>.<Method>`. Default "meridian". */
  prefix?: string;
  /** Called on every connection event; also see `status()` and `onStatus()` of the transport. */
  onStatus?: NatsStatusListener;
  /** Streaming: a ping goes out after this long without sending; a peer silent 3x as long fails the stream. Default 5000 ms. */
  heartbeatMs?: number;
  /** Streaming: messages a receiver lets its peer send ahead (credit window). Default 32. */
  streamWindow?: number;
}

/** The default subject prefix. */
export const DEFAULT_PREFIX = "meridian";

/** A call waiting on the link's inbox: a unary call's reply, or one end of a stream. */
export interface Route {
  /** A message arrived for this route's token. */
  deliver(msg: Msg): void;
  /** The connection was lost or closed: nothing more will arrive. */
  lost(error: RpcError): void;
}

/** Something the link checks on its heartbeat timer (an open stream). */
export interface Heartbeat {
  tick(now: number): void;
}

/**
 * One NATS connection of a transport, with what both halves need on top of it: status tracking
 * and its listeners, and a muxed inbox (`<inbox>.*`, one subscription) whose tokens route
 * replies and stream messages to the call waiting for them.
 */
export class NatsLink {
  nc: NatsConnection | undefined;
  /** `<inbox>.`: a reply subject is this plus a token. */
  inbox = "";
  readonly prefix: string;
  readonly heartbeatMs: number;
  readonly window: number;
  private readonly routes = new Map<string, Route>();
  private readonly listeners = new Set<NatsStatusListener>();
  private readonly heartbeats = new Set<Heartbeat>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private connecting: Promise<NatsConnection> | undefined;
  private inboxSub: Subscription | undefined;
  private failedAt = 0;
  private failure: RpcError | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;
  private token = 0;
  private current: NatsStatus = {
    state: "idle",
    server: undefined,
    since: Date.now(),
    reconnects: 0,
    disconnects: 0,
    lastError: undefined,
    maxPayload: undefined,
  };

  constructor(
    private readonly options: NatsConnectionOptions,
    private readonly role: "client" | "server",
  ) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.heartbeatMs = options.heartbeatMs ?? 5000;
    this.window = Math.max(1, options.streamWindow ?? 32);
    if (options.onStatus !== undefined) this.listeners.add(options.onStatus);
  }

  get status(): NatsStatus {
    return this.current;
  }

  /** True when calls can be sent now. */
  get up(): boolean {
    return this.current.state === "connected";
  }

  /** The server's max_payload, or 1 MiB (NATS's default) before the first connect. */
  get maxPayload(): number {
    return this.nc?.info?.max_payload ?? 1024 * 1024;
  }

  addListener(listener: NatsStatusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The connection, connecting first when there is none. A failed connect is remembered for
   * 250 ms: calls in that window fail at once rather than each trying again.
   */
  connect(): Promise<NatsConnection> {
    if (this.nc !== undefined) return Promise.resolve(this.nc);
    if (this.closing) return Promise.reject(new RpcError(Code.UNAVAILABLE, `the NATS ${this.role} transport is closed`, { notSent: true }));
    if (this.failure !== undefined && Date.now() - this.failedAt < 250) return Promise.reject(this.failure);
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<NatsConnection> {
    this.update("connecting", {}, "connecting");
    let nc: NatsConnection;
    try {
      nc =
        this.options.connection ??
        (await connect({
          servers: this.options.servers ?? "127.0.0.1:4222",
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          reconnectJitter: 100,
          timeout: 2000,
          noAsyncTraces: true,
          name: `meridian-${this.role}`,
          ...this.options.connectOptions,
        }));
    } catch (e) {
      const servers = String(this.options.servers ?? "127.0.0.1:4222");
      this.failure = new RpcError(
        Code.UNAVAILABLE,
        `cannot connect to NATS at ${servers}: ${e instanceof Error ? e.message : String(e)} (is nats-server running there?)`,
        { cause: e, notSent: true },
      );
      this.failedAt = Date.now();
      this.update("disconnected", { lastError: this.failure.message }, "disconnected", e instanceof Error ? e : undefined);
      throw this.failure;
    }
    if (this.closing) {
      if (this.options.connection === undefined) await nc.close();
      throw new RpcError(Code.UNAVAILABLE, `the NATS ${this.role} transport is closed`, { notSent: true });
    }
    this.failure = undefined;
    const base = createInbox(this.options.connectOptions?.inboxPrefix);
    this.inbox = `${base}.`;
    this.inboxSub = nc.subscribe(`${base}.*`, { callback: (err, msg) => (err === null ? this.deliver(msg) : undefined) });
    this.nc = nc;
    void this.watch(nc);
    this.update(nc.isClosed() ? "closed" : "connected", { server: nc.getServer(), maxPayload: nc.info?.max_payload }, "connected");
    return nc;
  }

  /** Follows nats.js's status events for as long as the connection lives. */
  private async watch(nc: NatsConnection): Promise<void> {
    const closed = nc.closed().then((e) => {
      if (this.nc !== nc) return;
      this.nc = undefined;
      const error = e instanceof Error ? e : undefined;
      this.update("closed", { lastError: error?.message ?? this.current.lastError }, "closed", error);
      this.lose(new RpcError(Code.UNAVAILABLE, `the NATS connection closed${error ? `: ${error.message}` : ""}`, { cause: error }));
    });
    for await (const s of nc.status()) if (this.nc === nc) this.onNatsStatus(s);
    await closed;
  }

  private onNatsStatus(s: Status): void {
    switch (s.type) {
      case "disconnect":
        this.update("disconnected", { server: s.server, disconnects: this.current.disconnects + 1 }, "disconnected");
        this.lose(new RpcError(Code.UNAVAILABLE, `lost the connection to NATS server ${s.server}: no answer can arrive for calls in flight`));
        break;
      case "reconnecting":
        if (this.current.state !== "reconnecting") this.update("reconnecting", {}, "reconnecting");
        break;
      case "reconnect":
        this.update(
          "connected",
          { server: s.server, reconnects: this.current.reconnects + 1, maxPayload: this.nc?.info?.max_payload },
          "reconnected",
        );
        break;
      case "error":
        this.update(this.current.state, { lastError: s.error.message }, "error", s.error);
        break;
      case "ldm":
        this.update(this.current.state, {}, "ldm");
        break;
      default:
        break;
    }
  }

  private update(state: NatsState, patch: Partial<NatsStatus>, type?: NatsStatusEvent["type"], error?: Error): void {
    const changed = state !== this.current.state;
    this.current = { ...this.current, ...patch, state, since: changed ? Date.now() : this.current.since };
    if (type === undefined) return;
    const event: NatsStatusEvent = error === undefined ? { type, status: this.current } : { type, status: this.current, error };
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  /** A fresh token for a reply subject (`inbox + token`). */
  nextToken(): string {
    return (++this.token).toString(36);
  }

  /** Routes messages sent to `inbox + token` to `route` until unrouted. */
  route(token: string, route: Route): void {
    this.routes.set(token, route);
  }

  /** Stops routing `token`; false when it was not routed. */
  unroute(token: string): boolean {
    return this.routes.delete(token);
  }

  private deliver(msg: Msg): void {
    const subject = msg.subject;
    const route = this.routes.get(subject.slice(this.inbox.length));
    if (route !== undefined) route.deliver(msg);
  }

  /** Tells every route that nothing more will arrive (each unroutes itself). */
  private lose(error: RpcError): void {
    for (const route of [...this.routes.values()]) route.lost(error);
  }

  /** Checks `h` on the heartbeat timer until `forget`. */
  watchHeartbeat(h: Heartbeat): void {
    this.heartbeats.add(h);
    if (this.heartbeatTimer === undefined) {
      const every = Math.max(10, Math.floor(this.heartbeatMs / 2));
      this.heartbeatTimer = setInterval(() => {
        const now = Date.now();
        for (const x of this.heartbeats) x.tick(now);
      }, every);
      this.heartbeatTimer.unref();
    }
  }

  forgetHeartbeat(h: Heartbeat): void {
    this.heartbeats.delete(h);
    if (this.heartbeats.size === 0 && this.heartbeatTimer !== undefined) {
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = undefined;
    }
  }

  /**
   * Closes the connection if the transport made it (after flushing what is queued); a borrowed
   * connection is left open and only this link's inbox subscription ends.
   */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.lose(new RpcError(Code.UNAVAILABLE, `the NATS ${this.role} transport was closed`));
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.heartbeats.clear();
    await this.connecting?.catch(() => undefined);
    const nc = this.nc;
    if (nc === undefined) return;
    if (this.options.connection !== undefined) {
      this.inboxSub?.unsubscribe();
      this.nc = undefined;
      this.update("closed", {}, "closed");
      return;
    }
    try {
      if (!nc.isClosed()) await nc.flush();
    } catch {
      // Closing anyway.
    }
    await nc.close();
    await nc.closed();
  }
}
