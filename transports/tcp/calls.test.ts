import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CallTable } from "./calls.js";

class Call {
  constructor(readonly seq: number) {}
}

/** Adds a call `gap` ids after the last one, removes the `i`-th call in flight (modulo), or looks up an id. */
type Op = { add: number } | { remove: number } | { removeStale: number } | { lookup: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  // Mostly consecutive ids, sometimes a jump: ids far apart share slots until the table grows.
  { weight: 6, arbitrary: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 4 }), fc.constantFrom(16, 64, 1024, 1 << 20)).map((add) => ({ add })) },
  { weight: 4, arbitrary: fc.nat().map((remove) => ({ remove })) },
  { weight: 1, arbitrary: fc.nat().map((removeStale) => ({ removeStale })) },
  { weight: 2, arbitrary: fc.nat().map((lookup) => ({ lookup })) },
);

describe("tcp call table", () => {
  it("tcp call table - any sequence of adds and removes keeps what a Map keyed by id keeps, growing and overflowing past its largest size", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        // Tiny sizes, so that growth and the overflow both happen.
        const table = new CallTable<Call>(16, 4);
        const model = new Map<number, Call>();
        let last = 0;
        for (const o of ops) {
          if ("add" in o) {
            last += o.add;
            const c = new Call(last);
            table.add(c);
            model.set(c.seq, c);
          } else if ("remove" in o) {
            const live = [...model.values()];
            if (live.length === 0) continue;
            const c = live[o.remove % live.length]!;
            expect(table.delete(c)).toBe(true);
            model.delete(c.seq);
            expect(table.delete(c)).toBe(false);
          } else if ("removeStale" in o) {
            // Another object under an id in flight, or under one never used: not removed.
            const seq = model.size > 0 ? [...model.keys()][o.removeStale % model.size]! : o.removeStale + last + 1;
            expect(table.delete(new Call(seq))).toBe(false);
          } else {
            const seq = o.lookup % (last + 2);
            expect(table.get(seq)).toBe(model.get(seq));
          }
          expect(table.size).toBe(model.size);
          expect(table.capacity).toBeLessThanOrEqual(16);
        }
        for (const [seq, c] of model) expect(table.get(seq)).toBe(c);
        expect(new Set(table.values())).toEqual(new Set(model.values()));
      }),
      { numRuns: 300 },
    );
  });

  it("tcp call table - calls whose ids share every slot up to the largest size go to the side; removing them empties it", () => {
    const table = new CallTable<Call>(8, 4);
    // Ids 8 apart share a slot at every size up to 8 slots.
    const calls = [1, 9, 17, 25].map((s) => new Call(s));
    for (const c of calls) table.add(c);
    for (const c of calls) expect(table.get(c.seq)).toBe(c);
    expect(table.size).toBe(4);
    expect(table.capacity).toBe(8);
    for (const c of calls) expect(table.delete(c)).toBe(true);
    expect(table.size).toBe(0);
    expect(table.values()).toEqual([]);
    for (const c of calls) expect(table.get(c.seq)).toBeUndefined();
  });
});
