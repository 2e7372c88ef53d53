/**
 * The server process of the streaming cases (grpc-stream.ts, tcp-stream.ts): the calling process
 * forks the case's file with a command-line argument, the child starts its servers and reports
 * their addresses, and closes them and exits when told to.
 */
import { fork } from "node:child_process";
import { stop } from "./children.js";

/** A server started in the child: its address and how to close it. */
export interface StreamServer {
  readonly address: string;
  close(): Promise<void>;
}

/** In the forked child: reports the servers' addresses, then closes them and exits on "close". */
export function serveStreamServers(servers: readonly StreamServer[]): void {
  process.on("message", (m: { type: string }) => {
    if (m.type === "close") void Promise.all(servers.map((s) => s.close())).finally(() => process.exit(0));
  });
  process.send!({ type: "ready", addresses: servers.map((s) => s.address) });
}

/** The forked server process, as the calling process sees it. */
export interface StreamServerProcess {
  /** The servers' addresses, in the order the child started them; rejects after 20 s or when the child exits first. */
  readonly addresses: Promise<string[]>;
  /** Tells the child to close its servers and waits for it to exit (SIGKILL after 3 s). */
  stop(): Promise<void>;
}

/** Forks `file` with `args` as the server process; `what` names it in errors ("the TCP stream server"). */
export function forkStreamServers(file: string, args: readonly string[], execArgv: string[], what: string): StreamServerProcess {
  const child = fork(file, args, { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const addresses = new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}s did not start within 20 s`)), 20_000);
    child.once("message", (m: { addresses: string[] }) => {
      clearTimeout(timer);
      resolve(m.addresses);
    });
    child.once("exit", (code) => reject(new Error(`${what} process exited (${code})`)));
  });
  return {
    addresses,
    stop: () => stop(child),
  };
}
