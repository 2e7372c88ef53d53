/** `meridian registry status`: a Meridian registry server's health. */
import { AUTHORIZATION_HEADER, RegistryService as Registry } from "../runtime/registry/index.js";
import { describeStatus } from "../runtime/registry/embedded/status.js";
import { createClient } from "../runtime/api.js";
import { parseArgs, UsageError } from "./args.js";
import { REGISTRY_STATUS } from "./commands.js";
import type { CliIo } from "./io.js";
import { clientTransportOf, credentialsOf, registryUrlOf, timeoutOf, type RegistryCommandDeps } from "./registry-options.js";

/**
 * Runs `meridian registry status <args>`: 0 when the server answers "ok", 1 when it cannot be
 * reached or reports a failure. Throws UsageError for bad usage.
 */
export async function statusCommand(argv: readonly string[], io: CliIo, deps: RegistryCommandDeps): Promise<number> {
  const parsed = parseArgs(argv, REGISTRY_STATUS.options);
  if (parsed.positional.length > 0) throw new UsageError(`unexpected argument "${parsed.positional[0]}"`);
  const timeoutMs = timeoutOf(parsed);
  const { url } = registryUrlOf(parsed, io.env, "--registry <url> is required (or set MERIDIAN_REGISTRY)");
  if (url.kind !== "embedded") throw new UsageError("status asks a Meridian registry server (embedded://host:port); for etcd use etcdctl endpoint status");
  const { tls, token } = credentialsOf(parsed, io.env);
  const transport = (await clientTransportOf(deps))(tls === undefined ? {} : { tls });
  try {
    const headers = token === undefined ? {} : { headers: { [AUTHORIZATION_HEADER]: `Bearer ${token}` } };
    const client = createClient(Registry, { transport, endpoints: [{ address: url.address }], ...headers });
    let status;
    try {
      status = await client.status({}, { timeoutMs });
    } catch (e) {
      io.stderr(`meridian registry status: the registry at ${url.address} did not answer: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
    io.stdout(parsed.flag("--json") ? `${JSON.stringify({ address: url.address, ...status, $unknown: undefined })}\n` : describeStatus(url.address, status));
    return status.health === "ok" ? 0 : 1;
  } finally {
    await transport.close();
  }
}
