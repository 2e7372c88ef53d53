/**
 * The NATS server transport against peers that do not play by the protocol: a raw NATS client
 * (no Meridian) sends unreadable headers, payloads that do not decode, far deadlines and floods
 * past the server's limit of calls in flight, over a real nats-server on 127.0.0.1. The server
 * answers each with a clear status and serves the next call.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { connect, createInbox, headers as natsHeaders, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { expect, it } from "vitest";
import { Ping } from "../../bench/codec/gen/feed.js";
import { Code, createServer, HeaderKeys } from "meridian-rpc";
import type { CallDispatcher } from "meridian-rpc/transport";
import { NatsServerTransport } from "meridian-rpc/transports/nats";
import { echoReply, request } from "../tcp/helpers.js";
import { BenchEcho, describeWithNats, Tracker, useNatsServer } from "./helpers.js";
import { unaryCall } from "../support/message-calls.js";

const SUBJECT = "meridian.bench.Echo.Echo";

/** A raw NATS connection, closed after the test. */
async function raw(t: Tracker, url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url });
  t.add(() => nc.close());
  return nc;
}

/** Sends one raw request and returns the reply's status header (`rpc-status`) and message. */
async function rawRequest(nc: NatsConnection, data: Uint8Array, h: Record<string, string> = {}): Promise<{ status: string | undefined; message: string | undefined }> {
  const hdrs = natsHeaders();
  for (const [k, v] of Object.entries(h)) hdrs.set(k, v);
  const reply: Msg = await nc.request(SUBJECT, data, { timeout: 5000, headers: hdrs });
  return { status: reply.headers?.get(HeaderKeys.status) || undefined, message: reply.headers?.get(HeaderKeys.message) || undefined };
}

describeWithNats("nats hostile - a raw peer", () => {
  const t = new Tracker();
  const nats = useNatsServer(t);

  it("nats hostile - escapes that do not decode and payloads that do not decode each get an answer, and the next call is served", async () => {
    const server = createServer({ transport: new NatsServerTransport({ servers: nats.url, services: [BenchEcho] }), metrics: false, logger: { error: () => {} } });
    server.register(BenchEcho, { echo: (req: Ping) => req, feed: () => ({}) });
    await server.listen();
    t.add(() => server.close({ graceMs: 0 }));
    const nc = await raw(t, nats.url);

    // An escape that does not decode is kept as it came: the call is served.
    const badEscape = await rawRequest(nc, Ping.encode(Ping.create({ seq: 1n })), { "rpc-escaped": "%ZZ", "%ZZ": "%ZZ" });
    expect(badEscape.status).toBeUndefined();

    const garbage = await rawRequest(nc, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(garbage.status).toBe(String(Code.INVALID_ARGUMENT));
    expect(garbage.message).toMatch(/cannot decode the request/);

    const c = t.client(nats.url);
    const res = await unaryCall(c, request({ seq: 7n }, { timeoutMs: 5000 }));
    expect((res.message as Ping).seq).toBe(7n);
  });

  it("nats hostile - a dispatcher that throws is answered INTERNAL", async () => {
    const throwing: CallDispatcher = () => {
      throw new Error("a bug");
    };
    await t.server(nats.url, throwing);
    const nc = await raw(t, nats.url);
    const r = await rawRequest(nc, Ping.encode(Ping.create({})));
    expect(r.status).toBe(String(Code.INTERNAL));
  });

  it("nats hostile - a flood past maxConcurrentCalls is refused at once with RESOURCE_EXHAUSTED; no more than the limit run; every request is answered", async () => {
    const limit = 50;
    const load = { now: 0, peak: 0 };
    const slow: CallDispatcher = async (call) => {
      load.now++;
      load.peak = Math.max(load.peak, load.now);
      await sleep(300);
      load.now--;
      return echoReply(call);
    };
    await t.server(nats.url, slow, { maxConcurrentCalls: limit });
    const nc = await raw(t, nats.url);
    const inbox = createInbox();
    const statuses: string[] = [];
    const refusedMarks: string[] = [];
    const all = 1000;
    const done = new Promise<void>((resolve) => {
      nc.subscribe(inbox, {
        callback: (_err, msg) => {
          statuses.push(msg.headers?.get(HeaderKeys.status) || "0");
          if (msg.headers?.get(HeaderKeys.status) === String(Code.RESOURCE_EXHAUSTED)) refusedMarks.push(msg.headers.get(HeaderKeys.refused));
          if (statuses.length === all) resolve();
        },
      });
    });
    const payload = Ping.encode(Ping.create({}));
    for (let i = 0; i < all; i++) nc.publish(SUBJECT, payload, { reply: inbox });
    await Promise.race([done, sleep(15_000)]);
    expect(statuses).toHaveLength(all);
    expect(load.peak).toBeLessThanOrEqual(limit);
    const ok = statuses.filter((s) => s === "0").length;
    const refused = statuses.filter((s) => s === String(Code.RESOURCE_EXHAUSTED)).length;
    expect(ok).toBeGreaterThanOrEqual(limit);
    expect(ok + refused).toBe(all);
    // Refused before any handler ran: a client may send them elsewhere, even if not idempotent.
    expect(refusedMarks).toEqual(Array(refused).fill("1"));

    const c = t.client(nats.url);
    const res = await unaryCall(c, request({ seq: 3n }, { timeoutMs: 5000 }));
    expect((res.message as Ping).seq).toBe(3n);
  });

  it("nats hostile - a timeout header of any size is served, without a timer warning", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    t.add(async () => void process.off("warning", onWarning));
    const seen: (number | undefined)[] = [];
    await t.server(nats.url, async (call) => {
      const signal = call.signal; // arms the server-side deadline timer
      await sleep(20);
      seen.push(call.deadline);
      return signal.aborted ? { headers: { [HeaderKeys.status]: String(Code.DEADLINE_EXCEEDED) } } : echoReply(call);
    });
    const nc = await raw(t, nats.url);
    for (const timeout of [String(2 ** 31), String(2 ** 32 + 5), "99999999999999999", "1e400", "-5", "abc"]) {
      const r = await rawRequest(nc, Ping.encode(Ping.create({})), { "rpc-timeout": timeout });
      expect(r.status, `rpc-timeout ${timeout}`).toBeUndefined();
    }
    await sleep(20);
    expect(warnings).not.toContain("TimeoutOverflowWarning");
  });
});
