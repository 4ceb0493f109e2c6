// The block-driven phase cycle of the owner service (PROTOCOL.md §1.3–1.5), as pure functions of a
// schedule and a block. The live owner service is authoritative: build the schedule from its `/`
// response when reachable (`scheduleFromOwnerRoot`) and from the config's locked lengths otherwise.
import { ProtocolError } from './errors.js';

/** Wire strings of the phases, in cycle order (`shared/cycle.py` PhaseNames). */
export const PHASE_NAMES = [
  'Distribute',
  'Train',
  'MinerCommit1',
  'MinerCommit2',
  'Submission',
  'Validate',
  'Merge',
  'ValidatorCommit1',
  'ValidatorCommit2',
] as const;

export type PhaseName = (typeof PHASE_NAMES)[number];

export function isPhaseName(x: unknown): x is PhaseName {
  return typeof x === 'string' && (PHASE_NAMES as readonly string[]).includes(x);
}

export interface SchedulePhase {
  name: PhaseName;
  index: number;
  length: number;
  /** First cycle block of the phase (sum of the lengths before it). */
  offset: number;
}

export interface PhaseSchedule {
  phases: readonly SchedulePhase[];
  /** Sum of the phase lengths (not config `cycle.cycle_length`, which is the weight-freshness window). */
  cycleLength: number;
}

/** The owner config's period lengths; MinerCommit1/2 and ValidatorCommit1/2 all use `commit`. */
export interface PhaseLengths {
  distribute: number;
  train: number;
  commit: number;
  submission: number;
  validate: number;
  merge: number;
}

/** Reference defaults at cbf3c65 (cycle 472) and HEAD (cycle 500). Telemetry/offline only. */
export const CBF3C65_PHASE_LENGTHS: Readonly<PhaseLengths> = Object.freeze({
  distribute: 20, train: 300, commit: 8, submission: 20, validate: 50, merge: 50,
});
export const HEAD_PHASE_LENGTHS: Readonly<PhaseLengths> = Object.freeze({
  distribute: 20, train: 300, commit: 10, submission: 80, validate: 10, merge: 50,
});

/** A schedule from an ordered list of (name, length). Every known phase must appear exactly once. */
export function scheduleFromPhases(list: ReadonlyArray<{ name: string; length: number }>): PhaseSchedule {
  const seen = new Set<string>();
  const phases: SchedulePhase[] = [];
  let offset = 0;
  for (const [index, p] of list.entries()) {
    if (!isPhaseName(p.name)) {
      throw new ProtocolError('CNM_ERR_PHASE_SCHEDULE', `unknown phase name ${JSON.stringify(p.name)} (expected one of ${PHASE_NAMES.join(', ')})`);
    }
    if (seen.has(p.name)) throw new ProtocolError('CNM_ERR_PHASE_SCHEDULE', `phase ${p.name} appears twice`);
    if (!Number.isSafeInteger(p.length) || p.length <= 0) {
      throw new ProtocolError('CNM_ERR_PHASE_SCHEDULE', `phase ${p.name} has length ${String(p.length)}; expected a positive integer`);
    }
    seen.add(p.name);
    phases.push({ name: p.name, index, length: p.length, offset });
    offset += p.length;
  }
  for (const name of PHASE_NAMES) {
    if (!seen.has(name)) throw new ProtocolError('CNM_ERR_PHASE_SCHEDULE', `phase ${name} is missing from the schedule`);
  }
  return { phases, cycleLength: offset };
}

/** The owner's order (`sn_owner/cycle.py:15-37`) with the config's period lengths. */
export function scheduleFromLengths(l: PhaseLengths): PhaseSchedule {
  return scheduleFromPhases([
    { name: 'Distribute', length: l.distribute },
    { name: 'Train', length: l.train },
    { name: 'MinerCommit1', length: l.commit },
    { name: 'MinerCommit2', length: l.commit },
    { name: 'Submission', length: l.submission },
    { name: 'Validate', length: l.validate },
    { name: 'Merge', length: l.merge },
    { name: 'ValidatorCommit1', length: l.commit },
    { name: 'ValidatorCommit2', length: l.commit },
  ]);
}

/**
 * Parses the owner service's `GET /` answer:
 * `{"message": ..., "cycle_length": L, "phases": [{"index": i, "name": ..., "length": n}, ...]}`.
 * Phases are taken in `index` order; a `cycle_length` that disagrees with the sum is an error.
 */
export function scheduleFromOwnerRoot(json: unknown): PhaseSchedule {
  const bad = (why: string): never => {
    throw new ProtocolError('CNM_ERR_PHASE_SCHEDULE', `owner phase service "/" response ${why}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return bad('is not a JSON object');
  const o = json as Record<string, unknown>;
  if (!Array.isArray(o.phases)) return bad('has no "phases" array');
  const items = o.phases.map((p: unknown, i: number) => {
    if (typeof p !== 'object' || p === null) return bad(`phases[${i}] is not an object`);
    const q = p as Record<string, unknown>;
    if (typeof q.name !== 'string') return bad(`phases[${i}].name is not a string`);
    if (typeof q.length !== 'number') return bad(`phases[${i}].length is not a number`);
    const index = q.index === undefined ? i : q.index;
    if (typeof index !== 'number' || !Number.isSafeInteger(index)) return bad(`phases[${i}].index is not an integer`);
    return { name: q.name, length: q.length, index };
  });
  items.sort((a, b) => a.index - b.index);
  items.forEach((p, i) => {
    if (p.index !== i) bad(`phase indices are not 0..${items.length - 1}`);
  });
  const schedule = scheduleFromPhases(items);
  if (o.cycle_length !== undefined && o.cycle_length !== schedule.cycleLength) {
    bad(`says cycle_length ${String(o.cycle_length)} but its phases sum to ${schedule.cycleLength}`);
  }
  return schedule;
}

/** `/get_phase` response fields (`shared/cycle.py:91-101`). */
export interface PhaseResponse {
  block: number;
  cycle_length: number;
  cycle_index: number;
  cycle_block_index: number;
  phase_name: PhaseName;
  phase_index: number;
  phase_start_block: number;
  /** Inclusive. */
  phase_end_block: number;
  blocks_into_phase: number;
  /** 0 on the last block of the phase. */
  blocks_remaining_in_phase: number;
}

function checkBlock(block: number): void {
  if (!Number.isSafeInteger(block) || block < 0) {
    throw new ProtocolError('CNM_ERR_PROTOCOL_ARG', `block must be a non-negative integer, got ${String(block)}`);
  }
}

/** `get_phase(b)`: cycles are aligned to block 0. */
export function phaseAt(s: PhaseSchedule, block: number): PhaseResponse {
  checkBlock(block);
  const L = s.cycleLength;
  const cycleIndex = Math.floor(block / L);
  const cbi = block % L;
  const p = s.phases.find((q) => q.offset <= cbi && cbi < q.offset + q.length)!;
  return {
    block,
    cycle_length: L,
    cycle_index: cycleIndex,
    cycle_block_index: cbi,
    phase_name: p.name,
    phase_index: p.index,
    phase_start_block: cycleIndex * L + p.offset,
    phase_end_block: cycleIndex * L + p.offset + p.length - 1,
    blocks_into_phase: cbi - p.offset,
    blocks_remaining_in_phase: p.offset + p.length - 1 - cbi,
  };
}

export type BlocksUntilNextPhase = Record<PhaseName, [start: number, end: number, blocksUntil: number]>;
export type PhaseRanges = Record<PhaseName, [start: number, end: number]>;

/**
 * `blocks_until_next_phase()`: the next occurrence of every phase. A phase in progress is reported at
 * its next-cycle occurrence, except on its very first block (reported as starting now, 0 blocks).
 */
export function blocksUntilNextPhase(s: PhaseSchedule, block: number): BlocksUntilNextPhase {
  checkBlock(block);
  const L = s.cycleLength;
  const cbi = block % L;
  const out = {} as BlocksUntilNextPhase;
  for (const p of s.phases) {
    const start = p.offset >= cbi ? block - cbi + p.offset : block - cbi + L + p.offset;
    out[p.name] = [start, start + p.length - 1, start - block];
  }
  return out;
}

/**
 * `previous_phase_block_ranges()`: `blocksUntilNextPhase` minus one cycle. For the phase in progress
 * (unless on its first block) this is the occurrence still running.
 */
export function previousPhaseRanges(s: PhaseSchedule, block: number): PhaseRanges {
  const next = blocksUntilNextPhase(s, block);
  const out = {} as PhaseRanges;
  for (const p of s.phases) {
    const [start, end] = next[p.name];
    out[p.name] = [start - s.cycleLength, end - s.cycleLength];
  }
  return out;
}

export interface VersionRange {
  min: number;
  max: number;
}

/**
 * `get_allowed_version_range` (`shared/cycle.py:445-486`) from the two owner-API answers. Returns
 * null when either answer is missing (the reference then does no version filtering).
 * In MinerCommit1: max = its start block and L from the same response; otherwise
 * max = previous MinerCommit1 start and L = Σ(end − start + 1) over the previous ranges.
 * min = max − trunc(L × versionRangeCycles).
 */
export function allowedVersionRange(
  current: PhaseResponse | null,
  previous: Partial<Record<string, readonly [number, number]>> | null,
  versionRangeCycles = 3,
): VersionRange | null {
  if (current === null) return null;
  let max: number;
  let cycleLength: number;
  if (current.phase_name === 'MinerCommit1') {
    max = current.phase_start_block;
    cycleLength = current.cycle_length;
  } else {
    if (previous === null) return null;
    const mc1 = previous.MinerCommit1;
    if (!mc1) return null;
    max = mc1[0];
    cycleLength = 0;
    for (const r of Object.values(previous)) if (r) cycleLength += r[1] - r[0] + 1;
  }
  return { min: max - Math.trunc(cycleLength * versionRangeCycles), max };
}

/** `allowedVersionRange` computed locally from a schedule (what the owner API would answer). */
export function allowedVersionRangeAt(s: PhaseSchedule, block: number, versionRangeCycles = 3): VersionRange {
  return allowedVersionRange(phaseAt(s, block), previousPhaseRanges(s, block), versionRangeCycles)!;
}
