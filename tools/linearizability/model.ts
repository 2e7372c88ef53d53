/**
 * The key/value model the checker tests histories against: one register per key holding a value
 * (or nothing) and the mod revision of the write that put it there, with get, put, compare-and-set
 * on revision and delete, as the registry's Store offers them.
 */

/** What a client asked for, on one key. `expected` 0 means "the key must not exist". */
export type KvInput =
  | { readonly type: "get" }
  | { readonly type: "put"; readonly value: string }
  | { readonly type: "cas"; readonly expected: number; readonly value: string }
  | { readonly type: "delete"; readonly expected?: number };

/** A key as a failed write reports it: null when absent; `revision` optional (not checked). */
export type KvCurrent = { readonly value: string; readonly revision?: number } | null;

/**
 * What the store answered. For get: the value (null when absent) and, optionally, its mod
 * revision. For writes: applied (`ok: true`, optionally with the revision it got) or not
 * (`ok: false`, optionally with the key as it was; omit `current` when not known).
 */
export type KvOutput =
  | { readonly value: string | null; readonly revision?: number }
  | { readonly ok: true; readonly revision?: number }
  | { readonly ok: false; readonly current?: KvCurrent };

/** The register's state: value (null when absent) and mod revision (undefined: not known yet). */
export interface KvState {
  readonly value: string | null;
  readonly revision: number | undefined;
}

/** The state of every key before the history starts: absent, at revision 0. */
export const initialState: KvState = { value: null, revision: 0 };

/** A state as a string, for the memo of visited (linearized set, state) pairs. */
export function stateKey(state: KvState): string {
  return `${state.value === null ? "\u0000" : `=${state.value}`}|${state.revision ?? "?"}`;
}

/** Revisions agree unless both are known and differ. */
function sameRevision(a: number | undefined, b: number | undefined): boolean {
  return a === undefined || b === undefined || a === b;
}

/** A new write's revision must be above the state's (when both are known). */
function after(next: number | undefined, state: KvState): boolean {
  return next === undefined || state.revision === undefined || next > state.revision;
}

/** The state with a revision learned from an observation, when it was unknown. */
function learn(state: KvState, revision: number | undefined): KvState {
  return state.revision === undefined && revision !== undefined ? { value: state.value, revision } : state;
}

function holds(state: KvState, input: KvInput): boolean {
  switch (input.type) {
    case "cas":
      return input.expected === 0 ? state.value === null : state.value !== null && sameRevision(state.revision, input.expected);
    case "delete":
      return input.expected === undefined || (state.value !== null && sameRevision(state.revision, input.expected));
    default:
      return true;
  }
}

/**
 * Applies one operation to a state. Returns the next state, or undefined when the output is
 * impossible in this state. `output` undefined means the outcome is unknown: the operation is
 * taken as applied (an unknown operation that did not apply is linearized last, as a no-op,
 * which the checker does by leaving it out).
 */
export function step(state: KvState, input: KvInput, output: KvOutput | undefined): KvState | undefined {
  if (input.type === "get") {
    if (!output || !("value" in output)) return undefined;
    if (output.value !== state.value) return undefined;
    if (state.value === null) return state;
    return sameRevision(state.revision, output.revision) ? learn(state, output.revision) : undefined;
  }
  if (output !== undefined && !("ok" in output)) return undefined;
  if (output === undefined || output.ok) {
    // Applied (known or assumed).
    if (!holds(state, input)) return undefined;
    const revision = output?.revision;
    if (input.type === "delete") {
      if (state.value === null) return state;
      return after(revision, state) ? { value: null, revision } : undefined;
    }
    if (!after(revision, state)) return undefined;
    return { value: input.value, revision };
  }
  // Not applied: the compare must have failed (put never fails), and `current` must match.
  if (input.type === "put") return undefined;
  if (input.type === "cas" && input.expected === 0 && state.value === null) return undefined;
  if (input.type === "cas" && input.expected !== 0 && state.value !== null && state.revision === input.expected) return undefined;
  if (input.type === "delete" && (input.expected === undefined || (state.value !== null && state.revision === input.expected))) return undefined;
  const current = output.current;
  if (current === undefined) return state;
  if (current === null) return state.value === null ? state : undefined;
  if (current.value !== state.value) return undefined;
  if (!sameRevision(state.revision, current.revision)) return undefined;
  return learn(state, current.revision);
}

/** The value an operation's output shows (null for "absent"), or undefined when it shows none. */
export function observedValue(output: KvOutput | undefined): string | null | undefined {
  if (!output) return undefined;
  if ("value" in output) return output.value;
  if ("ok" in output && !output.ok && output.current !== undefined) return output.current === null ? null : output.current.value;
  return undefined;
}
