// The training loop of the trainer child (PROTOCOL.md §10.2 semantics, without the §13.2 bugs):
//   * gradient accumulation: an optimizer step after exactly GA micro-batches (a clean cadence, no
//     off-by-one and no wasted "start step" after a (re)load);
//   * a batch with no prediction target is skipped; a non-finite loss is logged and counted (the
//     engine adds no gradient for it; an update with non-finite gradients is skipped and reported,
//     GradScaler-style); three updates in a row without a finite loss trigger a weight check;
//   * a checkpoint every `checkpoint_interval` optimizer steps, atomically, then retention;
//   * after every optimizer step, a complete validator baseline newer than the one in training is
//     loaded in place (what is due is saved first; the engine is disposed and rebuilt; the data
//     stream continues; optimizer, schedule and the step counter restart with the new baseline);
//   * a stop request is honoured between micro-steps: the partial accumulation is abandoned, the
//     state as of the last optimizer step (weights, optimizer, data position) goes to DIR/final.
// The resume position always refers to the last optimizer-step boundary, so a resumed run sees
// exactly the batches an uninterrupted run would have seen.
import { isAllFinite } from '../checkpoint/tensor.js';
import type { Logger } from '../telemetry/logger.js';
import type { ChildMessage } from './ipc.js';
import type { Batch, DataState } from './data/pipeline.js';
import type { DataLoader } from './data/loader.js';
import type { EngineOptimizerState, TrainingEngine } from './engine-port.js';
import { TrainerError, describeError } from './errors.js';
import type { StopRequest } from './stop.js';
import type { CheckpointRef, SavedTrainerState } from './store.js';

/** Everything the loop does to the outside world, so its sequencing stays in one place. */
export interface LoopPorts {
  log: Logger;
  send(msg: ChildMessage): void;
  stop: StopRequest;
  setActivity(state: string): void;
  /** Saves a checkpoint ('checkpoint') or the final save ('final'); returns the directory. */
  save(kind: 'checkpoint' | 'final', content: SaveContent): Promise<string>;
  /** A complete baseline newer than `globalVer` and not in `exclude`, or null. */
  newerBaseline(globalVer: number, exclude: ReadonlySet<string>): Promise<CheckpointRef | null>;
  /** Builds a fresh engine holding `ref`'s weights (the old one is already disposed). */
  rebuild(ref: CheckpointRef): Promise<TrainingEngine>;
  /** Checks weights read from `ref` before the running engine is given up. Throws when unusable. */
  prepareBaseline(ref: CheckpointRef): Promise<void>;
}

export interface SaveContent {
  engine: TrainingEngine;
  state: SavedTrainerState;
}

export interface LoopSettings {
  gradientAccumulation: number;
  checkpointInterval: number;
  expertGroup: string;
  groupId: number;
  /** Tokens per optimizer step (GA × batch × seq), for the logs. */
  tokensPerStep: number;
}

export interface LoopStart {
  engine: TrainingEngine;
  data: DataLoader;
  globalVer: number;
  innerOpt: number;
  /** Data position as of the start (null = the beginning). */
  dataState: DataState | null;
  /** Where the weights came from, for `current_model_meta`. */
  source: string;
  baselinePath: string | null;
}

export interface LoopResult {
  /** DIR/final when a final save was written. */
  finalPath: string | null;
  innerOpt: number;
  globalVer: number;
  optimizerSteps: number;
  microSteps: number;
  reloads: number;
  lastLoss: number | null;
}

/** Non-finite updates in a row after which the weights themselves are checked. */
const NON_FINITE_CHECK_AFTER = 3;

export class TrainingLoop {
  private engine: TrainingEngine;
  private readonly data: DataLoader;
  private globalVer: number;
  private innerOpt: number;
  private source: string;
  private baselinePath: string | null;
  private boundaryState: DataState | null;
  private lastConsumedState: DataState | null;
  private lastSavedInnerOpt: number;
  private lastLoss: number | null = null;
  private microSteps = 0;
  private optimizerSteps = 0;
  private reloads = 0;
  private totalTokens = 0;
  private nonFiniteUpdates = 0;
  private readonly badBaselines = new Set<string>();

  constructor(private readonly s: LoopSettings, private readonly p: LoopPorts, start: LoopStart) {
    this.engine = start.engine;
    this.data = start.data;
    this.globalVer = start.globalVer;
    this.innerOpt = start.innerOpt;
    this.source = start.source;
    this.baselinePath = start.baselinePath;
    this.boundaryState = start.dataState;
    this.lastConsumedState = start.dataState;
    this.lastSavedInnerOpt = start.innerOpt;
  }

  private meta(): Record<string, unknown> {
    return { global_ver: this.globalVer, inner_opt: this.innerOpt, source: this.source };
  }

  private trainerState(loss: number | null, opt: EngineOptimizerState | null): SavedTrainerState {
    return {
      version: 1,
      globalVer: this.globalVer,
      innerOpt: this.innerOpt,
      groupId: this.s.groupId,
      loss,
      optimizer: opt ? { step: opt.step, scale: opt.scale, goodSteps: opt.goodSteps } : null,
      data: this.boundaryState,
      baseline: this.baselinePath,
      savedAt: new Date().toISOString(),
    };
  }

  private async save(kind: 'checkpoint' | 'final'): Promise<string> {
    this.p.setActivity(kind === 'final' ? 'final-save' : 'saving');
    const path = await this.p.save(kind, { engine: this.engine, state: this.trainerState(this.lastLoss, null) });
    if (kind === 'checkpoint') {
      this.lastSavedInnerOpt = this.innerOpt;
      this.p.log.info({ checkpoint_interval: this.s.checkpointInterval, inner_opt_step: this.innerOpt, global_ver: this.globalVer, path }, 'Checkpoint saved');
      this.p.send({ type: 'checkpoint', path, globalVer: this.globalVer, innerOpt: this.innerOpt });
      const st = this.data.stats();
      const skipped = Object.fromEntries(Object.entries(st.skipped).filter(([, n]) => n > 0));
      this.p.log.info({ rows_read: st.rowsRead, rows_used: st.rowsUsed, rows_skipped: skipped, sources: st.perSource }, 'data stats');
    }
    this.p.setActivity('training');
    return path;
  }

  async run(): Promise<LoopResult> {
    const { log, stop } = this.p;
    const GA = this.s.gradientAccumulation;
    let micro = 0;
    let lossSum = 0;
    let lossCount = 0;
    let nonFiniteLosses = 0;
    let stepStarted = performance.now();
    let stepTokens = 0;
    this.p.setActivity('training');

    while (!stop.requested) {
      let batch: Batch;
      try {
        batch = await this.data.next(stop.signal);
      } catch (e) {
        if ((e as Error).name === 'AbortError') break;
        throw e;
      }
      for (const ev of this.data.drainEvents()) {
        if (ev.type === 'epoch') log.info({ source: ev.source, epoch: ev.epoch, rows_used: ev.rowsUsed }, 'data source exhausted: next epoch');
        else log.warn({}, ev.message);
      }
      this.lastConsumedState = batch.state;
      if (batch.targets === 0) {
        log.warn({ inner_opt_step: this.innerOpt }, 'Skipping batch with no valid labels');
        continue;
      }
      const r = await this.engine.trainStep({ tokens: batch.tokens, labels: batch.labels, batch: batch.batch, seq: batch.seq });
      micro++;
      this.microSteps++;
      stepTokens += r.tokens;
      this.totalTokens += r.tokens;
      if (Number.isFinite(r.loss)) {
        lossSum += r.loss;
        lossCount++;
      } else {
        nonFiniteLosses++;
        log.warn({ inner_opt_step: this.innerOpt, micro_step: micro, loss: r.loss }, 'Non-finite loss detected, skipping batch');
      }
      log.debug({ inner_opt_step: this.innerOpt, micro_step: micro, loss: r.loss, tokens: r.tokens }, 'micro-batch loss');
      if (micro < GA) continue;

      // ---- optimizer step -----------------------------------------------------------------
      const loss = lossCount > 0 ? lossSum / lossCount : Number.NaN;
      log.info({ inner_opt_step: this.innerOpt, loss, micro_batches: micro }, 'batch loss');
      log.info(
        { current_model_meta: this.meta(), gradient_accumulation_steps: GA, inner_opt_step: this.innerOpt + 1, is_inner_optimizer_step: true, step: this.microSteps },
        '(1) Start epoch training',
      );
      const o = await this.engine.optimizerStep();
      this.innerOpt++;
      this.optimizerSteps++;
      log.info({ grad_norm: o.gradNorm, grad_sum: o.gradSum, scale_before: o.scaleBefore, scale_after: o.scaleAfter, skipped: o.skipped, lr: o.lr }, 'GradScaler for optimizer step');
      if (o.nonFinite.length > 0) {
        log.warn({ tensors: o.nonFinite.slice(0, 8), count: o.nonFinite.length, inner_opt_step: this.innerOpt }, 'Non-finite gradients detected; optimizer step skipped');
      }
      this.boundaryState = this.lastConsumedState;
      const elapsed = (performance.now() - stepStarted) / 1000;
      const tokensPerSec = elapsed > 0 ? stepTokens / elapsed : 0;
      this.lastLoss = Number.isFinite(loss) ? loss : this.lastLoss;
      // The IPC channel is JSON: a NaN loss would arrive as null and be rejected, so an update
      // without a finite loss reports no progress (the warnings above say why).
      if (Number.isFinite(loss)) {
        this.p.send({
          type: 'progress',
          step: this.microSteps,
          innerOptStep: this.innerOpt,
          loss,
          lr: Number.isFinite(o.lr) ? o.lr : 0,
          tokensPerSec,
          totalTokens: this.totalTokens,
          globalVer: this.globalVer,
          expertGroup: this.s.expertGroup,
        });
      }
      if (lossCount === 0 && nonFiniteLosses > 0) this.nonFiniteUpdates++;
      else this.nonFiniteUpdates = 0;
      micro = 0;
      lossSum = 0;
      lossCount = 0;
      nonFiniteLosses = 0;
      stepTokens = 0;
      if (this.nonFiniteUpdates >= NON_FINITE_CHECK_AFTER) await this.assertFiniteWeights();

      if (this.innerOpt % this.s.checkpointInterval === 0) {
        log.info({ inner_opt_step: this.innerOpt }, '(4) Saving checkpoint');
        await this.save('checkpoint');
      }
      // A reload during shutdown would only delay the final save.
      if (!stop.requested) await this.maybeReload();
      stepStarted = performance.now();
    }

    // ---- stop: the state as of the last optimizer step goes to DIR/final ------------------
    if (micro > 0) log.info({ abandoned_micro_batches: micro, inner_opt_step: this.innerOpt }, 'stop requested: abandoning the partial accumulation');
    const finalPath = await this.finalSave();
    return {
      finalPath,
      innerOpt: this.innerOpt,
      globalVer: this.globalVer,
      optimizerSteps: this.optimizerSteps,
      microSteps: this.microSteps,
      reloads: this.reloads,
      lastLoss: this.lastLoss,
    };
  }

  private async assertFiniteWeights(): Promise<void> {
    const weights = await this.engine.exportWeights({ trainableOnly: true, dtype: 'float32' });
    const bad = weights.filter((w) => !isAllFinite(w)).map((w) => w.name);
    if (bad.length > 0) {
      throw new TrainerError(
        'CNM_ERR_NON_FINITE',
        `trainable weights became non-finite (${bad.slice(0, 4).join(', ')}${bad.length > 4 ? ', …' : ''}) at inner step ${this.innerOpt}; restarting from the last good checkpoint (lower opt.lr if this repeats)`,
      );
    }
  }

  private async finalSave(): Promise<string> {
    this.p.log.info({ ...this.meta(), reason: this.p.stop.reason }, 'final save');
    const path = await this.save('final');
    this.p.log.info({ path, inner_opt_step: this.innerOpt, global_ver: this.globalVer }, 'final save complete');
    return path;
  }

  /** After an optimizer step: pick up a newer complete baseline, if there is one. */
  private async maybeReload(): Promise<void> {
    const { log } = this.p;
    const ref = await this.p.newerBaseline(this.globalVer, this.badBaselines);
    if (ref === null) return;
    log.info({ current_model_meta: this.meta(), baseline: { global_ver: ref.globalVer, path: ref.path } }, 'Should reload model');
    this.p.setActivity('reloading');
    try {
      await this.p.prepareBaseline(ref);
    } catch (e) {
      this.badBaselines.add(ref.path);
      log.error({ path: ref.path, error: describeError(e) }, 'baseline cannot be loaded; training continues on the current weights');
      this.p.setActivity('training');
      return;
    }
    if (this.innerOpt > this.lastSavedInnerOpt) {
      log.info({ inner_opt_step: this.innerOpt }, 'saving the steps trained since the last checkpoint before the reload');
      await this.save('checkpoint');
    }
    // Give the old engine's memory back before the new one allocates.
    this.engine.dispose();
    this.engine = await this.p.rebuild(ref);
    this.globalVer = ref.globalVer;
    this.innerOpt = 0;
    this.lastSavedInnerOpt = 0;
    this.source = 'baseline';
    this.baselinePath = ref.path;
    this.reloads++;
    log.info({ current_model_meta: this.meta(), reloads: this.reloads }, 'Updated model');
    this.p.setActivity('training');
  }

  /** The engine currently in use (it changes on reloads). */
  currentEngine(): TrainingEngine {
    return this.engine;
  }
}
