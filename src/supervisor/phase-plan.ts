// What the phase clock does at each chain head, as pure logic (no chain, no pool, no timers): the
// duty windows of a cycle, and a planner that turns one head into announcements ("<Phase> to begin in
// N blocks"), dispatches (at most one task per duty and cycle) and skips (arrived too late for the
// window, or the previous task of the duty still runs).
import { phaseAt, type PhaseName, type PhaseSchedule } from '../protocol/phases.js';
import type { DutyName, DutyWindow } from '../workers/task-protocol.js';

export interface DutySpec {
  duty: DutyName;
  /** The phase whose first block starts the duty (the guide's "<Phase> has started"). */
  startPhase: PhaseName;
  /** A task is only started while this phase (or an earlier one of the window) runs. */
  startByPhase: PhaseName;
  /** The task may act until the end of this phase. */
  actUntilPhase: PhaseName;
  /** The task must be finished by the end of this phase (its deadline). */
  deadlinePhase: PhaseName;
}

/**
 * The miner's duties (PROTOCOL.md §1.7):
 * - download: from Distribute; a late joiner may still fetch the baseline during Train (the trainer
 *   reloads it at its next step), never after Train;
 * - commit: must start inside MinerCommit1 (commit 1 has to be on chain when it ends) and finishes
 *   with commit 2 inside MinerCommit2;
 * - submit: every upload attempt starts inside Submission; an upload already streaming may finish
 *   during Validate (the validator names the file by the block its stream began).
 */
export const DUTY_SPECS: readonly DutySpec[] = [
  { duty: 'download', startPhase: 'Distribute', startByPhase: 'Train', actUntilPhase: 'Train', deadlinePhase: 'Train' },
  { duty: 'commit', startPhase: 'MinerCommit1', startByPhase: 'MinerCommit1', actUntilPhase: 'MinerCommit2', deadlinePhase: 'MinerCommit2' },
  { duty: 'submit', startPhase: 'Submission', startByPhase: 'Submission', actUntilPhase: 'Submission', deadlinePhase: 'Validate' },
];

function phaseSpan(s: PhaseSchedule, cycleIndex: number, name: PhaseName): { start: number; end: number } {
  const p = s.phases.find((q) => q.name === name)!;
  const start = cycleIndex * s.cycleLength + p.offset;
  return { start, end: start + p.length - 1 };
}

/** The blocks of `spec`'s window in cycle `cycleIndex`. */
export function dutyWindow(s: PhaseSchedule, spec: DutySpec, cycleIndex: number): DutyWindow {
  return {
    start: phaseSpan(s, cycleIndex, spec.startPhase).start,
    startBy: phaseSpan(s, cycleIndex, spec.startByPhase).end,
    actUntil: phaseSpan(s, cycleIndex, spec.actUntilPhase).end,
    deadline: phaseSpan(s, cycleIndex, spec.deadlinePhase).end,
  };
}

export type PlanAction =
  | { kind: 'announce'; duty: DutyName; phase: PhaseName; startBlock: number; blocksUntil: number }
  | {
      kind: 'dispatch';
      duty: DutyName;
      phase: PhaseName;
      cycleIndex: number;
      window: DutyWindow;
      /** The clock arrived after the window's first block. */
      joined: boolean;
      blocksPassed: number;
      blocksLeft: number;
    }
  | { kind: 'skip'; duty: DutyName; phase: PhaseName; cycleIndex: number; window: DutyWindow; block: number; reason: 'late' | 'busy' };

interface DutyState {
  handledCycle: number | null;
  running: boolean;
  announcedStart: number | null;
}

export class PhasePlanner {
  private readonly state = new Map<DutyName, DutyState>();

  /**
   * @param minBlocksLeft a clock arriving inside a window acts only if at least this many blocks of
   *   its start-by phase remain (arriving exactly on the first block always acts).
   */
  constructor(
    private readonly specs: readonly DutySpec[] = DUTY_SPECS,
    private readonly minBlocksLeft = 1,
  ) {
    for (const s of specs) this.state.set(s.duty, { handledCycle: null, running: false, announcedStart: null });
  }

  setRunning(duty: DutyName, running: boolean): void {
    this.st(duty).running = running;
  }

  isRunning(duty: DutyName): boolean {
    return this.st(duty).running;
  }

  /** Forget announcements and handled cycles (the schedule changed). Running flags stay. */
  reset(): void {
    for (const st of this.state.values()) {
      st.handledCycle = null;
      st.announcedStart = null;
    }
  }

  private st(duty: DutyName): DutyState {
    const st = this.state.get(duty);
    if (st === undefined) throw new Error(`unknown duty ${duty}`);
    return st;
  }

  /** What to do at head `block`. Heads may skip blocks or repeat; each window acts at most once. */
  onHead(s: PhaseSchedule, block: number): PlanAction[] {
    const out: PlanAction[] = [];
    const cycleIndex = Math.floor(block / s.cycleLength);
    for (const spec of this.specs) {
      const st = this.st(spec.duty);
      const w = dutyWindow(s, spec, cycleIndex);
      if (block >= w.start && block <= w.actUntil) {
        if (st.handledCycle === cycleIndex) continue;
        st.handledCycle = cycleIndex;
        st.announcedStart = null;
        if (st.running) {
          out.push({ kind: 'skip', duty: spec.duty, phase: spec.startPhase, cycleIndex, window: w, block, reason: 'busy' });
        } else if (block === w.start || w.startBy - block >= this.minBlocksLeft) {
          out.push({
            kind: 'dispatch',
            duty: spec.duty,
            phase: spec.startPhase,
            cycleIndex,
            window: w,
            joined: block > w.start,
            blocksPassed: block - w.start,
            blocksLeft: Math.max(0, phaseAt(s, block).phase_end_block - block),
          });
        } else {
          out.push({ kind: 'skip', duty: spec.duty, phase: spec.startPhase, cycleIndex, window: w, block, reason: 'late' });
        }
        continue;
      }
      const next = block < w.start ? w.start : dutyWindow(s, spec, cycleIndex + 1).start;
      if (st.announcedStart !== next) {
        st.announcedStart = next;
        out.push({ kind: 'announce', duty: spec.duty, phase: spec.startPhase, startBlock: next, blocksUntil: next - block });
      }
    }
    return out;
  }
}

/**
 * Wall-clock deadline of a window ending at block `deadlineBlock`, seen from `head` (seen at
 * `seenAt`): when block `deadlineBlock + 1` is due, with slack for slow blocks. Tasks never act on
 * the wall clock — they check the chain head against their window — so a late estimate only delays
 * the end of a stuck task, while an early one would cut a task whose window is still open.
 */
export function windowDeadline(seenAt: number, head: number, deadlineBlock: number, blockTimeMs: number): number {
  const blocks = Math.max(0, deadlineBlock + 1 - head);
  return seenAt + Math.ceil(blocks * blockTimeMs * 1.5 + 2 * blockTimeMs);
}
