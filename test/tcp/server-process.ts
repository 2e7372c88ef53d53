/**
 * A TCP echo server in its own process, for tests that kill the server mid-call. Prints its
 * address as one JSON line; a Ping whose `seq` is > 0 is answered after that many ms; a stream
 * gets a Ping every 10 ms until cancelled.
 */
import { delayedEcho, endlessTicks, startServer } from "./helpers.js";

const { address } = await startServer(delayedEcho, {}, endlessTicks);
process.stdout.write(`${JSON.stringify({ address })}\n`);
