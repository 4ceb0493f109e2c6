// The trainer's side of the run directory: which checkpoint to start from, what a checkpoint of
// ours contains, and reading it back. The file formats and the atomic directory machinery are
// src/checkpoint's; this module decides what goes in.
//
// A checkpoint written by the trainer (DIR/checkpoints/globalver_G_inneropt_K/ and DIR/final/):
//   model_expgroup_<g>.pt   {"model_state_dict": {...}} — exactly the group's expert keys, fp16,
//                            reference names (§7.2); the file workers hash, commit and submit
//   inner_optimizer.pt      the AdamW moments (fp32), one tensor per trainable tensor and moment
//   trainable_fp32.pt       the fp32 master copies of the expert tensors: the expert file is fp16
//                            (the wire format), and resuming from it would round every weight; with
//                            this file a resumed run continues bit-exactly. Not named model*.pt, so
//                            §7.4's `model*.pt` glob never merges it into the hashed model.
//   trainer_state.json      versions, step counters, scaler/scheduler, data position (below)
//   manifest                written last by src/checkpoint: the directory exists only with it
import type { DataState } from './data/pipeline.js';

export type CheckpointKind = 'baseline' | 'own' | 'final';

export interface CheckpointRef {
  kind: CheckpointKind;
  /** The checkpoint directory. */
  path: string;
  globalVer: number;
  innerOpt: number;
}

export interface SavedTrainerState {
  version: 1;
  globalVer: number;
  innerOpt: number;
  groupId: number;
  /** Mean loss of the last optimizer step (null before the first). */
  loss: number | null;
  /** Engine optimizer counters (scheduler step, loss scale, good steps); the moments are in inner_optimizer.pt. */
  optimizer: { step: number; scale: number; goodSteps: number } | null;
  /** Data position after the last batch of the last optimizer step. */
  data: DataState | null;
  /** The baseline directory the weights descend from (null: the base model). */
  baseline: string | null;
  savedAt: string;
}

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'inner_optimizer.pt';
export const MASTER_FILE = 'trainable_fp32.pt';

/** Validates a parsed trainer_state.json; returns null (with the reason) when it is unusable. */
export function parseTrainerState(raw: unknown): { ok: true; state: SavedTrainerState } | { ok: false; error: string } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, error: 'not a JSON object' };
  const r = raw as Record<string, unknown>;
  if (r.version !== 1) return { ok: false, error: `unknown version ${JSON.stringify(r.version)}` };
  const int = (k: string): boolean => Number.isSafeInteger(r[k]) && (r[k] as number) >= 0;
  for (const k of ['globalVer', 'innerOpt', 'groupId']) if (!int(k)) return { ok: false, error: `${k} is not a non-negative integer` };
  if (r.loss !== null && typeof r.loss !== 'number') return { ok: false, error: 'loss is not a number' };
  const o = r.optimizer as Record<string, unknown> | null;
  if (o !== null && (typeof o !== 'object' || !Number.isSafeInteger(o.step) || typeof o.scale !== 'number' || !Number.isSafeInteger(o.goodSteps))) {
    return { ok: false, error: 'optimizer counters are malformed' };
  }
  if (r.data !== null && (typeof r.data !== 'object' || (r.data as { version?: unknown }).version !== 1)) return { ok: false, error: 'data position is malformed' };
  if (r.baseline !== null && typeof r.baseline !== 'string') return { ok: false, error: 'baseline is not a string' };
  return { ok: true, state: r as unknown as SavedTrainerState };
}

/** Reference ordering (§7.5): larger (globalVer, innerOpt) is newer. */
export function compareRefs(a: Pick<CheckpointRef, 'globalVer' | 'innerOpt'>, b: Pick<CheckpointRef, 'globalVer' | 'innerOpt'>): number {
  return a.globalVer !== b.globalVer ? a.globalVer - b.globalVer : a.innerOpt - b.innerOpt;
}
