// Validator ↔ miner assignment (PROTOCOL.md §3). Other nodes compute the same mapping, so the tie
// order (validator insertion order), the missing separator in the combined seed and the soft cap
// are replicated exactly — see §3.3 before "fixing" anything here.
import { createHash } from 'node:crypto';
import { comparePy, pyStr, type PyScalar } from './pystr.js';

/** A validator's `s` (miner seed) as committed; `null` when it omitted it (hashes as "None"). */
export type ValidatorSeed = number | bigint | null;

/** Validators in commit-enumeration order: a Map (insertion order) or [hotkey, seed] pairs. */
export type ValidatorSeeds = ReadonlyMap<string, ValidatorSeed> | ReadonlyArray<readonly [string, ValidatorSeed]>;

/** `h256_int(*parts)`: SHA-256 over `utf8(str(part)) ‖ 0x00` for each part, read big-endian. */
export function h256Int(...parts: PyScalar[]): bigint {
  return BigInt('0x' + h256Hex(...parts));
}

export function h256Preimage(...parts: PyScalar[]): Uint8Array {
  const chunks: Buffer[] = [];
  for (const p of parts) chunks.push(Buffer.from(pyStr(p), 'utf8'), Buffer.alloc(1));
  return new Uint8Array(Buffer.concat(chunks));
}

function h256Hex(...parts: PyScalar[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(Buffer.from(pyStr(p), 'utf8'));
    h.update(ZERO);
  }
  return h.digest('hex');
}
const ZERO = new Uint8Array(1);

function entries(v: ValidatorSeeds): Array<[string, ValidatorSeed]> {
  return v instanceof Map ? [...v.entries()] : (v as ReadonlyArray<readonly [string, ValidatorSeed]>).map(([k, s]) => [k, s]);
}

/**
 * `sha256_hex(concat(str(seed[hk]) for hk in sorted(hotkeys)))` — no separator, so seeds 1,23 and
 * 12,3 collide; with no validators the reference falls back to `sha256(b"0")`.
 */
export function combinedValidatorSeed(validators: ValidatorSeeds): string {
  const list = entries(validators);
  if (list.length === 0) return createHash('sha256').update('0').digest('hex');
  const sorted = list.map(([hk]) => hk).sort(comparePy);
  const seeds = new Map(list);
  return createHash('sha256').update(sorted.map((hk) => pyStr(seeds.get(hk))).join(''), 'utf8').digest('hex');
}

export interface AssignmentTraceStep {
  miner: string;
  preferences: string[];
  assignedTo: string;
  overflow: boolean;
}

export interface AssignmentTrace {
  assignment: Map<string, string[]>;
  combinedSeed: string;
  capacitiesInitial: Map<string, number>;
  bonusRanking: string[];
  minerOrder: string[];
  trace: AssignmentTraceStep[];
}

/**
 * `assign_miners_to_validators` (`shared/cycle.py:207-266`): every validator is a key of the result
 * (input order, possibly with an empty list); miners are listed in assignment order. The cap is soft:
 * a miner no validator has room for goes to its least-preferred validator.
 */
export function assignMinersToValidators(
  validators: ValidatorSeeds,
  miners: readonly string[],
  maxMinersPerValidator?: number | null,
): Map<string, string[]> {
  return assignMinersToValidatorsTraced(validators, miners, maxMinersPerValidator).assignment;
}

/** `assignMinersToValidators` with the intermediate values (for logs and the golden-vector tests). */
export function assignMinersToValidatorsTraced(
  validators: ValidatorSeeds,
  miners: readonly string[],
  maxMinersPerValidator?: number | null,
): AssignmentTrace {
  const list = entries(validators);
  const seeds = new Map(list);
  const order = [...seeds.keys()]; // a repeated hotkey keeps its first position, like a dict
  const assignment = new Map<string, string[]>(order.map((v) => [v, []]));
  const empty: AssignmentTrace = {
    assignment: list.length === 0 ? new Map() : assignment,
    combinedSeed: '',
    capacitiesInitial: new Map(),
    bonusRanking: [],
    minerOrder: [],
    trace: [],
  };
  if (order.length === 0) return empty;

  const combined = combinedValidatorSeed(list);
  const nV = order.length;
  const base = Math.floor(miners.length / nV);
  const rem = miners.length % nV;

  const byKeyDesc = <T>(items: readonly T[], key: (x: T) => bigint): T[] => {
    const keyed = items.map((x) => ({ x, k: key(x) }));
    keyed.sort((a, b) => (a.k === b.k ? 0 : a.k > b.k ? -1 : 1)); // stable: ties keep input order
    return keyed.map((e) => e.x);
  };

  const bonusRanking = byKeyDesc(order, (v) => h256Int('cap_bonus', seeds.get(v), combined));
  const capacity = new Map<string, number>();
  bonusRanking.forEach((v, i) => capacity.set(v, i < rem ? base + 1 : base));
  if (maxMinersPerValidator !== undefined && maxMinersPerValidator !== null) {
    for (const [v, c] of capacity) capacity.set(v, Math.min(c, maxMinersPerValidator));
  }
  const capacitiesInitial = new Map(order.map((v) => [v, capacity.get(v)!]));

  const minerKeys = miners.map((m) => ({ m, k: h256Int('miner_order', m, combined) }));
  minerKeys.sort((a, b) => (a.k === b.k ? 0 : a.k < b.k ? -1 : 1));
  const minerOrder = minerKeys.map((e) => e.m);

  const trace: AssignmentTraceStep[] = [];
  for (const m of minerOrder) {
    const prefs = byKeyDesc(order, (v) => h256Int('preference', m, seeds.get(v), combined));
    let chosen = prefs.find((v) => capacity.get(v)! > 0);
    const overflow = chosen === undefined;
    if (chosen === undefined) chosen = prefs[prefs.length - 1]!;
    else capacity.set(chosen, capacity.get(chosen)! - 1);
    assignment.get(chosen)!.push(m);
    trace.push({ miner: m, preferences: prefs, assignedTo: chosen, overflow });
  }
  return { assignment, combinedSeed: combined, capacitiesInitial, bonusRanking, minerOrder, trace };
}

/** The validator a miner is assigned to, or null (§3.4: the first validator whose list has it). */
export function assignedValidator(assignment: ReadonlyMap<string, readonly string[]>, miner: string): string | null {
  for (const [v, ms] of assignment) if (ms.includes(miner)) return v;
  return null;
}

// Dataset helpers that hash with the same rule (§9.7).

/** `int(seed_hex[:8], 16)`: the seed handed to `interleave_datasets`. */
export function interleaveIntSeed(seedHex: string): number {
  return Number.parseInt(seedHex.slice(0, 8), 16);
}

/** `int((2**256 - 1) * fraction)` with the reference's float64 multiply. */
export function datasetSelectionThreshold(fraction: number): bigint {
  return BigInt(Math.trunc(2 ** 256 * fraction));
}

/** `_fractional_index_filter`: keep stream index `idx` iff its score is ≤ the threshold. */
export function keepDatasetIndex(idx: number, seedHex: string, fraction: number): boolean {
  return h256Int('dataset_selection', String(idx), seedHex) <= datasetSelectionThreshold(fraction);
}
