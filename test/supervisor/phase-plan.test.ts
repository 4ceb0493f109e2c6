// The phase clock's decisions (src/supervisor/phase-plan.ts) as pure logic: one dispatch per duty and
// cycle at the window's first block, announcements once per wait, joining mid-window only when enough
// of it is left, a skip (never a late action) when it is not, and no second task while one runs.
import { describe, expect, it } from 'vitest';
import { blocksUntilNextPhase, CBF3C65_PHASE_LENGTHS, scheduleFromLengths } from '../../src/protocol/phases.js';
import { DUTY_SPECS, dutyWindow, PhasePlanner, type PlanAction } from '../../src/supervisor/phase-plan.js';

const s = scheduleFromLengths({ distribute: 12, train: 40, commit: 8, submission: 12, validate: 8, merge: 8 });
const L = s.cycleLength; // 112
const spec = (d: string) => DUTY_SPECS.find((x) => x.duty === d)!;

function walk(p: PhasePlanner, from: number, to: number): Array<PlanAction & { at: number }> {
  const out: Array<PlanAction & { at: number }> = [];
  for (let b = from; b <= to; b++) for (const a of p.onHead(s, b)) out.push({ ...a, at: b });
  return out;
}

describe('duty windows', () => {
  it('span the reference phases of each cycle', () => {
    const c = scheduleFromLengths(CBF3C65_PHASE_LENGTHS); // L = 472
    expect(dutyWindow(c, spec('download'), 2)).toEqual({ start: 944, startBy: 944 + 319, actUntil: 944 + 319, deadline: 944 + 319 });
    expect(dutyWindow(c, spec('commit'), 2)).toEqual({ start: 944 + 320, startBy: 944 + 327, actUntil: 944 + 335, deadline: 944 + 335 });
    expect(dutyWindow(c, spec('submit'), 2)).toEqual({ start: 944 + 336, startBy: 944 + 355, actUntil: 944 + 355, deadline: 944 + 405 });
  });
});

describe('phase planner', () => {
  it('following every head: exactly one dispatch per duty and cycle, on the first block of its phase', () => {
    const acts = walk(new PhasePlanner(), 0, 3 * L - 1);
    const dispatches = acts.filter((a) => a.kind === 'dispatch');
    expect(dispatches.map((a) => [a.duty, a.at, (a as { joined: boolean }).joined])).toEqual(
      [0, 1, 2].flatMap((c) => [
        ['download', c * L, false],
        ['commit', c * L + 52, false],
        ['submit', c * L + 68, false],
      ]),
    );
    expect(acts.filter((a) => a.kind === 'skip')).toEqual([]);
    const d = dispatches[4] as Extract<PlanAction, { kind: 'dispatch' }>;
    expect(d.window).toEqual({ start: L + 52, startBy: L + 59, actUntil: L + 67, deadline: L + 67 });
    expect(d.blocksLeft).toBe(7);
  });

  it('announces each wait once, with the blocks the owner service would report', () => {
    const acts = walk(new PhasePlanner(), 1, 2 * L);
    const ann = acts.filter((a): a is Extract<PlanAction, { kind: 'announce' }> & { at: number } => a.kind === 'announce');
    // One announcement per duty per upcoming window (never repeated on every head).
    expect(ann.filter((a) => a.duty === 'commit').map((a) => [a.at, a.startBlock])).toEqual([
      [1, 52],
      [68, L + 52],
      [L + 68, 2 * L + 52],
    ]);
    for (const a of ann) {
      const owner = blocksUntilNextPhase(s, a.at)[a.phase];
      expect([a.startBlock, a.blocksUntil]).toEqual([owner[0], owner[2]]);
    }
  });

  it('joining mid-window acts while enough is left; arriving after the start-by phase is a skip, never a late action', () => {
    // Joins in Train: the baseline can still be fetched.
    let p = new PhasePlanner();
    let acts = p.onHead(s, 30);
    expect(acts.find((a) => a.duty === 'download')).toMatchObject({ kind: 'dispatch', joined: true, blocksPassed: 30 });
    // Joins in MinerCommit2: commit 1 can no longer be on chain in time.
    p = new PhasePlanner();
    acts = p.onHead(s, 60);
    expect(acts.find((a) => a.duty === 'commit')).toMatchObject({ kind: 'skip', reason: 'late', cycleIndex: 0 });
    expect(walk(p, 61, 67).filter((a) => a.duty === 'commit' && a.kind !== 'announce')).toEqual([]);
    expect(walk(p, 68, L + 52).filter((a) => a.duty === 'commit' && a.kind === 'dispatch').map((a) => a.at)).toEqual([L + 52]);
    // The last block of MinerCommit1 leaves no room: skip.
    p = new PhasePlanner();
    expect(p.onHead(s, 59).find((a) => a.duty === 'commit')).toMatchObject({ kind: 'skip', reason: 'late' });
    p = new PhasePlanner();
    expect(p.onHead(s, 58).find((a) => a.duty === 'commit')).toMatchObject({ kind: 'dispatch', joined: true });
  });

  it('never runs two tasks of one duty; heads that jump over a window skip it silently', () => {
    const p = new PhasePlanner();
    walk(p, 0, 0);
    p.setRunning('download', true);
    const next = p.onHead(s, L);
    expect(next.find((a) => a.duty === 'download')).toMatchObject({ kind: 'skip', reason: 'busy', cycleIndex: 1 });
    p.setRunning('download', false);
    // A stall: the head jumps from 60 (cycle 1's download done) over Submission to Validate.
    const q = new PhasePlanner();
    walk(q, L + 60, L + 60);
    const jumped = q.onHead(s, L + 85);
    expect(jumped.filter((a) => a.kind === 'dispatch')).toEqual([]);
    expect(jumped.find((a) => a.duty === 'submit')).toMatchObject({ kind: 'announce', startBlock: 2 * L + 68 });
  });
});
