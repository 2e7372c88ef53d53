// The function test/rpc/overload-offload.test.ts runs on worker threads (plain JavaScript, so the
// threads need no TypeScript loader): `text` says what to do.
import { threadId } from "node:worker_threads";

export default function work(req) {
  const [what, arg] = String(req.text).split(":");
  if (what === "spin") {
    const end = performance.now() + Number(arg);
    while (performance.now() < end);
  }
  if (what === "crash") process.exit(3);
  if (what === "refuse") throw Object.assign(new Error("no such feed"), { code: 5 });
  if (what === "bug") throw new TypeError("a bug");
  return { text: `${req.text} on thread ${threadId}` };
}
