/**
 * A peer that floods a server, in its own process: `admission-flood.ts <address> <timeoutMs>
 * <callsPerSecond> <durationMs>` sends Echo calls of that timeout at that rate (open loop, a batch
 * every 5 ms) on one connection for that long, then waits for every answer (at most 5 s) and
 * prints what came back as one JSON line: { sent, ok, refused, other }.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Code, createClient, RpcError } from "meridian-rpc";
import { TcpClientTransport } from "meridian-rpc/transports/tcp";
import { EchoService } from "../rpc/gen/echo.js";

const [address, timeoutMs, rate, durationMs] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const transport = new TcpClientTransport();
const client = createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs, requeue: false });
const counts = { sent: 0, ok: 0, refused: 0, other: 0 };
const answers: Promise<unknown>[] = [];
const t0 = performance.now();
while (performance.now() - t0 < durationMs) {
  const due = Math.floor(((performance.now() - t0) / 1000) * rate);
  for (; counts.sent < due; counts.sent++) {
    answers.push(
      client.echo({ text: "flood" }).then(
        () => counts.ok++,
        (e: unknown) => (e instanceof RpcError && e.code === Code.RESOURCE_EXHAUSTED ? counts.refused++ : counts.other++),
      ),
    );
  }
  await sleep(5);
}
await Promise.race([Promise.all(answers), sleep(5000)]);
process.stdout.write(`${JSON.stringify(counts)}\n`);
await transport.close();
process.exit(0);
