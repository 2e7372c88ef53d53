/**
 * The demo's script: timed phases with what the coordinator does at their start and during them.
 * Phase lengths are shares of `--duration`, never shorter than what their story needs (a
 * failure has to be noticed and the primary moved before the phase ends).
 */
import { FIRST_PRIMARY, SECONDARY_CUT, SECOND_PRIMARY } from "./protocol.js";

/** The timed phases, in order. */
export type PhaseId = "warm-up" | "steady" | "secondary-cut" | "primary-cut" | "heal" | "primary-paused";

/** One timed phase. */
export interface PhaseSpec {
  readonly id: PhaseId;
  readonly title: string;
  /** What happens, in one line, for the live view and the summary. */
  readonly story: string;
  readonly share: number;
  readonly minMs: number;
}

/** The script: what each phase does and how much of `--duration` it takes. */
export const PHASES: readonly PhaseSpec[] = [
  { id: "warm-up", title: "warm-up", story: "connections open, caches fill", share: 0.1, minMs: 1500 },
  {
    id: "steady",
    title: "steady",
    story: `traffic from every region: writes and linearizable reads go to the primary (${FIRST_PRIMARY}), eventual reads stay local`,
    share: 0.2,
    minMs: 3000,
  },
  {
    id: "secondary-cut",
    title: `${SECONDARY_CUT} cut off`,
    story: `${SECONDARY_CUT} loses every link: its reads fall back to its replica (and say how stale), its writes fail fast`,
    share: 0.17,
    minMs: 3500,
  },
  {
    id: "primary-cut",
    title: "primary cut off",
    story: `${FIRST_PRIMARY}, the primary, loses every link: writes fail fast until the operator moves the primary to ${SECOND_PRIMARY} by compare-and-set (epoch + 1); the old primary is fenced`,
    share: 0.27,
    minMs: 5500,
  },
  { id: "heal", title: "healed", story: `every link is back; ${FIRST_PRIMARY} rejoins as a secondary and catches up`, share: 0.14, minMs: 3000 },
  {
    id: "primary-paused",
    title: "primary paused",
    story:
      `an instance of the primary (${SECOND_PRIMARY}) admits a write and its process freezes (SIGSTOP, as a long GC pause would); ` +
      `the operator moves the primary back to ${FIRST_PRIMARY}, which writes; ${SECOND_PRIMARY} thaws and the store's fence refuses its write`,
    share: 0.12,
    minMs: 6000,
  },
];

/** A phase with its place on the demo's clock. */
export interface TimedPhase extends PhaseSpec {
  readonly index: number;
  /** Offsets from the scenario's start, ms. */
  readonly startMs: number;
  readonly endMs: number;
}

/** Lays the phases out over `durationMs`. */
export function schedule(durationMs: number): TimedPhase[] {
  let at = 0;
  return PHASES.map((p, index) => {
    const length = Math.max(p.minMs, Math.round(p.share * durationMs));
    const timed = { ...p, index, startMs: at, endMs: at + length };
    at += length;
    return timed;
  });
}

/** When, inside the primary-cut phase, the operator moves the primary: once the cut had time to show. */
export function moveDelayMs(phase: TimedPhase): number {
  return Math.max(1500, Math.round((phase.endMs - phase.startMs) * 0.25));
}
