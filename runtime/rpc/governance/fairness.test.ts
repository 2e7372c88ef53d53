import { describe, expect, it } from "vitest";
import { QueueShedder } from "./admission.js";
import { PeerShares } from "./fairness.js";

describe("fairness", () => {
  it("fairness - a peer is light below a quarter of its fair share of the bytes read, never while it is the only one", () => {
    const p = new PeerShares(1000, 0);
    p.record("a", 10_000, 1);
    expect(p.light("a", 2)).toBe(false); // alone: all the load is its own
    p.record("b", 100, 3);
    // a: 10 512, b: 612 of 11 124; fair share 5 562, a quarter of it 1 390.
    expect(p.light("b", 4)).toBe(true);
    expect(p.light("a", 4)).toBe(false);
    expect(p.light("never-sent", 4)).toBe(true);
    // Evenly spread peers are none of them light, however many.
    const even = new PeerShares(1000, 0);
    for (let i = 0; i < 100; i++) even.record(`p${i}`, 1000 + (i % 7) * 100, 1);
    for (let i = 0; i < 100; i++) expect(even.light(`p${i}`, 2)).toBe(false);
  });

  it("fairness - a peer is heavy above half again its fair share; peers that send alike never are", () => {
    const p = new PeerShares(1000, 0);
    p.record("flood", 10_000, 1);
    expect(p.heavy("flood", 2)).toBe(false); // alone
    p.record("client", 2000, 3);
    // flood 10 512, client 2 512 of 13 024: the flood has 81% (over 75%), the client 19%.
    expect(p.heavy("flood", 4)).toBe(true);
    expect(p.heavy("client", 4)).toBe(false);
    const even = new PeerShares(1000, 0);
    for (let i = 0; i < 8; i++) even.record(`p${i}`, 1000 + i * 200, 1);
    for (let i = 0; i < 8; i++) expect(even.heavy(`p${i}`, 2)).toBe(false);
  });

  it("fairness - a heavy peer's calls get no share of their timeout in a standing queue; the others' do", () => {
    const s = new QueueShedder({ targetMs: 5, intervalMs: 25 }, 0);
    const day = 86_400_000;
    s.peers.record("flood", 10_000, 0);
    s.peers.record("client", 2000, 0);
    s.dropping = true;
    expect(s.stale(40, "normal", "flood", 1, 30 * day)?.message).toMatch(/sheds what waited longer than 5 ms/);
    expect(s.stale(40, "normal", "client", 1, 1000)).toBeUndefined(); // a twentieth of 1 s
    // In a burst (not dropping) the heavy peer keeps its share: a burst is not a flood.
    s.dropping = false;
    expect(s.stale(40, "normal", "flood", 2, 30 * day)).toBeUndefined();
  });

  it("fairness - shares are taken over the current and the last window; a quiet window forgets both", () => {
    const p = new PeerShares(1000, 0);
    p.record("heavy", 100_000, 10);
    p.record("small", 0, 10);
    expect(p.light("small", 20)).toBe(true);
    // The next window: the heavy peer's burst still counts.
    p.record("small", 0, 1500);
    expect(p.light("small", 1500)).toBe(true);
    // Two windows on, only what was sent since counts: the small peer is all that was read.
    p.record("small", 0, 2600);
    p.record("other", 0, 2600);
    expect(p.light("small", 2600)).toBe(false);
    // After a quiet window nothing of before is kept.
    const q = new PeerShares(1000, 0);
    q.record("heavy", 100_000, 10);
    q.record("small", 0, 10);
    q.record("small", 0, 2500);
    expect(q.light("small", 2500)).toBe(false);
  });

  it("fairness - calls recorded in runs from one peer count as if recorded one by one, across windows", () => {
    // A model of the shares: each window's bytes per peer, summed as recorded.
    const windows: Map<string, number>[] = [];
    const p = new PeerShares(1000, 0);
    const expectShares = (now: number): void => {
      const w = Math.floor(now / 1000);
      const current = windows[w] ?? new Map<string, number>();
      const previous = windows[w - 1] ?? new Map<string, number>();
      const peers = Math.max(current.size, previous.size);
      const total = [...current.values(), ...previous.values()].reduce((a, b) => a + b, 0);
      for (const peer of ["a", "b", "c", "d"]) {
        const share = peers < 2 ? 1 : (((current.get(peer) ?? 0) + (previous.get(peer) ?? 0)) * peers) / total;
        expect([peer, now, p.light(peer, now), p.heavy(peer, now)]).toEqual([peer, now, share * 4 < 1, share > 1.5]);
      }
    };
    // Runs of one peer, interleaved, a run going on past a window's end, and a quiet window.
    const calls: [string, number, number][] = [
      ["a", 5000, 10], ["a", 5000, 11], ["a", 5000, 12], ["b", 0, 13], ["a", 5000, 14], ["c", 900, 15], ["c", 900, 16],
      ["c", 900, 990], ["c", 900, 1001], ["c", 900, 1002], ["d", 0, 1003], ["b", 0, 1004], ["b", 0, 1005], ["a", 20_000, 1006],
      ["d", 0, 3100], ["d", 0, 3101], ["b", 3000, 3102],
    ];
    for (const [i, [peer, bytes, now]] of calls.entries()) {
      p.record(peer, bytes, now);
      const w = (windows[Math.floor(now / 1000)] ??= new Map());
      w.set(peer, (w.get(peer) ?? 0) + bytes + 512);
      // Looked at after some of the calls only, so that runs are left open across records.
      if (i % 3 === 2) expectShares(now);
    }
    expectShares(3102);
  });

  it("fairness - the shedder spares the calls of a light peer and sheds those of the peer that floods", () => {
    const s = new QueueShedder({ targetMs: 5, intervalMs: 100 }, 0);
    for (let t = 0; t <= 120; t += 10) {
      s.peers.record("flood", 1 << 20, t);
      s.check(50, t, "normal", "flood");
    }
    expect(s.dropping).toBe(true);
    s.peers.record("client", 30, 121);
    expect(s.check(50, 121, "normal", "client")).toBeUndefined();
    expect(s.stale(50, "normal", "client", 122)).toBeUndefined();
    expect(s.check(50, 123, "normal", "flood")?.message).toMatch(/shed/);
    expect(s.spared).toBe(2);
    // A sheddable call is shed first, light peer or not.
    expect(s.stale(50, "sheddable", "client", 123)).toBeDefined();
    // Without a peer, nothing is spared.
    expect(s.stale(50, "normal", undefined, 124)).toBeDefined();
  });
});
