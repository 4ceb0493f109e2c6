// The trainer's reads and writes in the run directory, through src/checkpoint:
//   DIR/validator_checkpoint/uid_*_hotkey_*_globalver_G/   baselines (read)
//   DIR/checkpoints/globalver_G_inneropt_K/                 own checkpoints (written, read on resume)
//   DIR/final/globalver_G_inneropt_K/                       the final save (one kept)
// Every directory is written atomically with a manifest last (src/checkpoint/dir.ts); readers
// ignore anything incomplete. See store.ts for what a checkpoint of ours contains.
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  beginCheckpoint,
  cleanupCheckpointDir,
  expertFileName,
  listCheckpoints,
  ownCheckpointName,
  pruneCheckpoints,
  type CheckpointEntry,
} from '../checkpoint/dir.js';
import { readPt } from '../checkpoint/pt.js';
import { SafetensorsFile } from '../checkpoint/safetensors.js';
import { isAllFinite, type StateDict, type Tensor, type TensorStore } from '../checkpoint/tensor.js';
import type { Logger } from '../telemetry/logger.js';
import type { EngineOptimizerState, TrainingEngine, WeightDType } from './engine-port.js';
import { TrainerError } from './errors.js';
import { groupExpertKeys, type AllowedExperts } from './experts.js';
import type { TrainerSettings } from './settings.js';
import { MASTER_FILE, OPTIMIZER_FILE, TRAINER_STATE_FILE, parseTrainerState, type CheckpointKind, type CheckpointRef, type SavedTrainerState } from './store.js';
import { convertHfExperts, filterNeeded, isNeededKey } from './weights.js';

function refOf(e: CheckpointEntry, kind: CheckpointKind): CheckpointRef {
  return { kind, path: e.path, globalVer: e.globalVer, innerOpt: e.innerOpt };
}

export class RunDirectory {
  private readonly expertKeys: string[];

  constructor(
    private readonly s: Pick<TrainerSettings, 'ownDir' | 'validatorDir' | 'finalDir' | 'checkpointTopk'>,
    readonly groupId: number,
    private readonly allowed: AllowedExperts,
    /** hidden_size and moe_intermediate_size: the expert tensors' shapes (§9.4). */
    private readonly dims: { hidden: number; expertWidth: number },
    private readonly log: Logger,
  ) {
    this.expertKeys = groupExpertKeys(allowed);
  }

  /** gate_up_proj [2I, H], down_proj [H, I]. */
  expertShape(key: string): number[] {
    const { hidden: H, expertWidth: I } = this.dims;
    return key.endsWith('.gate_up_proj') ? [2 * I, H] : [H, I];
  }

  /** Start-up: temp leftovers of dead writers in the directories the trainer writes. */
  async cleanup(): Promise<void> {
    for (const d of [this.s.ownDir, this.s.finalDir]) {
      const removed = await cleanupCheckpointDir(d);
      if (removed.length > 0) this.log.info({ dir: d, removed }, 'removed leftovers of interrupted checkpoint writes');
    }
  }

  /** The newest complete checkpoint of the validator directory (not in `exclude`): a baseline. */
  async newestBaseline(exclude?: ReadonlySet<string>): Promise<CheckpointRef | null> {
    for (const e of await listCheckpoints(this.s.validatorDir)) {
      if (exclude?.has(e.path)) continue;
      return refOf(e, 'baseline');
    }
    return null;
  }

  /** The newest complete own checkpoint or final save (final wins a tie: it is the later save). */
  async newestOwn(exclude?: ReadonlySet<string>): Promise<CheckpointRef | null> {
    const fin = (await listCheckpoints(this.s.finalDir)).find((e) => e.kind === 'miner' && !exclude?.has(e.path));
    const own = (await listCheckpoints(this.s.ownDir)).find((e) => e.kind === 'miner' && !exclude?.has(e.path));
    if (fin && (!own || fin.globalVer > own.globalVer || (fin.globalVer === own.globalVer && fin.innerOpt >= own.innerOpt))) return refOf(fin, 'final');
    return own ? refOf(own, 'own') : null;
  }

  /**
   * The model files of a checkpoint (§7.4 with expert_groups = [g, "shared"]): model_shared.pt when
   * present, then model_expgroup_<g>.pt, keeping the keys the partial model holds. The expert file
   * must be there and hold finite tensors.
   */
  async readModel(ref: CheckpointRef): Promise<StateDict> {
    const out: StateDict = new Map();
    const shared = join(ref.path, expertFileName('shared'));
    if (await isFile(shared)) for (const [k, v] of filterNeeded(await readPt(shared), this.allowed)) out.set(k, v);
    const file = join(ref.path, expertFileName(this.groupId));
    if (!(await isFile(file))) throw new TrainerError('CNM_ERR_WEIGHTS', `${ref.path} has no ${expertFileName(this.groupId)} (expert group ${this.groupId})`);
    const experts = convertHfExperts(filterNeeded(await readPt(file), this.allowed), file);
    let found = 0;
    for (const [k, t] of experts) {
      if (!isAllFinite(t)) throw new TrainerError('CNM_ERR_WEIGHTS', `${file}: tensor ${k} holds NaN or infinite values`);
      if (this.expertKeys.includes(k)) found++;
      out.set(k, t);
    }
    if (found === 0) throw new TrainerError('CNM_ERR_WEIGHTS', `${file} holds none of this group's expert tensors`);
    if (found < this.expertKeys.length) this.log.warn({ file, found, expected: this.expertKeys.length }, 'expert file covers only part of the group; the rest keeps its previous weights');
    // Our own checkpoints carry the fp32 masters: resume from those, not from the fp16 rounding.
    const master = join(ref.path, MASTER_FILE);
    if (ref.kind !== 'baseline' && (await isFile(master))) {
      for (const [k, t] of await readPt(master)) {
        const fp16 = out.get(k);
        if (!fp16 || !this.expertKeys.includes(k)) continue;
        if (t.dtype !== 'float32' || t.shape.join() !== fp16.shape.join() || !isAllFinite(t)) {
          throw new TrainerError('CNM_ERR_WEIGHTS', `${master}: tensor ${k} is not a finite float32 [${fp16.shape}]`);
        }
        out.set(k, t);
      }
    }
    return out;
  }

  async readState(ref: CheckpointRef): Promise<SavedTrainerState | null> {
    let text: string;
    try {
      text = await readFile(join(ref.path, TRAINER_STATE_FILE), 'utf8');
    } catch {
      return null;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      this.log.warn({ path: ref.path }, `${TRAINER_STATE_FILE} is not JSON; ignored`);
      return null;
    }
    const r = parseTrainerState(raw);
    if (!r.ok) {
      this.log.warn({ path: ref.path, error: r.error }, `${TRAINER_STATE_FILE} is unusable; ignored`);
      return null;
    }
    if (r.state.groupId !== this.groupId) {
      this.log.warn({ path: ref.path, saved_group: r.state.groupId, group: this.groupId }, 'checkpoint belongs to another expert group; its trainer state is ignored');
      return null;
    }
    return r.state;
  }

  /** Optimizer moments + counters of an own checkpoint, or null when absent. */
  async readOptimizer(ref: CheckpointRef, state: SavedTrainerState): Promise<EngineOptimizerState | null> {
    if (state.optimizer === null) return null;
    const file = join(ref.path, OPTIMIZER_FILE);
    if (!(await isFile(file))) return null;
    const sd = await readPt(file);
    const tensors = [...sd].map(([name, t]) => {
      if (t.dtype !== 'float32' && t.dtype !== 'float16' && t.dtype !== 'bfloat16') throw new TrainerError('CNM_ERR_TRAINER_STATE', `${file}: ${name} has dtype ${t.dtype}`);
      return { name, dtype: t.dtype as WeightDType, shape: t.shape, data: t.data };
    });
    return { ...state.optimizer, tensors };
  }

  /**
   * Writes a checkpoint (or the final save) atomically: the expert file, the optimizer, the
   * trainer state, then the manifest. Refuses to write non-finite expert weights.
   */
  async save(kind: 'checkpoint' | 'final', engine: TrainingEngine, state: SavedTrainerState): Promise<string> {
    const parent = kind === 'final' ? this.s.finalDir : this.s.ownDir;
    // The weight files are streamed one tensor at a time from the engine (the exp_math group is
    // 3.4 GB in fp16): each tensor is exported, checked finite and written before the next one.
    const fromEngine = (dtype: 'float16' | 'float32'): TensorStore => ({
      keys: () => this.expertKeys,
      info: (key) => ({ dtype, shape: this.expertShape(key) }),
      load: async (key) => {
        const [w] = await engine.exportWeights({ names: [key], dtype });
        if (!w || w.name !== key) throw new TrainerError('CNM_ERR_WEIGHTS', `the engine did not export ${key}`);
        if (w.shape.join() !== this.expertShape(key).join()) throw new TrainerError('CNM_ERR_WEIGHTS', `the engine exported ${key} as [${w.shape}], expected [${this.expertShape(key)}]`);
        const t: Tensor = { dtype: w.dtype, shape: w.shape, data: w.data };
        if (!isAllFinite(t)) {
          throw new TrainerError('CNM_ERR_NON_FINITE', `expert weight ${key} is non-finite (${dtype}) at inner step ${state.innerOpt}; not saving it (restarting from the last good checkpoint)`);
        }
        return t;
      },
    });
    const opt = await engine.exportOptimizerState();
    const optSd: StateDict = new Map(opt.tensors.map((t) => [t.name, { dtype: t.dtype, shape: t.shape, data: t.data }]));
    const full: SavedTrainerState = { ...state, optimizer: { step: opt.step, scale: opt.scale, goodSteps: opt.goodSteps } };

    const pending = await beginCheckpoint(parent, ownCheckpointName(state.globalVer, state.innerOpt));
    try {
      await pending.writePt(expertFileName(this.groupId), fromEngine('float16'));
      await pending.writePt(MASTER_FILE, fromEngine('float32'));
      await pending.writePt(OPTIMIZER_FILE, optSd);
      await writeFile(pending.filePath(TRAINER_STATE_FILE), JSON.stringify(full, null, 1) + '\n');
      await pending.addFile(TRAINER_STATE_FILE);
      const entry = await pending.commit({
        expert_group: this.groupId,
        base_version: state.baseline === null ? null : state.globalVer,
        extra: { loss: state.loss, kind },
      });
      if (kind === 'final') await pruneCheckpoints(parent, 1);
      return entry.path;
    } catch (e) {
      await pending.abort().catch(() => undefined);
      throw e;
    }
  }

  /** Retention of own checkpoints (top-k newest, never a pinned one). */
  async retain(): Promise<void> {
    const deleted = await pruneCheckpoints(this.s.ownDir, this.s.checkpointTopk);
    if (deleted.length > 0) this.log.debug({ deleted }, 'old checkpoints removed');
  }
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * Backbone (and fallback expert) weights of the base model directory: every `*.safetensors` file,
 * only the keys the partial model needs, HF expert layout converted. Null when there is none.
 */
export async function readBaseModel(dir: string, allowed: AllowedExperts, log: Logger): Promise<StateDict | null> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort();
  } catch {
    return null;
  }
  if (files.length === 0) return null;
  const sd: StateDict = new Map();
  for (const f of files) {
    // One tensor at a time, and only what the partial model holds: the full model is far larger.
    const file = await SafetensorsFile.open(join(dir, f));
    try {
      for (const k of file.keys()) if (isNeededKey(k, allowed)) sd.set(k, await file.load(k));
    } finally {
      await file.close();
    }
  }
  // An expert's gate and up matrices may sit in different shards: convert after reading them all.
  const out = convertHfExperts(sd, dir);
  log.info({ dir, files: files.length, tensors: out.size }, 'base model weights read');
  return out;
}
