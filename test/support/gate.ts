import { describe, it } from "vitest";

/**
 * `describe` for suites that need an installed binary (`bin`, undefined when missing): run when it
 * is there; without it, skipped with `missing` as the message locally, and failing under CI=true
 * (a CI machine without the binary is a broken set-up, not a reason to pass).
 */
export function describeWithBinary(what: string, bin: string | undefined, missing: string, name: string, fn: () => void): void {
  if (bin) {
    describe(name, fn);
  } else if (process.env.CI === "true") {
    describe(name, () => {
      it(`${what} is installed`, () => {
        throw new Error(missing);
      });
    });
  } else {
    console.warn(`skipping "${name}": ${missing}`);
    describe.skip(name, fn);
  }
}
