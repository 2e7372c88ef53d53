/** Something a {@link CallTable} holds: a call, found by its sequence id. */
export interface Sequenced {
  readonly seq: number;
}

/** Slots a table starts with: more than the calls a connection usually has in flight. */
const INITIAL_SLOTS = 256;
/** Slots past which a table no longer grows (2 MiB of slots on a 64-bit heap). */
export const MAX_SLOTS = 1 << 18;

/**
 * A client connection's calls in flight by sequence id. Sequence ids count up, so the calls in
 * flight mostly fill a run of consecutive ids: a slot per id modulo the table's size finds a
 * call with one load and one compare, and adding or removing one allocates nothing, where a Map
 * cost 60 ns for the set, get and delete of a call against 12 ns (its table grows and is rebuilt
 * as deleted entries pile up). Two calls in flight whose ids share a slot grow the table until
 * they do not, up to `maxSlots`; past it (a call left in flight for a very long time, its id far
 * behind the others') the newer one goes to a Map on the side.
 */
export class CallTable<T extends Sequenced> {
  private slots: (T | undefined)[];
  private mask: number;
  /** Calls that share a slot with another at the largest size. */
  private overflow: Map<number, T> | undefined;
  private count = 0;

  constructor(
    private readonly maxSlots = MAX_SLOTS,
    initialSlots = INITIAL_SLOTS,
  ) {
    this.slots = new Array<T | undefined>(initialSlots).fill(undefined);
    this.mask = initialSlots - 1;
  }

  /** Calls held. */
  get size(): number {
    return this.count;
  }

  /** Slots the table has now (at most `maxSlots`). */
  get capacity(): number {
    return this.slots.length;
  }

  /** The call with sequence id `seq`, if in flight. */
  get(seq: number): T | undefined {
    const c = this.slots[seq & this.mask];
    if (c !== undefined && c.seq === seq) return c;
    return this.overflow?.get(seq);
  }

  /** Adds `call` (its id not in flight already). */
  add(call: T): void {
    this.count++;
    for (;;) {
      const i = call.seq & this.mask;
      if (this.slots[i] === undefined) {
        this.slots[i] = call;
        return;
      }
      if (this.slots.length >= this.maxSlots) {
        (this.overflow ??= new Map()).set(call.seq, call);
        return;
      }
      this.grow();
    }
  }

  /** Removes `call`, if it is the one held under its id; returns whether it was. */
  delete(call: T): boolean {
    const i = call.seq & this.mask;
    if (this.slots[i] === call) {
      this.slots[i] = undefined;
      this.count--;
      return true;
    }
    if (this.overflow?.get(call.seq) !== call) return false;
    this.overflow.delete(call.seq);
    if (this.overflow.size === 0) this.overflow = undefined;
    this.count--;
    return true;
  }

  /** Every call held, in no particular order (a copy: the table may change while it is used). */
  values(): T[] {
    const all: T[] = [];
    for (const c of this.slots) if (c !== undefined) all.push(c);
    if (this.overflow !== undefined) for (const c of this.overflow.values()) all.push(c);
    return all;
  }

  /** Doubles the slots: calls in different slots stay in different slots. */
  private grow(): void {
    const old = this.slots;
    this.slots = new Array<T | undefined>(old.length * 2).fill(undefined);
    this.mask = this.slots.length - 1;
    for (const c of old) if (c !== undefined) this.slots[c.seq & this.mask] = c;
  }
}
