/**
 * The checks the codec benchmark runs once before timing anything: every library round-trips its
 * own representation of every fixture, and the protobuf libraries write the baseline's bytes.
 */
import type { Fixture } from "./data.js";
import { BASELINE, type Subject } from "./peers.js";
import type { Report } from "./report.js";

/** Where `actual` first differs from `expected`, walking the keys of `expected`; undefined if nowhere. */
export function difference(expected: unknown, actual: unknown, path = "message"): string | undefined {
  if (expected instanceof Uint8Array) {
    const same = actual instanceof Uint8Array && Buffer.compare(expected, actual) === 0;
    return same ? undefined : `${path}: bytes differ`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return `${path}: not an array of ${expected.length}`;
    for (let i = 0; i < expected.length; i++) {
      const d = difference(expected[i], actual[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (typeof expected === "object" && expected !== null) {
    if (typeof actual !== "object" || actual === null) return `${path}: not an object`;
    for (const k of Object.keys(expected)) {
      const d = difference((expected as Record<string, unknown>)[k], (actual as Record<string, unknown>)[k], `${path}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  if (Object.is(expected, actual)) return undefined;
  return `${path}: expected ${String(expected)} (${typeof expected}), got ${String(actual)} (${typeof actual})`;
}

/**
 * Checks every subject's round trip (decode of its bytes against its message: a 64-bit field
 * decoded as a Long or a bigint where the message has a number fails it), and the bytes of the
 * libraries in `protobufPeers` against the baseline's. Prints a warning line per failure and
 * never throws: a failing library is still timed, and the warning says its figures are suspect.
 */
export function runChecks(bound: Map<Fixture, Subject[]>, protobufPeers: ReadonlySet<string>): Report["checks"] {
  const checks: Report["checks"] = { roundTrip: {}, sameBytesAsBaseline: {} };
  for (const [fixture, subjects] of bound) {
    const base = subjects.find((s) => s.library === BASELINE);
    for (const s of subjects) {
      const key = `${fixture.size} ${s.library}`;
      let d: string | undefined;
      try {
        d = difference(s.message, s.decode(s.bytes));
      } catch (e) {
        d = `decode threw: ${(e as Error).message}`;
      }
      checks.roundTrip[key] = d ?? "ok";
      if (d) console.log(`warning: ${key} does not round-trip: ${d}`);
      if (base && s !== base && protobufPeers.has(s.library)) {
        const same = Buffer.compare(s.bytes, base.bytes) === 0;
        const what = same ? "identical" : `differs (${s.bytes.length} B vs ${base.bytes.length} B)`;
        checks.sameBytesAsBaseline[key] = what;
        if (!same) console.log(`warning: ${key} encoding ${what} from ${BASELINE}'s`);
      }
    }
  }
  return checks;
}
