// Start-up and lifetime of the trainer (PROTOCOL.md §10.1, with decision 4 and the §13.2 fixes):
// resolve the architecture and the expert group, pick the weights to start from, build the engine,
// restore optimizer/scheduler/scaler/data position when resuming our own checkpoint, start the data
// pipeline, then hand over to the loop. Logs `(0) Setup training` … `setup_training: success!`.
import { join } from 'node:path';
import type { MinerConfig } from '../config/index.js';
import type { StateDict } from '../checkpoint/tensor.js';
import type { Logger } from '../telemetry/logger.js';
import { startDataLoader, type DataLoader, type LoaderOptions } from './data/loader.js';
import type { DataState } from './data/pipeline.js';
import type { EngineCreateOptions, EngineFactory, TrainingEngine } from './engine-port.js';
import { TrainerError, describeError } from './errors.js';
import { allowedExperts, countAllowed, groupExpertKeys, loadExpertGroup, type AllowedExperts } from './experts.js';
import type { ChildMessage } from './ipc.js';
import { TrainingLoop, type LoopResult } from './loop.js';
import { applyConnitoOverrides, readArch, type DeepseekV2Arch } from './model-config.js';
import { trainerSettings, type TrainerSettings } from './settings.js';
import type { StopRequest } from './stop.js';
import { compareRefs, type CheckpointRef, type SavedTrainerState } from './store.js';
import { RunDirectory, readBaseModel } from './run-dir.js';
import { overlay, toEngineEntries } from './weights.js';

export interface TrainerHooks {
  log: Logger;
  stop: StopRequest;
  send(msg: ChildMessage): void;
  setActivity(state: string): void;
  onReady(backend: string, detail: string): void;
}

export interface TrainerDeps {
  /** The engine factory (default: the native addon's createEngine). */
  createEngine?: EngineFactory;
  loader?: LoaderOptions;
}

async function defaultEngineFactory(): Promise<EngineFactory> {
  // Loaded lazily so that a config error is reported without touching the addon.
  const { createEngine } = await import('./engine.js');
  return (opts) => createEngine(opts);
}

interface Prepared {
  settings: TrainerSettings;
  arch: DeepseekV2Arch;
  engineArch: DeepseekV2Arch;
  groupId: number;
  allowed: AllowedExperts;
  runDir: RunDirectory;
  /** Backbone (and fallback expert) weights from model.base_path; read once, reused on reloads. */
  base: StateDict | null;
}

/** What a start point contributes. */
interface StartPoint {
  ref: CheckpointRef | null;
  weights: StateDict;
  state: SavedTrainerState | null;
}

export async function runTrainer(cfg: MinerConfig, runDirPath: string, hooks: TrainerHooks, deps: TrainerDeps = {}): Promise<LoopResult> {
  const { log } = hooks;
  log.info({}, '(0) Setup training');
  hooks.setActivity('setup');
  const p = await prepare(cfg, runDirPath, log);
  const factory = deps.createEngine ?? (await defaultEngineFactory());

  const start = await chooseStart(p, log);
  const resuming = start.ref !== null && start.ref.kind !== 'baseline' && start.state !== null;
  let dataState: DataState | null = null;
  if (resuming) {
    dataState = start.state!.data;
  } else {
    // New weights (a baseline or the base model), but the data stream continues where we were.
    const own = p.settings.resume ? await p.runDir.newestOwn() : null;
    if (own) dataState = (await p.runDir.readState(own))?.data ?? null;
  }
  // The data pipeline starts first: bad data fails before the engine is built, and the worker
  // tokenises ahead while the weights load.
  const data: DataLoader = await startDataLoader({ ...p.settings.data, vocabSize: p.arch.vocab_size }, dataState, deps.loader);
  for (const ev of data.drainEvents()) if (ev.type === 'restore') log.warn({}, ev.message);
  let engine: TrainingEngine;
  try {
    engine = await buildEngine(p, factory, start.weights, log);
  } catch (e) {
    await data.close();
    throw e;
  }
  try {
    let innerOpt = 0;
    let globalVer = start.ref?.globalVer ?? 0;
    if (resuming) {
      // Resuming our own checkpoint: optimizer moments, scheduler step and loss scale too.
      const opt = await p.runDir.readOptimizer(start.ref!, start.state!);
      if (opt) await engine.importOptimizerState(opt);
      innerOpt = start.state!.innerOpt;
      globalVer = start.state!.globalVer;
    }

    const info = engine.info();
    const s = p.settings;
    const tokensPerStep = s.gradientAccumulation * s.data.batchSize * s.data.sequenceLength;
    log.info(
      {
        backend: info.backend,
        backend_reason: info.reason,
        device: info.device,
        threads: info.threads,
        trainable_params: info.trainableParams,
        total_params: info.totalParams,
        memory_mb: Number((info.memoryBytes / 2 ** 20).toFixed(1)),
        tokens_per_step: tokensPerStep,
        gradient_accumulation_steps: s.gradientAccumulation,
        expert_group: s.expertGroupName,
        group_id: p.groupId,
        experts: countAllowed(p.allowed),
        tokenizer: data.tokenizer.source,
        current_model_meta: { global_ver: globalVer, inner_opt: innerOpt, source: start.ref?.kind ?? 'base', path: start.ref?.path ?? s.basePath },
      },
      'setup_training: success!',
    );
    hooks.onReady(info.backend, info.reason);

    let pendingWeights: StateDict | null = null;
    const loop = new TrainingLoop(
      { gradientAccumulation: s.gradientAccumulation, checkpointInterval: s.checkpointInterval, expertGroup: s.expertGroupName, groupId: p.groupId, tokensPerStep },
      {
        log,
        send: hooks.send,
        stop: hooks.stop,
        setActivity: hooks.setActivity,
        save: async (kind, content) => {
          const path = await p.runDir.save(kind, content.engine, content.state);
          if (kind === 'checkpoint') await p.runDir.retain();
          return path;
        },
        newerBaseline: async (g, exclude) => {
          const b = await p.runDir.newestBaseline(exclude);
          return b !== null && b.globalVer > g ? b : null;
        },
        prepareBaseline: async (ref) => {
          pendingWeights = await assemble(p, ref);
        },
        rebuild: async (ref) => {
          const w = pendingWeights ?? (await assemble(p, ref));
          pendingWeights = null;
          engine = await buildEngine(p, factory, w, log);
          return engine;
        },
      },
      {
        engine,
        data,
        globalVer,
        innerOpt,
        dataState,
        source: start.ref?.kind ?? 'base',
        baselinePath: start.ref?.kind === 'baseline' ? start.ref.path : (start.state?.baseline ?? null),
      },
    );
    try {
      return await loop.run();
    } finally {
      engine = loop.currentEngine();
    }
  } finally {
    await data.close();
    safeDispose(engine);
  }
}

function safeDispose(engine: TrainingEngine): void {
  try {
    engine.dispose();
  } catch {
    // Already disposed (a failed rebuild after the loop released it).
  }
}

async function prepare(cfg: MinerConfig, runDirPath: string, log: Logger): Promise<Prepared> {
  const settings = trainerSettings(cfg, runDirPath);
  if (settings.basePath === null) {
    throw new TrainerError(
      'CNM_ERR_MODEL_CONFIG',
      `${join(runDirPath, 'config.yaml')}: model.base_path is not set; the trainer needs the base model directory (its config.json gives the architecture)`,
    );
  }
  if (settings.localWorldSize > 1) {
    log.warn({ world_size: settings.localWorldSize }, 'local_par.world_size > 1 is not supported: one engine trains in this process (its backend uses every core or the GPU)');
  }
  const arch = readArch(join(settings.basePath, 'config.json'));
  const engineArch = applyConnitoOverrides(arch, { partialTopk: settings.partialTopk, sequenceLength: settings.data.sequenceLength, numWorkerGroups: settings.numWorkerGroups });
  const group = loadExpertGroup(settings.taskPath);
  const allowed = allowedExperts(group.assignment, arch, join(settings.taskPath, 'expert_assignment.json'));
  const runDir = new RunDirectory(settings, group.groupId, allowed, { hidden: arch.hidden_size, expertWidth: arch.moe_intermediate_size }, log);
  await runDir.cleanup();
  const base = await readBaseModel(settings.basePath, allowed, log);
  if (base === null) {
    log.warn(
      { base_path: settings.basePath },
      'NO BACKBONE WEIGHTS: model.base_path has no *.safetensors; attention, embeddings, routers and shared experts start from random values unless a checkpoint carries model_shared.pt — the trained experts will not fit the validators\' model',
    );
  }
  return { settings, arch, engineArch, groupId: group.groupId, allowed, runDir, base };
}

/** Base model, then the checkpoint's model_shared.pt and model_expgroup_<g>.pt on top. */
async function assemble(p: Prepared, ref: CheckpointRef | null): Promise<StateDict> {
  const sd: StateDict = new Map(p.base ?? []);
  if (ref) overlay(sd, await p.runDir.readModel(ref));
  return sd;
}

/**
 * The reference order (§7.5): the newest of the validator baselines (primary) and our own
 * checkpoints incl. DIR/final (secondary) by (global_ver, inner_opt); a tie goes to the baseline.
 * A candidate that cannot be read is skipped with an error in the log.
 */
async function chooseStart(p: Prepared, log: Logger): Promise<StartPoint> {
  const tried = new Set<string>();
  for (;;) {
    const baseline = await p.runDir.newestBaseline(tried);
    const own = p.settings.resume ? await p.runDir.newestOwn(tried) : null;
    let ref: CheckpointRef | null = null;
    if (baseline && own) ref = compareRefs(own, baseline) > 0 ? own : baseline;
    else ref = baseline ?? own;
    if (ref === null) {
      if (p.base === null) {
        log.warn({}, 'no baseline, no own checkpoint and no base model weights: training starts from random expert weights');
      }
      return { ref: null, weights: await assemble(p, null), state: null };
    }
    try {
      const state = ref.kind === 'baseline' ? null : await p.runDir.readState(ref);
      if (ref.kind !== 'baseline' && state === null) throw new TrainerError('CNM_ERR_TRAINER_STATE', `${ref.path} has no usable trainer_state.json`);
      const weights = await assemble(p, ref);
      log.info({ kind: ref.kind, path: ref.path, global_ver: ref.globalVer, inner_opt: ref.innerOpt }, 'starting from checkpoint');
      return { ref, weights, state };
    } catch (e) {
      log.error({ path: ref.path, error: describeError(e) }, 'checkpoint cannot be loaded; trying the next one');
      tried.add(ref.path);
    }
  }
}

async function buildEngine(p: Prepared, factory: EngineFactory, weights: StateDict, log: Logger): Promise<TrainingEngine> {
  const opts: EngineCreateOptions = { ...p.settings.engine, config: p.engineArch, allowedExperts: p.allowed };
  const engine = await factory(opts);
  try {
    const res = await engine.loadWeights(toEngineEntries(weights, 'initial weights'));
    const expertKeys = new Set(groupExpertKeys(p.allowed));
    const missingExperts = res.missing.filter((k) => expertKeys.has(k));
    if (res.missing.length > 0) {
      log.warn(
        { missing: res.missing.length, missing_experts: missingExperts.length, first: res.missing.slice(0, 5) },
        'weights missing from every source start from the engine\'s deterministic initialisation',
      );
    }
    if (res.ignored.length > 0) log.debug({ ignored: res.ignored.length, first: res.ignored.slice(0, 5) }, 'weights not used by the partial model');
    return engine;
  } catch (e) {
    engine.dispose();
    throw e;
  }
}
