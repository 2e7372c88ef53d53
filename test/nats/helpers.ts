/**
 * Shared set-up of the NATS transport tests: the gate on nats-server, service descriptors, and
 * transports that are closed after each test.
 */
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { RpcError, type ServiceDescriptor } from "meridian-rpc";
import type { CallDispatcher, StreamDispatcher } from "meridian-rpc/transport";
import { NatsClientTransport, NatsServerTransport, type NatsClientOptions, type NatsServerOptions } from "meridian-rpc/transports/nats";
import { EchoReply, EchoRequest } from "../rpc/gen/echo.js";
import { describeWithBinary } from "../support/gate.js";
import { findNatsServer, NATS_MISSING, startNatsCluster, type NatsCluster } from "../support/nats-cluster.js";
import { Echo, Feed, SERVICE } from "../tcp/helpers.js";

/** The nats-server binary, or undefined when it is not installed. */
export const natsBin = findNatsServer();

/**
 * `describe` for suites that need a real nats-server: run when it is installed; without it,
 * skipped with a message locally, and failing under CI=true (a CI machine without nats-server is
 * a broken set-up, not a reason to pass).
 */
export function describeWithNats(name: string, fn: () => void): void {
  describeWithBinary("nats-server", natsBin, NATS_MISSING, name, fn);
}

/** bench.Echo with Echo(Ping) and Feed(Ping), the methods of the seam helpers in test/tcp/helpers.ts. */
export const BenchEcho = { typeName: SERVICE, methods: { echo: Echo, feed: Feed } } satisfies ServiceDescriptor;

/** One method of each streaming kind, on the EchoRequest / EchoReply messages of the runtime tests. */
export const StreamService = {
  typeName: "rpctest.Streams",
  methods: {
    /** One request, a reply per tick. */
    ticks: { name: "Ticks", kind: "server_streaming", input: EchoRequest, output: EchoReply, idempotency: "NO_SIDE_EFFECTS" },
    /** Many requests, one reply with their texts joined. */
    collect: { name: "Collect", kind: "client_streaming", input: EchoRequest, output: EchoReply, idempotency: "IDEMPOTENCY_UNKNOWN" },
    /** A reply per request. */
    chat: { name: "Chat", kind: "bidi_streaming", input: EchoRequest, output: EchoReply, idempotency: "IDEMPOTENCY_UNKNOWN" },
  },
} as const satisfies ServiceDescriptor;

/** Everything a test opened, closed after it (register with `track`, close with `closeAll`). */
export class Tracker {
  private readonly closers: (() => Promise<unknown>)[] = [];

  add(close: () => Promise<unknown>): void {
    this.closers.push(close);
  }

  async closeAll(): Promise<void> {
    while (this.closers.length > 0) await this.closers.pop()!().catch(() => undefined);
  }

  /** A client transport on `url` with test-friendly reconnect timing. */
  client(url: string, options: NatsClientOptions = {}): NatsClientTransport {
    const c = new NatsClientTransport({
      servers: url,
      connectOptions: { reconnectTimeWait: 50, reconnectJitter: 10, ...options.connectOptions },
      ...options,
    });
    this.add(() => c.close());
    return c;
  }

  /** A server transport on `url` serving `services` with the dispatcher(s), listening. */
  async server(
    url: string,
    dispatch: CallDispatcher,
    options: Partial<NatsServerOptions> & { streams?: StreamDispatcher } = {},
  ): Promise<NatsServerTransport> {
    const s = new NatsServerTransport({
      servers: url,
      services: [BenchEcho],
      connectOptions: { reconnectTimeWait: 50, reconnectJitter: 10, ...options.connectOptions },
      ...options,
    });
    this.add(() => s.close(0));
    await s.listen(dispatch, options.streams);
    return s;
  }
}

/**
 * One nats-server for the enclosing describe: started before its tests, stopped after them, with
 * what `t` tracked closed after each test. `url` is the server's client URL once it started.
 */
export function useNatsServer(t: Tracker): { readonly url: string } {
  let cluster: NatsCluster | undefined;
  beforeAll(async () => {
    cluster = await startNatsCluster();
  }, 30_000);
  afterEach(() => t.closeAll());
  afterAll(async () => {
    await t.closeAll();
    await cluster?.stop();
  });
  return {
    get url() {
      if (cluster === undefined) throw new Error("useNatsServer: the server is not started yet (use url inside a test)");
      return cluster.urls[0]!;
    },
  };
}

/** The RpcError `p` rejects with; fails the test when it resolves or rejects with something else. */
export async function rejection(p: Promise<unknown>): Promise<RpcError> {
  const outcome = await p.then(
    (value: unknown) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!("error" in outcome)) throw new Error("expected the call to fail");
  expect(outcome.error).toBeInstanceOf(RpcError);
  return outcome.error as RpcError;
}
