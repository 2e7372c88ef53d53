/**
 * A linearizability checker for key/value histories (Wing & Gong search with Lowe's and
 * Porcupine's improvements: just-in-time linearization, memoized (linearized set, state) pairs,
 * per-key partitioning), handling operations whose outcome is unknown.
 */
export { checkHistory, formatOperation } from "./checker.js";
export type { CheckOptions, CheckResult, Operation } from "./checker.js";
export { initialState, step } from "./model.js";
export type { KvCurrent, KvInput, KvOutput, KvState } from "./model.js";
export { HistoryRecorder } from "./recorder.js";
export type { PendingOperation, UnknownOperation } from "./recorder.js";
