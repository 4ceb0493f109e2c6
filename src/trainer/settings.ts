// From config.yaml (MinerConfig, paths already absolute) to what the trainer needs. Pure: no file
// access, so a test can check every mapping and error without a run directory.
import { basename, join } from 'node:path';
import type { MinerConfig } from '../config/index.js';
import type { PipelineOptions } from './data/pipeline.js';
import type { SourceSpec } from './data/sources.js';
import type { TokenizerSpec } from './data/tokenizer.js';
import type { EngineCreateOptions } from './engine-port.js';
import { TrainerError } from './errors.js';

export interface TrainerSettings {
  runDir: string;
  ownDir: string;
  validatorDir: string;
  finalDir: string;
  /** Base model directory (config.json, *.safetensors, tokenizer.json) or null. */
  basePath: string | null;
  /** Expert-group task folder (config.yaml + expert_assignment.json). */
  taskPath: string;
  expertGroupName: string;
  resume: boolean;
  checkpointInterval: number;
  checkpointTopk: number;
  gradientAccumulation: number;
  /** local_par.world_size: one engine per process is all we run (more is reported, not used). */
  localWorldSize: number;
  partialTopk: number;
  numWorkerGroups: number;
  engine: Omit<EngineCreateOptions, 'config' | 'allowedExperts'>;
  /** Pipeline options without the model's vocab size (known once config.json is read). */
  data: Omit<PipelineOptions, 'vocabSize'>;
  heartbeatMs: number;
}

export function sourceSpecs(cfg: MinerConfig): SourceSpec[] {
  const seen = new Map<string, number>();
  const name = (base: string): string => {
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}#${n}`;
  };
  return cfg.data.sources.map((s): SourceSpec => {
    switch (s.type) {
      case 'synthetic':
        return { kind: 'synthetic-math', name: name(`synthetic-${s.seed}`), weight: s.weight, seed: s.seed };
      case 'text':
        return { kind: 'text', name: name(basename(s.path)), path: s.path, weight: s.weight };
      case 'jsonl':
        return { kind: 'jsonl', name: name(basename(s.path)), path: s.path, weight: s.weight, textColumn: s.text_column };
      case 'parquet':
        return { kind: 'parquet', name: name(basename(s.path)), path: s.path, weight: s.weight, textColumn: s.text_column };
    }
  });
}

export function tokenizerSpec(cfg: MinerConfig): TokenizerSpec {
  const tp = cfg.data.tokenizer_path;
  if (tp !== null) {
    // tokenizer_path names the tokenizer.json file (or its directory).
    return tp.endsWith('.json') ? { kind: 'hf', file: tp } : { kind: 'hf', dir: tp };
  }
  return { kind: 'auto', dir: cfg.model.base_path ?? undefined };
}

export function trainerSettings(cfg: MinerConfig, runDir: string, env: NodeJS.ProcessEnv = process.env): TrainerSettings {
  if (cfg.data.sources.length === 0) {
    throw new TrainerError(
      'CNM_ERR_TRAINER_CONFIG',
      `${join(runDir, 'config.yaml')}: data.sources is empty — the trainer has nothing to train on. Add a source, e.g.\n  data:\n    sources:\n      - { type: jsonl, path: /data/math.jsonl, text_column: text }`,
    );
  }
  const hb = Number(env.CONNITO_HEARTBEAT_MS);
  return {
    runDir,
    ownDir: cfg.ckpt.checkpoint_path,
    validatorDir: cfg.ckpt.validator_checkpoint_path,
    finalDir: cfg.ckpt.final_path,
    basePath: cfg.model.base_path,
    taskPath: cfg.task.path,
    expertGroupName: cfg.task.expert_group_name,
    resume: cfg.ckpt.resume_from_ckpt,
    checkpointInterval: cfg.ckpt.checkpoint_interval,
    checkpointTopk: cfg.ckpt.checkpoint_topk,
    gradientAccumulation: cfg.local_par.gradient_accumulation_steps,
    localWorldSize: cfg.local_par.world_size,
    partialTopk: cfg.moe.partial_topk,
    numWorkerGroups: cfg.moe.num_worker_groups,
    engine: {
      backend: cfg.trainer.backend,
      precision: cfg.trainer.precision,
      ...(cfg.trainer.threads > 0 ? { threads: cfg.trainer.threads } : {}),
      recompute: cfg.trainer.recompute,
      optimizer: {
        lr: cfg.opt.lr,
        betas: [cfg.opt.beta1, cfg.opt.beta2],
        eps: cfg.opt.eps,
        weightDecay: cfg.opt.weight_decay,
        maxGradNorm: cfg.opt.max_grad_norm,
      },
      schedule: { warmupSteps: cfg.sched.warmup_steps, totalSteps: cfg.sched.total_steps },
    },
    data: {
      sources: sourceSpecs(cfg),
      tokenizer: tokenizerSpec(cfg),
      sequenceLength: cfg.data.sequence_length,
      batchSize: cfg.data.per_device_train_batch_size,
      rank: cfg.data.rank,
      worldSize: cfg.data.world_size,
      seed: cfg.data.seed,
    },
    heartbeatMs: Number.isFinite(hb) && hb > 0 ? hb : cfg.trainer.heartbeat_interval_sec * 1000,
  };
}
