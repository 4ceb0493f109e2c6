// Typed wrapper of the native training engine (native/, loaded by ./native.ts).
//
// The engine holds a DeepSeek-V2 partial-MoE model (PROTOCOL §9): every backbone tensor plus the
// routed experts this miner trains (`allowedExperts`), under the reference state-dict names of
// §9.4. Only those routed experts are trainable (fp32 master weights, AdamW); everything else is
// frozen and bit-identical to what was loaded. All long calls are asynchronous and run on a native
// worker thread; this wrapper also chains them, so calls run in the order they were made.
//
// Semantics (one place, for the trainer loop):
// - Tokens and labels: Int32Array [batch·seq] row-major. Labels are HF-style and *unshifted*
//   (labels = input_ids with -100 on padding): position t is scored against labels[t+1], as the
//   transformers causal-LM loss does; labels[0] of each row is never used. `loss` is the mean
//   cross entropy over the scored positions (labels ≠ -100), `tokens` their count. No attention
//   mask is applied: padding must be on the right (causal attention keeps real tokens from ever
//   seeing later pads).
// - Gradient accumulation: trainStep adds the gradient of its mean loss; optimizerStep divides the
//   sum by GA = the number of trainStep calls since the previous optimizerStep (or
//   `accumulationSteps` when given). Calling trainStep GA times then optimizerStep therefore equals
//   PyTorch's `(loss / GA).backward()` × GA then `optimizer.step()` (§10.2). A trainStep whose batch
//   has no scored position returns `{ loss: NaN, tokens: 0 }`, adds nothing and still counts; one
//   whose loss is not finite adds nothing and counts too (the reference skips its backward).
// - optimizerStep: unscale (÷ loss scale ÷ GA) → if any gradient is non-finite: skip the update,
//   `skipped: true`, `nonFinite` names the tensors, the loss scale halves under fp16-mixed →
//   otherwise global grad norm over all trainable tensors (`gradNorm`, before clipping), clip with
//   coef maxGradNorm/(norm+1e-6) when < 1 → AdamW exactly as torch.optim.AdamW (decoupled decay,
//   bias correction) with `lr` = lr·multiplier(k), k = completed updates, multiplier =
//   transformers' cosine-with-warmup (vectors/lr_schedule.json) → after 2000 consecutive good
//   updates the fp16 loss scale doubles (GradScaler: init 2^16, ×2/2000, ×0.5 on overflow).
//   `step` = completed updates after this call; a skipped call leaves it and the schedule alone.
//   With no trainStep since the last update the call does nothing and reports skipped.
//   Deviation from the reference: it drops non-finite gradient tensors one by one and updates the
//   rest (which also keeps its GradScaler from ever backing off); the engine skips the whole step.
// - Precision: the CPU backend computes everything in fp32 whatever `precision` says; precision
//   only switches the loss scaler on (fp16-mixed) or off (fp32, bf16-mixed: scale 1, reported).
// - Weights: loadWeights accepts float32/float16/bfloat16 per tensor; the shape must match the
//   model exactly; non-finite values are refused; names the model does not hold (other experts'
//   keys, rotary buffers) are returned in `ignored`; `missing` lists the tensors that no load has
//   provided yet (they keep their seeded init: normal(0, initializer_range), norms = 1). A failed
//   call changes nothing. exportWeights converts with round-to-nearest-even (torch `.to()`).
// - Errors reject with EngineError: `code` is one of EngineErrorCode and the message names the
//   tensor or argument, the expected and the given value. After a rejected call for bad input the
//   engine is unchanged and usable. After dispose() every call throws CNM_ERR_ENGINE_DISPOSED.
import { EngineError, isEngineErrorCode } from './errors.js';
import { loadNativeAddon, type NativeAddon, type NativeEngine } from './native.js';

export { EngineError, type EngineErrorCode } from './errors.js';

/** The fields of an HF DeepSeek-V2 config.json the engine reads (others are ignored). */
export interface DeepseekV2Config {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  q_lora_rank?: number | null;
  kv_lora_rank: number;
  qk_nope_head_dim: number;
  qk_rope_head_dim: number;
  v_head_dim: number;
  intermediate_size?: number;
  moe_intermediate_size?: number;
  n_routed_experts?: number | null;
  n_shared_experts?: number | null;
  /** top-k; Connito's partial miner model uses 1 (§9.2). */
  num_experts_per_tok?: number;
  first_k_dense_replace?: number;
  moe_layer_freq?: number;
  routed_scaling_factor?: number;
  rms_norm_eps?: number;
  max_position_embeddings: number;
  rope_theta?: number;
  /**
   * null / {type: 'default'} = plain RoPE. {type: 'yarn', factor, original_max_position_embeddings,
   * beta_fast, beta_slow, mscale, mscale_all_dim, attention_factor?}: transformers' YaRN; the
   * attention factor (mscale/mscale_all_dim ratio) multiplies cos and sin; the softmax scale is
   * (qk_nope_head_dim + qk_rope_head_dim)^-0.5. transformers 5 `rope_parameters` is accepted too.
   */
  rope_scaling?: Record<string, unknown> | null;
  rope_parameters?: Record<string, unknown> | null;
  initializer_range?: number;
  hidden_act?: 'silu';
  scoring_func?: 'softmax';
  topk_method?: 'greedy';
  tie_word_embeddings?: false;
  attention_bias?: false;
  [extra: string]: unknown;
}

export type EngineBackend = 'auto' | 'cpu' | 'cuda';
export type EnginePrecision = 'fp32' | 'fp16-mixed' | 'bf16-mixed';
export type EngineDtype = 'float32' | 'float16' | 'bfloat16';

export interface EngineOptions {
  config: DeepseekV2Config;
  /** layer → org expert ids this miner trains and holds (every MoE layer needs ≥ top-k of them). */
  allowedExperts: Record<number, number[]>;
  /** 'auto' → cuda when available, else cpu; info() says which and why. */
  backend: EngineBackend;
  precision: EnginePrecision;
  /** OpenMP threads (default: all cores). */
  threads?: number;
  /** Keep only each layer's input and recompute its internals in backward (less memory, ~+1/3 time). */
  recompute?: boolean;
  optimizer: { lr: number; betas: [number, number]; eps: number; weightDecay: number; maxGradNorm: number };
  schedule: { warmupSteps: number; totalSteps: number };
  /** Seed of the initial weights of tensors no load provides (default 0). */
  seed?: number;
}

/** A tensor crossing the boundary: raw little-endian C-contiguous bytes. */
export interface EngineTensor {
  name: string;
  dtype: EngineDtype;
  shape: number[];
  data: Uint8Array;
}

export interface Batch {
  tokens: Int32Array;
  labels: Int32Array;
  batch: number;
  seq: number;
}

export interface LoadResult {
  loaded: number;
  missing: string[];
  ignored: string[];
}

export interface LossResult {
  loss: number;
  tokens: number;
}

export interface OptimizerStepResult {
  step: number;
  gradNorm: number;
  /** Σ of all unscaled trainable gradient elements (before clipping). */
  gradSum: number;
  skipped: boolean;
  /** The learning rate this update used (or would have used, when skipped). */
  lr: number;
  scaleBefore: number;
  scaleAfter: number;
  nonFinite: string[];
  /** Σ of all trainable parameters after the update (the reference's `param_sum` metric); 0 when skipped. */
  paramSum: number;
}

export interface OptimizerState {
  step: number;
  scale: number;
  goodSteps: number;
  /** `<tensor>.exp_avg` and `<tensor>.exp_avg_sq`, float32, for every trainable tensor. */
  tensors: EngineTensor[];
}

export interface EngineInfo {
  backend: 'cpu' | 'cuda';
  reason: string;
  device: string;
  threads: number;
  trainableParams: number;
  totalParams: number;
  memoryBytes: number;
  gemmKernel: string;
  precision: EnginePrecision;
}

export interface ExportFilter {
  names?: string[];
  trainableOnly?: boolean;
  dtype?: EngineDtype;
}

function toEngineError(e: unknown): Error {
  if (e instanceof EngineError) return e;
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    if (isEngineErrorCode(code)) return new EngineError(code, e.message, { cause: e });
    return new EngineError('CNM_ERR_ENGINE_INTERNAL', e.message, { cause: e });
  }
  return new EngineError('CNM_ERR_ENGINE_INTERNAL', String(e));
}

export class Engine {
  #native: NativeEngine | null;
  #tail: Promise<unknown> = Promise.resolve();

  /** Use createEngine(). */
  constructor(native: NativeEngine) {
    this.#native = native;
  }

  #live(method: string): NativeEngine {
    if (!this.#native) {
      throw new EngineError(
        'CNM_ERR_ENGINE_DISPOSED',
        `engine.${method}(): the engine is disposed; create a new one with createEngine()`,
      );
    }
    return this.#native;
  }

  #queue<T>(method: string, call: (n: NativeEngine) => Promise<unknown>): Promise<T> {
    const run = this.#tail.then(() => call(this.#live(method)));
    this.#tail = run.catch(() => undefined);
    return run.then(
      (v) => v as T,
      (e: unknown) => {
        throw toEngineError(e);
      },
    );
  }

  loadWeights(entries: EngineTensor[]): Promise<LoadResult> {
    return this.#queue('loadWeights', (n) => n.loadWeights(entries));
  }

  exportWeights(filter?: ExportFilter): Promise<EngineTensor[]> {
    return this.#queue('exportWeights', (n) => n.exportWeights(filter));
  }

  /** Forward + backward of one micro-batch; accumulates gradients (see the header for GA). */
  trainStep(batch: Batch): Promise<LossResult> {
    return this.#queue('trainStep', (n) => n.trainStep(batch));
  }

  /** Forward only; touches no gradient or counter. */
  evalLoss(batch: Batch): Promise<LossResult> {
    return this.#queue('evalLoss', (n) => n.evalLoss(batch));
  }

  optimizerStep(opts?: { accumulationSteps?: number }): Promise<OptimizerStepResult> {
    return this.#queue('optimizerStep', (n) => n.optimizerStep(opts));
  }

  exportOptimizerState(): Promise<OptimizerState> {
    return this.#queue('exportOptimizerState', (n) => n.exportOptimizerState());
  }

  importOptimizerState(state: OptimizerState): Promise<void> {
    return this.#queue('importOptimizerState', (n) => n.importOptimizerState(state));
  }

  /** Test hook: accumulated gradients divided as optimizerStep would (before clipping), float32. */
  _exportGradients(opts?: { accumulationSteps?: number }): Promise<EngineTensor[]> {
    return this.#queue('_exportGradients', (n) => n._exportGradients(opts));
  }

  info(): EngineInfo {
    try {
      return this.#live('info').info() as EngineInfo;
    } catch (e) {
      throw toEngineError(e);
    }
  }

  /** Frees the engine (idempotent). Calls already running finish; later calls throw. */
  dispose(): void {
    const n = this.#native;
    this.#native = null;
    n?.dispose();
  }
}

export async function createEngine(opts: EngineOptions, addon: NativeAddon = loadNativeAddon()): Promise<Engine> {
  try {
    return new Engine(await addon.createEngine(opts));
  } catch (e) {
    throw toEngineError(e);
  }
}
