// Shared fixtures of the engine tests: tiny DeepSeek-V2 configs, a deterministic PRNG, random
// weights in the engine's boundary format, and Float32 <-> bytes helpers.
import { createEngine, type Batch, type DeepseekV2Config, type Engine, type EngineOptions, type EngineTensor } from '../../src/trainer/engine.js';

/** The tiny model: 2 layers (layer 0 dense, layer 1 MoE), 8 routed experts of which 4 are allowed, H = 32. */
export const TINY: DeepseekV2Config = {
  vocab_size: 64,
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  q_lora_rank: null,
  kv_lora_rank: 16,
  qk_nope_head_dim: 8,
  qk_rope_head_dim: 4,
  v_head_dim: 8,
  intermediate_size: 64,
  moe_intermediate_size: 16,
  n_routed_experts: 8,
  n_shared_experts: 1,
  num_experts_per_tok: 1,
  first_k_dense_replace: 1,
  moe_layer_freq: 1,
  routed_scaling_factor: 1.0,
  topk_method: 'greedy',
  scoring_func: 'softmax',
  norm_topk_prob: false,
  hidden_act: 'silu',
  rms_norm_eps: 1e-6,
  max_position_embeddings: 4096,
  rope_theta: 10000,
  // DeepSeek-V2-Lite's YaRN block (mscale == mscale_all_dim → attention factor 1).
  rope_scaling: {
    type: 'yarn',
    factor: 40,
    original_max_position_embeddings: 4096,
    beta_fast: 32,
    beta_slow: 1,
    mscale: 0.707,
    mscale_all_dim: 0.707,
  },
  tie_word_embeddings: false,
  attention_bias: false,
  initializer_range: 0.02,
};
export const TINY_ALLOWED: Record<number, number[]> = { 1: [6, 1, 4, 3] };

/**
 * Every branch at once: 3 layers (MoE, dense, MoE: moe_layer_freq 2), q LoRA, top-2 routing with
 * routed_scaling_factor 1.5, 2 shared experts, YaRN with an active ramp and attention factor ≠ 1.
 */
export const DEEP: DeepseekV2Config = {
  ...TINY,
  vocab_size: 48,
  num_hidden_layers: 3,
  q_lora_rank: 24,
  qk_rope_head_dim: 8,
  intermediate_size: 40,
  n_shared_experts: 2,
  num_experts_per_tok: 2,
  first_k_dense_replace: 0,
  moe_layer_freq: 2,
  routed_scaling_factor: 1.5,
  max_position_embeddings: 256,
  rope_theta: 100,
  rope_scaling: {
    type: 'yarn',
    factor: 4,
    original_max_position_embeddings: 64,
    beta_fast: 32,
    beta_slow: 1,
    mscale: 1.0,
    mscale_all_dim: 0.5,
  },
};
export const DEEP_ALLOWED: Record<number, number[]> = { 0: [0, 2, 5, 7], 2: [1, 3, 4, 6] };

export function engineOptions(
  config: DeepseekV2Config,
  allowedExperts: Record<number, number[]>,
  over: Partial<EngineOptions> = {},
): EngineOptions {
  return {
    config,
    allowedExperts,
    backend: 'cpu',
    precision: 'fp32',
    threads: 2,
    optimizer: { lr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1.0 },
    schedule: { warmupSteps: 0, totalSteps: 1000 },
    seed: 7,
    ...over,
  };
}

/** splitmix32-style PRNG: deterministic, independent of Math.random. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x9e3779b9) >>> 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

export function f32bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function bytesF32(t: { data: Uint8Array }): Float32Array {
  const copy = new Uint8Array(t.data); // aligned copy
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

export function byName(ts: EngineTensor[]): Map<string, EngineTensor> {
  return new Map(ts.map((t) => [t.name, t]));
}

const isNorm = (name: string) => name.endsWith('layernorm.weight') || name === 'model.norm.weight';

/**
 * Random float32 weights for every tensor the engine holds: norms 1 + 0.2·N(0,1), the embedding
 * N(0,1), matrices N(0,1)/sqrt(fan_in) (so activations stay O(1) and routing is far from ties).
 */
export async function randomWeights(engine: Engine, seed: number): Promise<EngineTensor[]> {
  const rng = new Rng(seed);
  const specs = await engine.exportWeights();
  return specs.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    const fanIn = t.shape.length === 2 ? t.shape[1]! : 1;
    const std = t.name === 'model.embed_tokens.weight' ? 1 : 1 / Math.sqrt(fanIn);
    for (let i = 0; i < n; i++) a[i] = isNorm(t.name) ? 1 + 0.2 * rng.normal() : std * rng.normal();
    return { name: t.name, dtype: 'float32', shape: t.shape, data: f32bytes(a) };
  });
}

export type TokenBatch = Batch;

/** Random tokens; labels = tokens with ~15% set to -100 (and the last position of row 0 too). */
export function randomBatch(rng: Rng, vocab: number, batch: number, seq: number): TokenBatch {
  const tokens = new Int32Array(batch * seq);
  const labels = new Int32Array(batch * seq);
  for (let i = 0; i < tokens.length; i++) {
    tokens[i] = rng.int(vocab);
    labels[i] = rng.next() < 0.15 ? -100 : tokens[i]!;
  }
  labels[seq - 1] = -100;
  return { tokens, labels, batch, seq };
}

export async function tinyEngine(
  config: DeepseekV2Config,
  allowed: Record<number, number[]>,
  over: Partial<EngineOptions> = {},
  weightSeed = 11,
): Promise<{ engine: Engine; weights: EngineTensor[] }> {
  const engine = await createEngine(engineOptions(config, allowed, over));
  const weights = await randomWeights(engine, weightSeed);
  const r = await engine.loadWeights(weights);
  if (r.missing.length > 0 || r.ignored.length > 0) throw new Error(`fixture load: ${JSON.stringify(r)}`);
  return { engine, weights };
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** max_i |a_i − b_i| / max_i |b_i|: the error relative to the tensor's scale. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  const s = maxAbs(b);
  return s === 0 ? d : d / s;
}
