// A tiny DeepSeek-V2-shaped model, generated deterministically: the config.json and the weights of
// the *full* model (all routed experts). Tests and the devnet use it as the base model directory
// (`model.base_path`) and cut expert-group baselines from it. Same key names and layouts as the
// real model (PROTOCOL.md §9.4), with a byte-level vocabulary (the tokenizer fallback) and sizes
// small enough that a CPU trains it in milliseconds per step.
import { Rng, mixSeed } from './data/rng.js';
import { BYTE_BOS, BYTE_EOS, BYTE_VOCAB } from './data/tokenizer.js';
import { isMoeLayer, type DeepseekV2Arch } from './model-config.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSafetensors } from '../checkpoint/safetensors.js';
import { castTensor, type DType, type StateDict, type Tensor } from '../checkpoint/tensor.js';
import { stringifyExpertAssignment, type ExpertAssignment } from '../protocol/experts.js';

export interface TinyModelOptions {
  hidden?: number;
  layers?: number;
  experts?: number;
  /** One routed expert's width. */
  expertWidth?: number;
  vocab?: number;
  heads?: number;
  seed?: number;
  /** std of the normal init (config initializer_range; default 0.02 as DeepSeek-V2). */
  initializerRange?: number;
}

export function tinyArch(o: TinyModelOptions = {}): DeepseekV2Arch {
  const hidden = o.hidden ?? 32;
  const heads = o.heads ?? 2;
  return {
    architectures: ['DeepseekV2ForCausalLM'],
    model_type: 'deepseek_v2',
    vocab_size: o.vocab ?? 320,
    hidden_size: hidden,
    intermediate_size: hidden * 2,
    moe_intermediate_size: o.expertWidth ?? 16,
    num_hidden_layers: o.layers ?? 2,
    num_attention_heads: heads,
    num_key_value_heads: heads,
    q_lora_rank: null,
    kv_lora_rank: 16,
    qk_nope_head_dim: 8,
    qk_rope_head_dim: 8,
    v_head_dim: 8,
    n_routed_experts: o.experts ?? 8,
    n_shared_experts: 1,
    num_experts_per_tok: 2,
    first_k_dense_replace: 1,
    moe_layer_freq: 1,
    topk_method: 'greedy',
    n_group: 1,
    topk_group: 1,
    norm_topk_prob: false,
    routed_scaling_factor: 1.0,
    scoring_func: 'softmax',
    hidden_act: 'silu',
    rms_norm_eps: 1e-6,
    max_position_embeddings: 512,
    rope_theta: 10000,
    rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 128, beta_fast: 32, beta_slow: 1, mscale: 0.707, mscale_all_dim: 0.707 },
    tie_word_embeddings: false,
    attention_bias: false,
    bos_token_id: BYTE_BOS,
    eos_token_id: BYTE_EOS,
    initializer_range: o.initializerRange ?? 0.02,
    torch_dtype: 'float16',
  };
}

/** [name, shape] of every tensor of the full model, in the order the reference's state dict has them. */
export function archTensorShapes(a: DeepseekV2Arch, expertFormat: 'connito' | 'hf' = 'connito'): Array<[string, number[]]> {
  const H = a.hidden_size;
  const nh = a.num_attention_heads;
  const qk = a.qk_nope_head_dim + a.qk_rope_head_dim;
  const I = a.moe_intermediate_size;
  const shapes: Array<[string, number[]]> = [['model.embed_tokens.weight', [a.vocab_size, H]]];
  for (let l = 0; l < a.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    if (a.q_lora_rank) {
      shapes.push([`${p}.self_attn.q_a_proj.weight`, [a.q_lora_rank, H]], [`${p}.self_attn.q_a_layernorm.weight`, [a.q_lora_rank]], [`${p}.self_attn.q_b_proj.weight`, [nh * qk, a.q_lora_rank]]);
    } else {
      shapes.push([`${p}.self_attn.q_proj.weight`, [nh * qk, H]]);
    }
    shapes.push(
      [`${p}.self_attn.kv_a_proj_with_mqa.weight`, [a.kv_lora_rank + a.qk_rope_head_dim, H]],
      [`${p}.self_attn.kv_a_layernorm.weight`, [a.kv_lora_rank]],
      [`${p}.self_attn.kv_b_proj.weight`, [nh * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank]],
      [`${p}.self_attn.o_proj.weight`, [H, nh * a.v_head_dim]],
    );
    if (isMoeLayer(a, l)) {
      shapes.push([`${p}.mlp.gate.weight`, [a.n_routed_experts, H]]);
      for (let e = 0; e < a.n_routed_experts; e++) {
        if (expertFormat === 'connito') {
          shapes.push([`${p}.mlp.experts.${e}.gate_up_proj`, [2 * I, H]], [`${p}.mlp.experts.${e}.down_proj`, [H, I]]);
        } else {
          shapes.push([`${p}.mlp.experts.${e}.gate_proj.weight`, [I, H]], [`${p}.mlp.experts.${e}.up_proj.weight`, [I, H]], [`${p}.mlp.experts.${e}.down_proj.weight`, [H, I]]);
        }
      }
      const S = I * (a.n_shared_experts ?? 0);
      if (S > 0) {
        shapes.push([`${p}.mlp.shared_experts.gate_proj.weight`, [S, H]], [`${p}.mlp.shared_experts.up_proj.weight`, [S, H]], [`${p}.mlp.shared_experts.down_proj.weight`, [H, S]]);
      }
    } else {
      shapes.push([`${p}.mlp.gate_proj.weight`, [a.intermediate_size, H]], [`${p}.mlp.up_proj.weight`, [a.intermediate_size, H]], [`${p}.mlp.down_proj.weight`, [H, a.intermediate_size]]);
    }
    shapes.push([`${p}.input_layernorm.weight`, [H]], [`${p}.post_attention_layernorm.weight`, [H]]);
  }
  shapes.push(['model.norm.weight', [H]], ['lm_head.weight', [a.vocab_size, H]]);
  return shapes;
}

function isNormWeight(name: string): boolean {
  return /(layernorm|norm)\.weight$/.test(name);
}

/**
 * Weights of the full model: normal(0, initializer_range) for matrices (each tensor from its own
 * seeded stream, so adding a tensor does not change the others), ones for RMSNorm weights.
 */
export function tinyWeights(a: DeepseekV2Arch, opts: { seed?: number; dtype?: DType; expertFormat?: 'connito' | 'hf' } = {}): StateDict {
  const seed = opts.seed ?? 0;
  const dtype = opts.dtype ?? 'float16';
  const std = typeof a.initializer_range === 'number' ? a.initializer_range : 0.02;
  const sd: StateDict = new Map();
  let i = 0;
  for (const [name, shape] of archTensorShapes(a, opts.expertFormat ?? 'connito')) {
    const n = shape.reduce((x, y) => x * y, 1);
    const v = new Float32Array(n);
    if (isNormWeight(name)) v.fill(1);
    else {
      const rng = Rng.fromSeed(mixSeed(seed, i));
      for (let k = 0; k < n; k++) v[k] = rng.normal() * std;
    }
    i++;
    const t: Tensor = { dtype: 'float32', shape, data: new Uint8Array(v.buffer) };
    sd.set(name, castTensor(t, dtype));
  }
  return sd;
}

/** The expert assignment of the tiny model's group `g`: every MoE layer, experts g, g+2, g+4, … (half of them). */
export function tinyAssignment(a: DeepseekV2Arch, group = 0): Map<number, Array<[number, number]>> {
  const m = new Map<number, Array<[number, number]>>();
  for (let l = 0; l < a.num_hidden_layers; l++) {
    if (!isMoeLayer(a, l)) continue;
    const pairs: Array<[number, number]> = [];
    for (let e = group % 2, my = 0; e < a.n_routed_experts; e += 2, my++) pairs.push([my, e]);
    m.set(l, pairs);
  }
  return m;
}

/** vocab_size must hold the byte-level tokenizer's ids. */
export const TINY_MIN_VOCAB = BYTE_VOCAB;

/**
 * Writes a base model directory: `config.json` and `model.safetensors` (the full model; experts in
 * the HF layout by default, as the real DeepSeek-V2 release stores them). Returns the weights.
 */
export async function writeTinyModel(
  dir: string,
  opts: TinyModelOptions & { dtype?: DType; expertFormat?: 'connito' | 'hf' } = {},
): Promise<{ arch: DeepseekV2Arch; weights: StateDict }> {
  const arch = tinyArch(opts);
  const weights = tinyWeights(arch, { seed: opts.seed ?? 0, dtype: opts.dtype ?? 'float16', expertFormat: opts.expertFormat ?? 'hf' });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(arch, null, 2) + '\n');
  await writeSafetensors(join(dir, 'model.safetensors'), weights, { metadata: { format: 'pt' } });
  return { arch, weights };
}

/** Writes an expert-group task folder (§8.1): `config.yaml` with `group_id` and `expert_assignment.json`. */
export async function writeExpertGroupFolder(dir: string, groupId: number, assignment: ExpertAssignment): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.yaml'), `group_id: ${groupId}\n`);
  await writeFile(join(dir, 'expert_assignment.json'), stringifyExpertAssignment(assignment) + '\n');
}

/** The group's expert tensors of a full-model state dict in the Connito layout (a baseline's content). */
export function expertGroupStateDict(weights: StateDict, assignment: ExpertAssignment, arch: DeepseekV2Arch): StateDict {
  const out: StateDict = new Map();
  for (const [layer, pairs] of [...assignment].sort((a, b) => a[0] - b[0])) {
    if (layer >= arch.num_hidden_layers || !isMoeLayer(arch, layer)) continue;
    for (const org of [...new Set(pairs.map(([, o]) => o))].sort((a, b) => a - b)) {
      for (const part of ['gate_up_proj', 'down_proj']) {
        const key = `model.layers.${layer}.mlp.experts.${org}.${part}`;
        const t = weights.get(key);
        if (!t) throw new Error(`${key} is not in the weights (use expertFormat 'connito')`);
        out.set(key, t);
      }
    }
  }
  return out;
}
