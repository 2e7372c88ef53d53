/**
 * The NATS transport through the seam (ClientTransport / ServerTransport) over a real
 * nats-server on 127.0.0.1.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { FeedResponse, Ping } from "../../bench/codec/gen/feed.js";
import { BizError, Code, Cancellation, HeaderKeys } from "meridian-rpc";
import type { IncomingCall } from "meridian-rpc/transport";
import type { NatsStatusEvent } from "meridian-rpc/transports/nats";
import { startNatsCluster, type NatsCluster } from "../support/nats-cluster.js";
import { Feed, echoReply, errorReply, request, until } from "../tcp/helpers.js";
import { describeWithNats, rejection, Tracker } from "./helpers.js";
import { unaryCall } from "../support/message-calls.js";

const MAX_PAYLOAD = 128 * 1024;

describeWithNats("nats transport - calls", () => {
  let cluster: NatsCluster;
  let url: string;
  const t = new Tracker();
  beforeAll(async () => {
    cluster = await startNatsCluster({ maxPayload: MAX_PAYLOAD });
    url = cluster.urls[0]!;
  }, 30_000);
  afterEach(() => t.closeAll());
  afterAll(async () => {
    await t.closeAll();
    await cluster?.stop();
  });

  it("nats - echoes a message with region and consistency headers both ways; the deadline reaches the server", async () => {
    let seen: IncomingCall | undefined;
    await t.server(
      url,
      async (call) => {
        seen = call;
        return echoReply(call);
      },
      { region: "cn-east" },
    );
    const c = t.client(url);
    const res = await unaryCall(c, request({ region: "cn-north", seq: 42n, consistency: "linearizable" }, { timeoutMs: 2000 }));
    expect(res.message).toEqual(Ping.create({ region: "cn-north", seq: 42n, consistency: "linearizable" }));
    expect(res.headers).toEqual({
      [HeaderKeys.servedRegion]: "cn-east",
      "x-echo-x-region-id": "cn-north",
      "x-echo-x-consistency-level": "eventual",
    });
    expect(seen!.service).toBe("bench.Echo");
    expect(seen!.method).toBe("Echo");
    // The protocol's own headers (rpc-timeout) are not among the call's.
    expect(seen!.headers).toEqual({ [HeaderKeys.region]: "cn-north", [HeaderKeys.consistency]: "eventual" });
    expect(seen!.peer).toMatch(/^_INBOX\./);
    expect(seen!.deadline! - Date.now()).toBeGreaterThan(1000);
    expect(seen!.deadline! - Date.now()).toBeLessThanOrEqual(2000);
    expect(c.status().state).toBe("connected");
    expect(c.status().maxPayload).toBe(MAX_PAYLOAD);
  });

  it("nats - headers round trip exactly: metainfo case, UTF-8, CR/LF, surrounding spaces, odd keys, empty values", async () => {
    let seen: IncomingCall | undefined;
    const back = { "x-back": " padded ", RPC_BACKWARD_Trace: "t-1", "区域": "东\r\n部", empty: "" };
    await t.server(url, async (call) => {
      seen = call;
      return { headers: { ...back }, encode: (w) => Ping.encodeTo(Ping.decode(call.payload), w) };
    });
    const headers = {
      "x-region-id": "cn-north",
      RPC_PERSIST_USER: "李明",
      RPC_TRANSIT_Span: "a:b",
      "multi-line": "one\ntwo\r\nthree",
      " spaced key ": "  both ends  ",
      "colon:key": "v",
      "rpc-timeout": "user value, not the protocol's",
      empty: "",
    };
    const res = await unaryCall(t.client(url), request({}, { headers, timeoutMs: 2000 }));
    expect(seen!.headers).toEqual(headers);
    expect(res.headers).toEqual(back);
  });

  it("nats - no deadline sends the transport's default budget", async () => {
    let deadline: number | undefined;
    await t.server(url, async (call) => {
      deadline = call.deadline;
      return echoReply(call);
    });
    await unaryCall(t.client(url, { defaultTimeoutMs: 7000 }), request({}));
    expect(deadline! - Date.now()).toBeGreaterThan(6000);
    expect(deadline! - Date.now()).toBeLessThanOrEqual(7000);
  });

  it("nats - an error reply rejects with its code, message and headers; a business error as BizError", async () => {
    let n = 0;
    await t.server(url, async () => {
      if (n++ === 0) return errorReply(Code.NOT_FOUND, "no such feed");
      return { headers: { [HeaderKeys.status]: "2", [HeaderKeys.message]: "biz error 40001: quota", "biz-status": "40001", "biz-message": "quota", "biz-extra": '{"limit":"10"}' } };
    });
    const c = t.client(url);
    const e = await rejection(unaryCall(c, request({})));
    expect(e.code).toBe(Code.NOT_FOUND);
    expect(e.message).toBe("no such feed");
    expect(e.notSent).toBe(false);
    const biz = await rejection(unaryCall(c, request({})));
    expect(biz).toBeInstanceOf(BizError);
    expect((biz as BizError).bizCode).toBe(40001);
    expect((biz as BizError).extra).toEqual({ limit: "10" });
  });

  it("nats - a dispatcher that throws gives INTERNAL without details; a reply that fails to encode too", async () => {
    let n = 0;
    await t.server(url, async (call) => {
      if (n++ === 0) throw new Error("secret stack");
      if (n === 2) return { headers: {}, encode: () => { throw new Error("boom"); } };
      return echoReply(call);
    });
    const c = t.client(url);
    const e = await rejection(unaryCall(c, request({})));
    expect(e.code).toBe(Code.INTERNAL);
    expect(e.message).not.toContain("secret");
    expect((await rejection(unaryCall(c, request({})))).code).toBe(Code.INTERNAL);
    expect((await unaryCall(c, request({ region: "ok" }))).message).toMatchObject({ region: "ok" });
  });

  it("nats - no responders is UNAVAILABLE and notSent, at once", async () => {
    const c = t.client(url);
    const t0 = Date.now();
    const e = await rejection(unaryCall(c, request({}, { timeoutMs: 5000 })));
    expect(e.code).toBe(Code.UNAVAILABLE);
    expect(e.notSent).toBe(true);
    expect(e.message).toMatch(/no responders on meridian\.bench\.Echo\.Echo/);
    expect(Date.now() - t0).toBeLessThan(2000);
    // Another prefix is another set of subjects: nobody there either.
    await t.server(url, async (call) => echoReply(call));
    const other = await rejection(unaryCall(c, { ...request({}), endpoint: { address: "elsewhere" } }));
    expect(other.code).toBe(Code.UNAVAILABLE);
    expect(other.message).toMatch(/elsewhere\.bench\.Echo\.Echo/);
    expect((await unaryCall(c, request({}))).message).toBeDefined();
  });

  it("nats - a slow server gives DEADLINE_EXCEEDED at the deadline; its late reply is dropped", async () => {
    let answered = 0;
    await t.server(url, async (call) => {
      const msg = Ping.decode(call.payload);
      await sleep(Number(msg.seq));
      answered++;
      return echoReply(call);
    });
    const c = t.client(url);
    const t0 = Date.now();
    const e = await rejection(unaryCall(c, request({ seq: 400n }, { timeoutMs: 100 })));
    expect(e.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(e.notSent).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    expect(Date.now() - t0).toBeLessThan(400);
    await until(() => answered === 1, 2000, "the late answer");
    // The late reply arrived and was dropped; the next call gets its own answer.
    expect((await unaryCall(c, request({ region: "next" }, { timeoutMs: 2000 }))).message).toMatchObject({ region: "next" });
    expect((await rejection(unaryCall(c, request({}, { timeoutMs: -5 })))).notSent).toBe(true);
  });

  it("nats - cancelling a call gives CANCELLED at once; the late reply is dropped", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    await t.server(url, async (call) => {
      if (calls++ === 0) await gate;
      return echoReply(call);
    });
    const c = t.client(url);
    const signal = new Cancellation();
    const p = unaryCall(c, request({ region: "first" }, { signal, timeoutMs: 5000 }));
    await until(() => calls === 1, 2000, "the call to arrive");
    signal.abort(new Error("user gave up"));
    const e = await rejection(p);
    expect(e.code).toBe(Code.CANCELLED);
    release();
    expect((await unaryCall(c, request({ region: "second" }, { timeoutMs: 2000 }))).message).toMatchObject({ region: "second" });
    // Aborted before sending: notSent.
    const pre = new Cancellation();
    pre.abort(new Error("early"));
    const e2 = await rejection(unaryCall(c, request({}, { signal: pre })));
    expect(e2.code).toBe(Code.CANCELLED);
    expect(e2.notSent).toBe(true);
  });

  it("nats - a request over the server's max_payload is INVALID_ARGUMENT before sending; a reply over it RESOURCE_EXHAUSTED", async () => {
    let calls = 0;
    await t.server(url, async (call) => {
      calls++;
      const msg = Ping.decode(call.payload);
      if (msg.region === "big reply") return { headers: {}, encode: (w) => Ping.encodeTo(Ping.create({ region: "x".repeat(MAX_PAYLOAD) }), w) };
      return echoReply(call);
    });
    const c = t.client(url);
    await c.warmUp();
    const e = await rejection(unaryCall(c, request({ region: "y".repeat(MAX_PAYLOAD) })));
    expect(e.code).toBe(Code.INVALID_ARGUMENT);
    expect(e.notSent).toBe(true);
    expect(e.message).toMatch(/max_payload of 131072 bytes/);
    expect(calls).toBe(0);
    const r = await rejection(unaryCall(c, request({ region: "big reply" })));
    expect(r.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(calls).toBe(1);
    // Just under the limit goes through.
    const fits = "z".repeat(MAX_PAYLOAD - 1024);
    expect(((await unaryCall(c, request({ region: fits }))).message as Ping).region).toBe(fits);
  });

  it("nats - returns the 20-item feed", async () => {
    const { Video, User } = await import("../../bench/codec/gen/feed.js");
    const items = Array.from({ length: 20 }, (_, i) => Video.create({ id: BigInt(i), title: "标题", author: User.create({ name: "李明" }) }));
    const feed = FeedResponse.create({ cursor: "c", serverTime: 5n, items });
    await t.server(url, async () => ({ headers: {}, encode: (w) => FeedResponse.encodeTo(feed, w) }));
    const res = await unaryCall(t.client(url), request({}, { method: Feed }));
    expect(res.message).toEqual(feed);
  });

  it("nats - two instances in one queue group share the load, each request served once", async () => {
    const served = [0, 0];
    await t.server(url, async (call) => (served[0]++, echoReply(call)));
    await t.server(url, async (call) => (served[1]++, echoReply(call)));
    const c = t.client(url);
    const res = await Promise.all(Array.from({ length: 200 }, (_, i) => unaryCall(c, request({ seq: BigInt(-i) }, { timeoutMs: 5000 }))));
    res.forEach((r, i) => expect((r.message as Ping).seq).toBe(BigInt(-i)));
    expect(served[0]! + served[1]!).toBe(200);
    expect(served[0]).toBeGreaterThan(20);
    expect(served[1]).toBeGreaterThan(20);
  });

  it("nats - graceful close: calls in flight finish; the queue group's other instance takes new calls", async () => {
    const first = await t.server(url, async (call) => {
      await sleep(150);
      return echoReply(call, { by: "first" });
    });
    const c = t.client(url);
    const inflight = unaryCall(c, request({}, { timeoutMs: 3000 }));
    await until(() => first.inflight === 1, 2000, "the call to arrive");
    await t.server(url, async (call) => echoReply(call, { by: "second" }));
    const closing = first.close(2000);
    expect((await inflight).headers.by).toBe("first");
    await closing;
    for (let i = 0; i < 5; i++) expect((await unaryCall(c, request({}, { timeoutMs: 2000 }))).headers.by).toBe("second");
  });

  it("nats - a thousand concurrent calls", async () => {
    await t.server(url, async (call) => echoReply(call));
    const c = t.client(url);
    const res = await Promise.all(Array.from({ length: 1000 }, (_, i) => unaryCall(c, request({ seq: BigInt(i) }, { timeoutMs: 10_000 }))));
    res.forEach((r, i) => expect((r.message as Ping).seq).toBe(BigInt(i)));
  });
});

describeWithNats("nats transport - connection", () => {
  const t = new Tracker();
  afterEach(() => t.closeAll());

  it("nats - no server to connect to: UNAVAILABLE, notSent; status says so", async () => {
    const c = t.client("nats://127.0.0.1:1");
    const e = await rejection(unaryCall(c, request({})));
    expect(e.code).toBe(Code.UNAVAILABLE);
    expect(e.notSent).toBe(true);
    expect(e.message).toMatch(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
    expect(c.status().state).toBe("disconnected");
    expect(c.status().lastError).toMatch(/cannot connect/);
  });

  it("nats - a restarted server: the status shows the loss and the reconnect, calls fail fast while down and recover", async () => {
    const cluster = await startNatsCluster();
    t.add(() => cluster.stop());
    const url = cluster.urls[0]!;
    const server = await t.server(url, async (call) => {
      if (Ping.decode(call.payload).region === "slow") await sleep(10_000);
      return echoReply(call);
    });
    const events: NatsStatusEvent["type"][] = [];
    // Server errors and lame-duck notices may come too; the test follows the connection's states.
    const c = t.client(url, { onStatus: (e) => e.type !== "error" && e.type !== "ldm" && events.push(e.type) });
    await unaryCall(c, request({}, { timeoutMs: 2000 }));
    expect(events).toEqual(["connecting", "connected"]);
    // Handle the rejection from the start: it may come while kill() is still waiting.
    const slow = rejection(unaryCall(c, request({ region: "slow" }, { timeoutMs: 20_000 })));
    await until(() => server.inflight === 1, 2000, "the slow call to arrive");

    await cluster.kill(0);
    // The call in flight cannot get its answer any more: it fails at once, not at its deadline.
    const lost = await slow;
    expect(lost.code).toBe(Code.UNAVAILABLE);
    expect(lost.notSent).toBe(false);
    await until(() => c.status().state !== "connected", 3000, "the client to notice");
    const down = await rejection(unaryCall(c, request({}, { timeoutMs: 2000 })));
    expect(down.code).toBe(Code.UNAVAILABLE);
    expect(down.notSent).toBe(true);
    expect(down.message).toMatch(/the NATS connection is (disconnected|reconnecting)/);

    await cluster.restart(0);
    await until(() => c.status().state === "connected" && server.status().state === "connected", 10_000, "both to reconnect");
    expect(c.status().reconnects).toBe(1);
    expect(c.status().disconnects).toBe(1);
    expect(events).toEqual(["connecting", "connected", "disconnected", "reconnecting", "reconnected"]);
    // The server's subscriptions were renewed on the new connection: calls work again.
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = await unaryCall(c, request({}, { timeoutMs: 1000 })).then(
        () => true,
        () => false,
      );
      if (!ok) await sleep(50);
    }
    expect(ok).toBe(true);
  }, 30_000);
});
