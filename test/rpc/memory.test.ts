import { afterEach, describe, expect, it } from "vitest";
import { Cancellation, Code, HeaderKeys, RpcError, createClient } from "meridian-rpc";
import { statusFromHeaders, type IncomingCall } from "meridian-rpc/transport";
import { MemoryClientTransport, MemoryServerTransport } from "meridian-rpc/transports/memory";
import { EchoReply, EchoRequest, EchoService } from "./gen/echo.js";
import { Bed } from "./helpers.js";
import { unaryCall } from "../support/message-calls.js";

const bed = new Bed();
afterEach(() => bed.close());

describe("memory", () => {
  it("memory - requests and replies cross as encoded bytes, headers as copies with their case", async () => {
    let seen: IncomingCall | undefined;
    const transport = new MemoryServerTransport({ name: "raw", network: bed.network });
    await transport.listen(async (call) => {
      seen = call;
      const req = EchoRequest.decode(call.payload);
      return { headers: { "X-Back": "1" }, encode: (w) => EchoReply.encodeTo(EchoReply.create({ text: req.text.toUpperCase() }), w) };
    });
    const client = new MemoryClientTransport({ address: "memory://raw", network: bed.network });
    const headers = { RPC_TRANSIT_Key: "v" };
    const res = await unaryCall(client, {
      service: EchoService.typeName,
      method: EchoService.methods.echo,
      message: EchoRequest.create({ text: "abc" }),
      headers,
      deadline: 123,
      signal: new Cancellation(),
      endpoint: undefined,
    });
    expect(res).toEqual({ message: EchoReply.create({ text: "ABC" }), headers: { "X-Back": "1" } });
    expect(seen?.payload).toEqual(EchoRequest.encode(EchoRequest.create({ text: "abc" })));
    expect(seen).toMatchObject({ service: "rpctest.EchoService", method: "Echo", deadline: 123, headers: { RPC_TRANSIT_Key: "v" } });
    expect(seen?.headers).not.toBe(headers);
    await transport.close(0);
  });

  it("memory - a name is held by one server at a time, and freed by close", async () => {
    const a = new MemoryServerTransport({ name: "taken", network: bed.network });
    const b = new MemoryServerTransport({ name: "taken", network: bed.network });
    const dispatch = async () => ({ headers: {} });
    expect((await a.listen(dispatch)).address).toBe("memory://taken");
    await expect(b.listen(dispatch)).rejects.toMatchObject({ code: Code.ALREADY_EXISTS });
    await a.close(0);
    expect((await b.listen(dispatch)).address).toBe("memory://taken");
    await b.close(0);
  });

  it("memory - closing the client transport fails calls in flight and refuses new ones", async () => {
    const { address } = await bed.echo();
    const transport = new MemoryClientTransport({ address, network: bed.network });
    const client = createClient(EchoService, { transport });
    const pending = client.echo({ delayMs: 5000 });
    await new Promise((r) => setTimeout(r, 5));
    await transport.close();
    await expect(pending).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    await expect(client.echo()).rejects.toMatchObject({ code: Code.UNAVAILABLE, notSent: true });
  });

  it("memory - a server's status headers become the client's RpcError", async () => {
    const { address } = await bed.server({ region: "eu" }, (s) =>
      s.register(EchoService, {
        echo: () => {
          throw new RpcError(Code.FAILED_PRECONDITION, "not yet");
        },
      }),
    );
    const err = (await bed.client(address).echo().catch((e: unknown) => e)) as RpcError;
    expect(err).toMatchObject({ code: Code.FAILED_PRECONDITION, message: "not yet" });
    expect(err.headers[HeaderKeys.servedRegion]).toBe("eu");
    expect(statusFromHeaders(err.headers)?.code).toBe(Code.FAILED_PRECONDITION);
  });
});
