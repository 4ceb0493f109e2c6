// Assembling the weights the engine starts from (PROTOCOL.md decision 4, §7.4, §9.6):
//   1. the backbone (and, as a fallback, the group's experts) from the base model directory
//      (`model.base_path`: HF safetensors, where DeepSeek-V2 stores experts as separate
//      gate_proj/up_proj/down_proj matrices — converted here to the Connito per-expert layout
//      `experts.<E>.gate_up_proj` = [gate; up] rows and `experts.<E>.down_proj`);
//   2. overlaid with `model_shared.pt` of the chosen checkpoint, when it has one;
//   3. overlaid with `model_expgroup_<g>.pt` of the chosen checkpoint.
// Only the tensors this miner's partial model holds are read (the full DeepSeek-V2-Lite is 31 GB).
import type { StateDict, Tensor } from '../checkpoint/tensor.js';
import { TrainerError } from './errors.js';
import type { WeightEntry, WeightDType } from './engine-port.js';
import { isGroupExpertKey, isRoutedExpertKey, type AllowedExperts } from './experts.js';

const HF_EXPERT = /^(.*\.mlp\.experts\.(\d+))\.(gate_proj|up_proj|down_proj)\.weight$/;

/** Whether a key of a base-model or checkpoint file is needed by the partial model. */
export function isNeededKey(name: string, allowed: AllowedExperts): boolean {
  if (!isRoutedExpertKey(name)) return true;
  return isGroupExpertKey(name, allowed);
}

/**
 * Converts HF-layout expert matrices (`experts.E.{gate,up,down}_proj.weight`) to the Connito
 * per-expert keys. Other keys pass through. A gate without its up (or the reverse) is an error.
 */
export function convertHfExperts(sd: StateDict, source: string): StateDict {
  const out: StateDict = new Map();
  const pending = new Map<string, { gate?: Tensor; up?: Tensor }>();
  for (const [name, t] of sd) {
    const m = HF_EXPERT.exec(name);
    if (!m) {
      out.set(name, t);
      continue;
    }
    const prefix = m[1]!;
    if (m[3] === 'down_proj') {
      out.set(`${prefix}.down_proj`, t);
      continue;
    }
    const p = pending.get(prefix) ?? {};
    if (m[3] === 'gate_proj') p.gate = t;
    else p.up = t;
    pending.set(prefix, p);
  }
  for (const [prefix, { gate, up }] of pending) {
    if (!gate || !up) throw new TrainerError('CNM_ERR_WEIGHTS', `${source}: ${prefix} has ${gate ? 'gate_proj' : 'up_proj'} but not ${gate ? 'up_proj' : 'gate_proj'}`);
    if (gate.dtype !== up.dtype || gate.shape.length !== 2 || up.shape.length !== 2 || gate.shape[1] !== up.shape[1]) {
      throw new TrainerError('CNM_ERR_WEIGHTS', `${source}: ${prefix}.gate_proj [${gate.shape}] ${gate.dtype} and up_proj [${up.shape}] ${up.dtype} cannot be stacked`);
    }
    const data = new Uint8Array(gate.data.byteLength + up.data.byteLength);
    data.set(gate.data, 0);
    data.set(up.data, gate.data.byteLength);
    out.set(`${prefix}.gate_up_proj`, { dtype: gate.dtype, shape: [gate.shape[0]! + up.shape[0]!, gate.shape[1]!], data });
  }
  return out;
}

const ENGINE_DTYPES = new Set<string>(['float32', 'float16', 'bfloat16']);

/** State dict → the engine's weight entries; non-float tensors are an error naming the key. */
export function toEngineEntries(sd: StateDict, source: string): WeightEntry[] {
  const out: WeightEntry[] = [];
  for (const [name, t] of sd) {
    if (!ENGINE_DTYPES.has(t.dtype)) throw new TrainerError('CNM_ERR_WEIGHTS', `${source}: tensor ${name} has dtype ${t.dtype}; weights must be float32, float16 or bfloat16`);
    out.push({ name, dtype: t.dtype as WeightDType, shape: t.shape, data: t.data });
  }
  return out;
}

/** Overlays `top` onto `base` (later files override earlier keys, as §7.4 merges them). */
export function overlay(base: StateDict, top: StateDict): StateDict {
  for (const [k, v] of top) base.set(k, v);
  return base;
}

/** Keeps only the keys the partial model needs. */
export function filterNeeded(sd: StateDict, allowed: AllowedExperts): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) if (isNeededKey(k, allowed)) out.set(k, v);
  return out;
}
