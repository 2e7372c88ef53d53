import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkHistory, formatOperation, type KvInput, type KvOutput, type Operation } from "../../tools/linearizability/index.js";

/** Shorthand for one operation: client, key, input, [call, return], output (undefined: unknown). */
function op(client: number, input: KvInput, call: number, ret: number | undefined, output: KvOutput | undefined, key = "x"): Operation {
  return ret === undefined || output === undefined ? { client, key, input, call } : { client, key, input, call, return: ret, output };
}

describe("linearizability checker", () => {
  it("checker - accepts a sequential history", () => {
    const result = checkHistory([
      op(1, { type: "cas", expected: 0, value: "a" }, 0, 1, { ok: true, revision: 2 }),
      op(1, { type: "get" }, 2, 3, { value: "a", revision: 2 }),
      op(2, { type: "cas", expected: 2, value: "b" }, 4, 5, { ok: true, revision: 3 }),
      op(2, { type: "cas", expected: 2, value: "c" }, 6, 7, { ok: false, current: { value: "b", revision: 3 } }),
      op(1, { type: "delete", expected: 3 }, 8, 9, { ok: true, revision: 4 }),
      op(1, { type: "get" }, 10, 11, { value: null }),
      op(1, { type: "put", value: "d" }, 12, 13, { ok: true, revision: 5 }),
    ]);
    expect(result).toMatchObject({ ok: true, verdict: "linearizable", keys: 1, operations: 7 });
  });

  it("checker - accepts a read concurrent with a write seeing either value", () => {
    const base = [
      op(1, { type: "put", value: "old" }, 0, 1, { ok: true, revision: 2 }),
      op(1, { type: "put", value: "new" }, 2, 10, { ok: true, revision: 3 }),
    ];
    expect(checkHistory([...base, op(2, { type: "get" }, 3, 4, { value: "old" })]).ok).toBe(true);
    expect(checkHistory([...base, op(2, { type: "get" }, 3, 4, { value: "new" })]).ok).toBe(true);
    // But once one reader saw "new", a later read cannot go back to "old".
    const flip = checkHistory([...base, op(2, { type: "get" }, 3, 4, { value: "new" }), op(3, { type: "get" }, 5, 6, { value: "old" })]);
    expect(flip.verdict).toBe("violation");
  });

  it("checker - accepts unknown-outcome writes whether or not they took effect", () => {
    const unknownWrite = op(2, { type: "cas", expected: 2, value: "maybe" }, 2, undefined, undefined);
    const create = op(1, { type: "cas", expected: 0, value: "a" }, 0, 1, { ok: true, revision: 2 });
    // Took effect, long after its call:
    expect(checkHistory([create, unknownWrite, op(1, { type: "get" }, 50, 51, { value: "a" }), op(1, { type: "get" }, 60, 61, { value: "maybe" })]).ok).toBe(true);
    // Never took effect:
    expect(checkHistory([create, unknownWrite, op(1, { type: "get" }, 50, 51, { value: "a", revision: 2 })]).ok).toBe(true);
    // But it cannot take effect before it was called.
    const early = checkHistory([create, op(1, { type: "get" }, 1.5, 1.8, { value: "maybe" }), unknownWrite]);
    expect(early.verdict).toBe("violation");
  });

  it("checker - a timed-out write resolved as applied must be linearized somewhere", () => {
    const history = (resolved: boolean): Operation[] => [
      op(1, { type: "cas", expected: 0, value: "a" }, 0, 1, { ok: true, revision: 2 }),
      resolved
        ? { client: 2, key: "x", input: { type: "cas", expected: 2, value: "b" }, call: 2, output: { ok: true, revision: 3 } }
        : op(2, { type: "cas", expected: 2, value: "b" }, 2, undefined, undefined),
      op(1, { type: "get" }, 5, 6, { value: "a", revision: 2 }),
      op(1, { type: "cas", expected: 2, value: "c" }, 7, 8, { ok: true, revision: 4 }),
      op(1, { type: "get" }, 9, 10, { value: "c", revision: 4 }),
    ];
    expect(checkHistory(history(false)).ok).toBe(true);
    expect(checkHistory(history(true)).verdict).toBe("violation");
  });

  it("checker - rejects a stale read after an acknowledged write, with a minimal witness", () => {
    const history = [
      op(1, { type: "put", value: "1" }, 0, 1, { ok: true, revision: 2 }),
      op(2, { type: "get" }, 0.5, 1.5, { value: "1" }),
      op(1, { type: "put", value: "2" }, 2, 3, { ok: true, revision: 3 }),
      op(3, { type: "get" }, 2.5, 2.8, { value: "1" }),
      op(2, { type: "get" }, 4, 5, { value: "1" }),
      op(1, { type: "put", value: "other" }, 0, 6, { ok: true, revision: 9 }, "y"),
    ];
    const result = checkHistory(history);
    expect(result.ok).toBe(false);
    if (result.verdict !== "violation") throw new Error(`expected a violation, got ${result.verdict}`);
    expect(result.key).toBe("x");
    expect(result.witness.map(formatOperation)).toEqual([
      '1 put(x, "1") -> ok@2 [0.0, 1.0]',
      '1 put(x, "2") -> ok@3 [2.0, 3.0]',
      '2 get(x) -> "1" [4.0, 5.0]',
    ]);
  });

  it("checker - rejects two concurrent compare-and-sets that both succeed from the same revision", () => {
    const result = checkHistory([
      op(1, { type: "cas", expected: 0, value: "a" }, 0, 1, { ok: true, revision: 2 }),
      op(1, { type: "cas", expected: 2, value: "b" }, 2, 5, { ok: true, revision: 3 }),
      op(2, { type: "cas", expected: 2, value: "c" }, 2, 5, { ok: true, revision: 4 }),
    ]);
    expect(result.verdict).toBe("violation");
    // Without revisions in the outputs it is still caught: the second compare cannot hold.
    const blind = checkHistory([
      op(1, { type: "cas", expected: 0, value: "a" }, 0, 1, { ok: true }),
      op(1, { type: "cas", expected: 0, value: "b" }, 2, 5, { ok: true }),
    ]);
    expect(blind.verdict).toBe("violation");
  });

  it("checker - rejects a lost acknowledged write", () => {
    const result = checkHistory([
      op(1, { type: "cas", expected: 0, value: "registered" }, 0, 1, { ok: true, revision: 2 }),
      op(2, { type: "get" }, 3, 4, { value: null }),
    ]);
    expect(result.verdict).toBe("violation");
    // A failed compare that claims the key is absent after it was created is the same lie.
    const failed = checkHistory([
      op(1, { type: "cas", expected: 0, value: "registered" }, 0, 1, { ok: true, revision: 2 }),
      op(2, { type: "cas", expected: 2, value: "next" }, 3, 4, { ok: false, current: null }),
    ]);
    expect(failed.verdict).toBe("violation");
  });

  it("checker - rejects revisions that go backwards in real time across keys", () => {
    const result = checkHistory([
      op(1, { type: "put", value: "a" }, 0, 1, { ok: true, revision: 10 }, "x"),
      op(2, { type: "put", value: "b" }, 2, 3, { ok: true, revision: 7 }, "y"),
    ]);
    expect(result).toMatchObject({ ok: false, verdict: "violation", key: "*" });
  });

  it("checker - answers unknown instead of hanging when the budget runs out", () => {
    // 22 fully concurrent writes and an impossible read: proving the violation means visiting
    // every subset of the writes.
    const history = Array.from({ length: 22 }, (_, i) => op(i, { type: "put", value: `v${i}` }, 0, 100, { ok: true }));
    history.push(op(99, { type: "get" }, 200, 201, { value: "never written" }));
    const started = performance.now();
    const result = checkHistory(history, { timeBudgetMs: 200 });
    expect(result.verdict).toBe("unknown");
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("checker - accepts every history of a sequential store observed through random concurrent windows", () => {
    type Step = { client: number; key: number; kind: "get" | "put" | "cas" | "casStale" | "delete" | "deleteIf"; unknown: "no" | "applied" | "lost"; before: number; after: number };
    const stepArb: fc.Arbitrary<Step> = fc.record({
      client: fc.integer({ min: 0, max: 5 }),
      key: fc.integer({ min: 0, max: 2 }),
      kind: fc.constantFrom("get", "get", "put", "cas", "casStale", "delete", "deleteIf"),
      unknown: fc.constantFrom("no", "no", "no", "no", "no", "no", "applied", "lost"),
      before: fc.integer({ min: 0, max: 40 }),
      after: fc.integer({ min: 0, max: 40 }),
    });
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 60 }), (steps) => {
        // A sequential store with global revisions; operation i takes effect at time 10 * i.
        const store = new Map<string, { value: string; revision: number }>();
        let revision = 1;
        const history: Operation[] = [];
        steps.forEach((s, i) => {
          const key = `k${s.key}`;
          const at = 10 * (i + 1);
          const cur = store.get(key);
          const value = `v${i}`;
          let input: KvInput;
          let output: KvOutput;
          const write = s.kind !== "get";
          const apply = !write || s.unknown !== "lost";
          switch (s.kind) {
            case "get":
              input = { type: "get" };
              output = cur ? { value: cur.value, revision: cur.revision } : { value: null };
              break;
            case "put":
              input = { type: "put", value };
              if (apply) store.set(key, { value, revision: ++revision });
              output = { ok: true, revision };
              break;
            case "cas":
            case "casStale": {
              const expected = s.kind === "cas" ? (cur?.revision ?? 0) : Math.max(1, (cur?.revision ?? 3) - 1);
              input = { type: "cas", expected, value };
              const holds = expected === 0 ? !cur : cur?.revision === expected;
              if (holds && apply) store.set(key, { value, revision: ++revision });
              output = holds ? { ok: true, revision } : { ok: false, current: cur ? { value: cur.value, revision: cur.revision } : null };
              break;
            }
            case "delete":
            case "deleteIf": {
              const expected = s.kind === "deleteIf" ? (cur?.revision ?? 5) : undefined;
              input = expected === undefined ? { type: "delete" } : { type: "delete", expected };
              const holds = expected === undefined || cur?.revision === expected;
              if (holds && cur && apply) {
                store.delete(key);
                ++revision;
              }
              output = holds ? { ok: true } : { ok: false, current: cur ? { value: cur.value, revision: cur.revision } : null };
              break;
            }
          }
          const unknown = write && s.unknown !== "no";
          history.push(
            unknown
              ? { client: s.client, key, input, call: at - s.before / 4 }
              : { client: s.client, key, input, call: at - s.before / 4, return: at + s.after / 4, output },
          );
        });
        const result = checkHistory(history, { timeBudgetMs: 5000 });
        if (!result.ok) throw new Error(`rejected: ${JSON.stringify(result)}`);
        // And the checker is not vacuous: a read of a value nobody wrote is caught.
        const read = history.findIndex((o) => o.input.type === "get" && o.output !== undefined);
        if (read >= 0) {
          const tampered = history.map((o, i) => (i === read ? { ...o, output: { value: "never written" } } : o));
          expect(checkHistory(tampered, { timeBudgetMs: 5000, shrink: false }).verdict).toBe("violation");
        }
      }),
      { numRuns: 300 },
    );
  });
});
