// The devnet's model: a tiny DeepSeek-V2-shaped base model (src/trainer/tiny-model.ts) written as a
// base-model directory every miner loads (`model.base_path`), one expert-group folder, and the
// validator side of it: the group's expert tensors exactly as the trainer reads them (so a baseline
// cut from them hashes the same everywhere), and an evaluator that measures a held-out loss with
// the native engine.
import { join } from 'node:path';
import { tensorFromValues, toFloat64Array, type StateDict, type Tensor } from '../checkpoint/tensor.js';
import type { ExpertAssignment } from '../protocol/experts.js';
import type { Logger } from '../telemetry/logger.js';
import { BatchProducer, type Batch } from '../trainer/data/pipeline.js';
import { createEngine, type Engine } from '../trainer/engine.js';
import { allowedExperts, groupExpertKeys, type AllowedExperts } from '../trainer/experts.js';
import { applyConnitoOverrides, type DeepseekV2Arch } from '../trainer/model-config.js';
import { readBaseModel } from '../trainer/run-dir.js';
import { tinyAssignment, writeExpertGroupFolder, writeTinyModel } from '../trainer/tiny-model.js';
import { toEngineEntries } from '../trainer/weights.js';

/**
 * Sizes: small enough that a CPU trains it at tens of steps per second, large enough that the loss
 * visibly drops within one devnet cycle. initializer_range 0.1: with only the experts trainable, the
 * frozen lm_head's scale bounds how far the logits can move (at 0.02 the loss barely drops).
 */
export const DEVNET_MODEL = { hidden: 32, layers: 3, experts: 8, expertWidth: 16, vocab: 320, heads: 2, initializerRange: 0.1, seed: 7 } as const;
export const DEVNET_GROUP_NAME = 'exp_tiny';
export const DEVNET_GROUP_ID = 0;
/** Data shape shared by the miners' trainers and the validators' evaluation. */
export const DEVNET_DATA = { sequenceLength: 64, batchSize: 4 } as const;

export interface DevnetModel {
  /** The base model directory (config.json + model.safetensors). */
  dir: string;
  /** The expert-group folder (config.yaml + expert_assignment.json). */
  groupDir: string;
  groupsRoot: string;
  arch: DeepseekV2Arch;
  groupId: number;
  assignment: ExpertAssignment;
  allowed: AllowedExperts;
  /** Backbone + the group's experts, as the trainer assembles them from the base model. */
  base: StateDict;
  /** `model_expgroup_<g>.pt` content of the base model: the first global model. */
  groupExperts: StateDict;
}

export async function prepareDevnetModel(root: string, log: Logger): Promise<DevnetModel> {
  const dir = join(root, 'model');
  const { arch } = await writeTinyModel(dir, { ...DEVNET_MODEL });
  const assignment = tinyAssignment(arch, DEVNET_GROUP_ID);
  const groupsRoot = join(root, 'expert_groups');
  const groupDir = join(groupsRoot, DEVNET_GROUP_NAME);
  await writeExpertGroupFolder(groupDir, DEVNET_GROUP_ID, assignment);
  const allowed = allowedExperts(assignment, arch, join(groupDir, 'expert_assignment.json'));
  const base = await readBaseModel(dir, allowed, log);
  if (base === null) throw new Error(`${dir} holds no weights`);
  const groupExperts: StateDict = new Map();
  for (const k of groupExpertKeys(allowed)) {
    const t = base.get(k);
    if (!t) throw new Error(`the tiny base model lacks ${k}`);
    groupExperts.set(k, t);
  }
  return { dir, groupDir, groupsRoot, arch, groupId: DEVNET_GROUP_ID, assignment, allowed, base, groupExperts };
}

/**
 * Held-out loss of an expert set inside the devnet model: the validators' "evaluation". One engine
 * holds the backbone; each evaluation overlays the experts and runs forward passes only.
 */
export class Evaluator {
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly engine: Engine,
    private readonly batches: Batch[],
  ) {}

  static async create(model: DevnetModel, o: { seed?: number; batches?: number } = {}): Promise<Evaluator> {
    const producer = await BatchProducer.open({
      sources: [{ kind: 'synthetic-math', name: 'devnet-eval', weight: 1, seed: o.seed ?? 1000 }],
      tokenizer: { kind: 'auto', dir: model.dir },
      sequenceLength: DEVNET_DATA.sequenceLength,
      batchSize: DEVNET_DATA.batchSize,
      rank: 0,
      worldSize: 1,
      seed: 0,
      vocabSize: model.arch.vocab_size,
    });
    const batches: Batch[] = [];
    try {
      for (let i = 0; i < (o.batches ?? 8); i++) batches.push(await producer.next());
    } finally {
      producer.close();
    }
    const engine = await createEngine({
      config: applyConnitoOverrides(model.arch, { partialTopk: 1, sequenceLength: DEVNET_DATA.sequenceLength, numWorkerGroups: 2 }) as never,
      allowedExperts: model.allowed,
      backend: 'cpu',
      precision: 'fp32',
      threads: 1,
      optimizer: { lr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0, maxGradNorm: 1 },
      schedule: { warmupSteps: 0, totalSteps: 1 },
    });
    await engine.loadWeights(toEngineEntries(model.base, 'devnet base model'));
    return new Evaluator(engine, batches);
  }

  /** Mean cross entropy per scored token of the held-out batches with `experts` loaded. */
  evaluate(experts: StateDict): Promise<number> {
    const run = this.tail.then(async () => {
      await this.engine.loadWeights(toEngineEntries(experts, 'evaluated experts'));
      let sum = 0;
      let n = 0;
      for (const b of this.batches) {
        const r = await this.engine.evalLoss({ tokens: b.tokens, labels: b.labels, batch: b.batch, seq: b.seq });
        if (Number.isFinite(r.loss) && r.tokens > 0) {
          sum += r.loss * r.tokens;
          n += r.tokens;
        }
      }
      return n > 0 ? sum / n : Number.NaN;
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  dispose(): void {
    this.engine.dispose();
  }
}

/** Element-wise mean of expert sets in float64, stored in `like`'s dtype (the devnet's Merge). */
export function averageExperts(sets: readonly StateDict[], like: StateDict): StateDict {
  const out: StateDict = new Map();
  for (const [key, ref] of like) {
    const present = sets.map((s) => s.get(key)).filter((t): t is Tensor => t !== undefined && t.shape.join() === ref.shape.join());
    if (present.length === 0) {
      out.set(key, ref);
      continue;
    }
    const acc = new Float64Array(ref.shape.reduce((a, b) => a * b, 1));
    for (const t of present) {
      const v = toFloat64Array(t);
      for (let i = 0; i < acc.length; i++) acc[i]! += v[i]!;
    }
    for (let i = 0; i < acc.length; i++) acc[i]! /= present.length;
    out.set(key, tensorFromValues(ref.dtype, ref.shape, acc));
  }
  return out;
}
