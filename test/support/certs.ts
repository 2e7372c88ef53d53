/**
 * Test certificates (tools/certs) and the gate of suites that need openssl to make them.
 */
import { findOpenssl } from "../../tools/certs/index.js";
import { describeWithBinary } from "./gate.js";

export { findOpenssl, makeCerts, type TestCerts } from "../../tools/certs/index.js";

/**
 * `describe` for suites that need openssl to make their certificates: skipped with a message
 * locally when it is missing, failing under CI=true (scripts/setup.sh installs it).
 */
export function describeWithOpenssl(name: string, fn: () => void): void {
  describeWithBinary("openssl", findOpenssl(), "openssl is not installed: run scripts/setup.sh (Debian's openssl package)", name, fn);
}
