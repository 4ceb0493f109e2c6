// The subnet as the chain shows it (PROTOCOL.md §2.3, §2.4, §3): the "chain checkpoints" joined
// from the two commit-phase snapshots, the validator ↔ miner assignment at the head, and the
// destination of a miner's submission. Pure functions over snapshots first (testable without a
// chain), then the reads that feed them. The devnet validator uses the same code, so both sides of
// a submission agree by construction — and both follow the reference rules.
//
// Deliberate differences from cbf3c65 (§13.2): a committed hotkey missing from the metagraph is
// skipped instead of failing the whole read (#2); validator checkpoints are filtered by expert
// group before the majority hash is taken (#16); with no owner whitelist, validator permits stand
// in for it (the reference would parse every validator as a miner and find nobody to submit to).
import type { ChainClient } from '../chain/client.js';
import { decodeCommitment } from '../chain/commitments.js';
import type { CommitmentRecord, Metagraph, Neuron } from '../chain/types.js';
import { assignMinersToValidators, type ValidatorSeed } from '../protocol/assignment.js';
import {
  commitRole,
  decodeMinerCommit,
  decodeSignatureCommit,
  decodeValidatorCommit,
  type MinerCommit,
  type ValidatorCommit,
} from '../protocol/commits.js';
import {
  allowedVersionRangeAt,
  phaseAt,
  previousPhaseRanges,
  type PhaseName,
  type PhaseSchedule,
  type VersionRange,
} from '../protocol/phases.js';
import type { Logger } from '../telemetry/logger.js';

export type CommitRoleName = 'validator' | 'miner';

/** `ChainCheckpoint` of the reference: one hotkey's two commits joined with its neuron. */
export interface ChainCheckpoint {
  hotkey: string;
  uid: number;
  /** `m` of the commitment at b1 (the first block after the first commit phase). */
  signedModelHash: string | null;
  modelHash: string | null;
  globalVer: number | null;
  expertGroup: number | null;
  minerSeed: number | null;
  innerOpt: number | null;
  /** `b` of the commitment at b2. */
  block: number | null;
  /** How the commitment at b2 was parsed (role gating). */
  parsedAs: CommitRoleName;
  stake: bigint;
  ip: string;
  port: number;
}

export interface RoleGate {
  /** Hotkeys treated as validators when their weights are fresh. */
  validators: ReadonlySet<string>;
  /** config `cycle.cycle_length` (448): the weight-freshness window. */
  freshnessBlocks: number;
}

/** The owner's whitelist, or — when it is unknown — the neurons holding a validator permit. */
export function validatorSet(whitelist: readonly string[] | null, mg: Metagraph): Set<string> {
  if (whitelist !== null) return new Set(whitelist);
  return new Set(mg.neurons.filter((n) => n.validatorPermit && n.hotkey !== '').map((n) => n.hotkey));
}

export type GatedCommit =
  | { hotkey: string; neuron: Neuron; kind: 'validator'; commit: ValidatorCommit }
  | { hotkey: string; neuron: Neuron; kind: 'miner'; commit: MinerCommit }
  | { hotkey: string; neuron: Neuron; kind: 'unreadable'; reason: string };

function neuronsByHotkey(mg: Metagraph): Map<string, Neuron> {
  const m = new Map<string, Neuron>();
  for (const n of mg.neurons) if (n.hotkey !== '') m.set(n.hotkey, n);
  return m;
}

/**
 * `get_chain_commits` (role-gated): every commitment in enumeration order, parsed as a validator's
 * payload when the hotkey is a validator with fresh weights at `queriedBlock`, else as a miner's.
 * Hotkeys that left the metagraph are dropped.
 */
export function gateCommitments(records: readonly CommitmentRecord[], mg: Metagraph, queriedBlock: number, gate: RoleGate): GatedCommit[] {
  const byHotkey = neuronsByHotkey(mg);
  const out: GatedCommit[] = [];
  for (const r of records) {
    const neuron = byHotkey.get(r.hotkey);
    if (neuron === undefined) continue;
    const role = commitRole({
      hotkey: r.hotkey,
      whitelist: gate.validators,
      lastUpdate: neuron.lastUpdate,
      currentBlock: queriedBlock,
      freshnessBlocks: gate.freshnessBlocks,
    });
    if (role === 'validator') {
      const d = decodeCommitment(r, decodeValidatorCommit);
      out.push(d.ok ? { hotkey: r.hotkey, neuron, kind: 'validator', commit: d.payload } : { hotkey: r.hotkey, neuron, kind: 'unreadable', reason: d.reason });
    } else {
      const d = decodeCommitment(r, (s) => decodeMinerCommit(s));
      out.push(d.ok ? { hotkey: r.hotkey, neuron, kind: 'miner', commit: d.payload } : { hotkey: r.hotkey, neuron, kind: 'unreadable', reason: d.reason });
    }
  }
  return out;
}

/**
 * `build_chain_checkpoints` step 5: join the signature snapshot (every payload read as `{m}`; only
 * non-empty `m` values count) with the role-gated snapshot, in the order of the latter.
 */
export function joinChainCheckpoints(signed: readonly CommitmentRecord[], gated: readonly GatedCommit[]): ChainCheckpoint[] {
  const sigs = new Map<string, string>();
  for (const r of signed) {
    const d = decodeCommitment(r, decodeSignatureCommit);
    if (d.ok && typeof d.payload.m === 'string' && d.payload.m !== '') sigs.set(r.hotkey, d.payload.m);
  }
  const out: ChainCheckpoint[] = [];
  for (const g of gated) {
    if (g.kind === 'unreadable') continue;
    const c = g.commit;
    out.push({
      hotkey: g.hotkey,
      uid: g.neuron.uid,
      signedModelHash: sigs.get(g.hotkey) ?? null,
      modelHash: c.h,
      globalVer: c.v,
      expertGroup: c.e,
      minerSeed: g.kind === 'validator' ? g.commit.s : null,
      innerOpt: g.kind === 'miner' ? g.commit.i : null,
      block: c.b,
      parsedAs: g.kind,
      stake: g.neuron.stake,
      ip: g.neuron.axon.ip,
      port: g.neuron.axon.port,
    });
  }
  return out;
}

/**
 * `build_chain_checkpoints` step 6: complete checkpoints only (the validator role also needs a
 * miner seed), then the version window. An un-served axon (`0.0.0.0`) is not missing.
 */
export function filterChainCheckpoints(cps: readonly ChainCheckpoint[], role: CommitRoleName, range: VersionRange | null): ChainCheckpoint[] {
  return cps.filter((c) => {
    if (c.signedModelHash === null || c.modelHash === null || c.globalVer === null || c.expertGroup === null) return false;
    if (role === 'validator' && c.minerSeed === null) return false;
    if (range !== null && (c.globalVer > range.max || c.globalVer < range.min)) return false;
    return true;
  });
}

/** Stake-weighted majority hash; ties go to the first hash reaching the maximum in input order. */
export function majorityHash(cps: readonly ChainCheckpoint[]): string | null {
  const sums = new Map<string, bigint>();
  for (const c of cps) if (c.modelHash !== null) sums.set(c.modelHash, (sums.get(c.modelHash) ?? 0n) + c.stake);
  let best: string | null = null;
  let bestStake = -1n;
  for (const [h, s] of sums) {
    if (s > bestStake) {
      best = h;
      bestStake = s;
    }
  }
  return best;
}

/** Validator seeds of `group` at the head, in commit order (§3.1 step 2). */
export function validatorSeedsOf(gated: readonly GatedCommit[], group: number): Array<[string, ValidatorSeed]> {
  const out: Array<[string, ValidatorSeed]> = [];
  for (const g of gated) if (g.kind === 'validator' && g.commit.e === group) out.push([g.hotkey, g.commit.s]);
  return out;
}

/** Miners whose head commitment is a miner payload of `group` (§3.1 step 3). */
export function minersOf(gated: readonly GatedCommit[], group: number): string[] {
  return gated.filter((g) => g.kind === 'miner' && g.commit.e === group).map((g) => g.hotkey);
}

// ---------------------------------------------------------------------------------------------
// Reads.

export interface SubnetReadOptions {
  schedule: PhaseSchedule;
  /** The head block the read is for (the snapshots and the version window derive from it). */
  head: number;
  whitelist: readonly string[] | null;
  freshnessBlocks: number;
  versionRangeCycles: number;
  logger?: Logger;
}

export interface ChainCheckpointRead {
  checkpoints: ChainCheckpoint[];
  /** Every joined checkpoint before filtering (diagnostics). */
  all: ChainCheckpoint[];
  b1: number;
  b2: number;
  range: VersionRange;
  metagraph: Metagraph;
}

const COMMIT_PHASES: Record<CommitRoleName, [PhaseName, PhaseName]> = {
  miner: ['MinerCommit1', 'MinerCommit2'],
  validator: ['ValidatorCommit1', 'ValidatorCommit2'],
};

/** The two snapshot blocks of a role at `head`: the first block after each commit phase. */
export function snapshotBlocks(s: PhaseSchedule, head: number, role: CommitRoleName): { b1: number; b2: number; inCommitPhase: boolean } {
  const [p1, p2] = COMMIT_PHASES[role];
  const prev = previousPhaseRanges(s, head);
  const current = phaseAt(s, head).phase_name;
  return { b1: prev[p1][1] + 1, b2: prev[p2][1] + 1, inCommitPhase: current === p1 || current === p2 };
}

/**
 * `build_chain_checkpoints_from_previous_phase(role)`: the checkpoints committed in the last
 * completed pair of commit phases, complete and inside the version window. Must not be called while
 * those commit phases run (the reference blocks until they end; callers here never ask then).
 */
export async function readChainCheckpoints(chain: ChainClient, role: CommitRoleName, o: SubnetReadOptions): Promise<ChainCheckpointRead> {
  const { b1, b2, inCommitPhase } = snapshotBlocks(o.schedule, o.head, role);
  if (inCommitPhase) throw new Error(`the ${role} commit phases are still running at block ${o.head}: their snapshots are not final yet`);
  const range = allowedVersionRangeAt(o.schedule, o.head, o.versionRangeCycles);
  const metagraph = await chain.metagraph({ block: o.head });
  if (b1 < 1 || b2 > o.head) return { checkpoints: [], all: [], b1, b2, range, metagraph };
  const [signed, hashed] = await Promise.all([chain.allCommitments({ block: b1 }), chain.allCommitments({ block: b2 })]);
  const gate: RoleGate = { validators: validatorSet(o.whitelist, metagraph), freshnessBlocks: o.freshnessBlocks };
  const gated = gateCommitments(hashed.commitments, metagraph, b2, gate);
  for (const g of gated) {
    if (g.kind === 'unreadable') o.logger?.debug({ hotkey: g.hotkey, block: b2, reason: g.reason }, 'skipping unreadable chain commitment');
  }
  const all = joinChainCheckpoints(signed.commitments, gated);
  return { checkpoints: filterChainCheckpoints(all, role, range), all, b1, b2, range, metagraph };
}

export interface AssignmentRead {
  assignment: Map<string, string[]>;
  validatorSeeds: Array<[string, ValidatorSeed]>;
  /** Miners of the group at the head, before the chain-checkpoint filter. */
  candidates: string[];
  /** Miners that entered the assignment. */
  miners: string[];
  metagraph: Metagraph;
  minerCheckpoints: ChainCheckpoint[];
}

/** `get_validator_miner_assignment` (§3.1) at `head` for expert group `group`. */
export async function readAssignment(chain: ChainClient, group: number, maxMinersPerValidator: number | null, o: SubnetReadOptions): Promise<AssignmentRead> {
  const head = await chain.allCommitments({ block: o.head });
  const cps = await readChainCheckpoints(chain, 'miner', o);
  const gate: RoleGate = { validators: validatorSet(o.whitelist, cps.metagraph), freshnessBlocks: o.freshnessBlocks };
  const gated = gateCommitments(head.commitments, cps.metagraph, o.head, gate);
  const seeds = validatorSeedsOf(gated, group);
  const candidates = minersOf(gated, group);
  const withCheckpoint = new Set(cps.checkpoints.map((c) => c.hotkey));
  const miners = candidates.filter((m) => withCheckpoint.has(m));
  return {
    assignment: assignMinersToValidators(seeds, miners, maxMinersPerValidator),
    validatorSeeds: seeds,
    candidates,
    miners,
    metagraph: cps.metagraph,
    minerCheckpoints: cps.checkpoints,
  };
}
