// The architecture of the model being trained: the HF `config.json` of the base model (DeepSeek-V2
// family, PROTOCOL.md §9.1), checked for the fields the engine needs, and the Connito overrides of
// the miner's partial model (§9.2) applied before it reaches the engine.
import { readFileSync } from 'node:fs';
import { TrainerError } from './errors.js';

/** The fields of a DeepSeek-V2 `config.json` we read; the rest is passed through untouched. */
export interface DeepseekV2Arch {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  moe_intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  q_lora_rank: number | null;
  kv_lora_rank: number;
  qk_nope_head_dim: number;
  qk_rope_head_dim: number;
  v_head_dim: number;
  n_routed_experts: number;
  n_shared_experts: number | null;
  num_experts_per_tok: number;
  first_k_dense_replace: number;
  moe_layer_freq: number;
  routed_scaling_factor?: number;
  rms_norm_eps?: number;
  max_position_embeddings: number;
  rope_theta?: number;
  rope_scaling?: Record<string, unknown> | null;
  bos_token_id?: number | null;
  eos_token_id?: number | null;
  [k: string]: unknown;
}

const REQUIRED_INTS = [
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'moe_intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'kv_lora_rank',
  'qk_nope_head_dim',
  'qk_rope_head_dim',
  'v_head_dim',
  'n_routed_experts',
  'num_experts_per_tok',
  'max_position_embeddings',
] as const;

/** Validates a parsed config.json; `file` names it in errors. */
export function validateArch(raw: unknown, file: string): DeepseekV2Arch {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new TrainerError('CNM_ERR_MODEL_CONFIG', `${file}: expected a JSON object (a Hugging Face config.json)`);
  }
  const c = raw as Record<string, unknown>;
  for (const k of REQUIRED_INTS) {
    const v = c[k];
    if (!Number.isInteger(v) || (v as number) < 0 || (k !== 'n_routed_experts' && (v as number) === 0)) {
      throw new TrainerError('CNM_ERR_MODEL_CONFIG', `${file}: "${k}" must be a positive integer, got ${JSON.stringify(v)}; is this a DeepSeek-V2 config.json?`);
    }
  }
  const out = { ...c } as DeepseekV2Arch;
  out.q_lora_rank = c.q_lora_rank === undefined ? null : (c.q_lora_rank as number | null);
  out.n_shared_experts = c.n_shared_experts === undefined ? null : (c.n_shared_experts as number | null);
  out.first_k_dense_replace = Number.isInteger(c.first_k_dense_replace) ? (c.first_k_dense_replace as number) : 0;
  out.moe_layer_freq = Number.isInteger(c.moe_layer_freq) ? (c.moe_layer_freq as number) : 1;
  return out;
}

export function readArch(file: string): DeepseekV2Arch {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TrainerError(
      'CNM_ERR_MODEL_CONFIG',
      `cannot read the model architecture ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); set model.base_path in config.yaml to the base model directory`,
      { cause: e },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TrainerError('CNM_ERR_MODEL_CONFIG', `${file} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return validateArch(raw, file);
}

export function isMoeLayer(a: DeepseekV2Arch, layer: number): boolean {
  return a.n_routed_experts > 0 && layer >= a.first_k_dense_replace && (a.moe_layer_freq <= 1 || layer % a.moe_layer_freq === 0);
}

export interface ConnitoOverrides {
  /** moe.partial_topk: experts per token inside the miner's partial model (1). */
  partialTopk: number;
  /** data.sequence_length: becomes max_position_embeddings (this also shapes YaRN, §13 Q5). */
  sequenceLength: number;
  /** moe.num_worker_groups: n_group (no effect with topk_method "greedy"). */
  numWorkerGroups?: number;
}

/** PROTOCOL.md §9.2 `get_moe_model_config` for the miner's partial model. */
export function applyConnitoOverrides(a: DeepseekV2Arch, o: ConnitoOverrides): DeepseekV2Arch {
  return {
    ...a,
    num_experts_per_tok: o.partialTopk,
    n_group: o.numWorkerGroups ?? a.n_group ?? 1,
    topk_group: 1,
    norm_topk_prob: true,
    max_position_embeddings: o.sequenceLength,
  };
}
