// Which experts this miner trains (PROTOCOL.md §8): the org expert ids of its group in every MoE
// layer, and the state-dict keys that make up `model_expgroup_<g>.pt`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { getLayerExpertId, localExpertIds, parseExpertAssignment, type ExpertAssignment } from '../protocol/experts.js';
import { TrainerError } from './errors.js';
import { isMoeLayer, type DeepseekV2Arch } from './model-config.js';

/** layer → sorted distinct org expert ids (the engine's `allowedExperts`). */
export type AllowedExperts = Record<number, number[]>;

/**
 * From a group's assignment (layer → [my, org] pairs) to the experts the partial model holds: the
 * sorted distinct org ids per layer (§9.3), for layers that exist and are MoE layers (the reference
 * assignment lists layers 0…47 of which only 1…26 exist as MoE layers).
 */
export function allowedExperts(assignment: ExpertAssignment, arch: DeepseekV2Arch, source: string): AllowedExperts {
  const out: AllowedExperts = {};
  for (const layer of [...assignment.keys()].sort((a, b) => a - b)) {
    if (layer >= arch.num_hidden_layers || !isMoeLayer(arch, layer)) continue;
    const ids = localExpertIds(assignment, layer);
    for (const org of ids) {
      if (org >= arch.n_routed_experts) {
        throw new TrainerError('CNM_ERR_EXPERT_ASSIGNMENT', `${source}: layer ${layer} names expert ${org}, but the model has experts 0…${arch.n_routed_experts - 1}`);
      }
    }
    if (ids.length > 0) out[layer] = ids;
  }
  if (Object.keys(out).length === 0) {
    throw new TrainerError('CNM_ERR_EXPERT_ASSIGNMENT', `${source}: assigns no expert in any MoE layer of this model (layers ${arch.first_k_dense_replace}…${arch.num_hidden_layers - 1}); check task.expert_group_name`);
  }
  return out;
}

/** A routed-expert key (§8.3: an expert id in the name, not a shared expert). */
export function isRoutedExpertKey(name: string): boolean {
  return getLayerExpertId(name)[1] !== null && !name.includes('shared_expert');
}

/** True when `name` is one of this group's expert tensors. */
export function isGroupExpertKey(name: string, allowed: AllowedExperts): boolean {
  const [layer, expert] = getLayerExpertId(name);
  if (layer === null || expert === null || name.includes('shared_expert')) return false;
  return allowed[layer]?.includes(expert) ?? false;
}

/** The exact keys of `model_expgroup_<g>.pt`, in layer/expert order (§9.4). */
export function groupExpertKeys(allowed: AllowedExperts): string[] {
  const keys: string[] = [];
  for (const layer of Object.keys(allowed).map(Number).sort((a, b) => a - b)) {
    for (const e of allowed[layer]!) {
      keys.push(`model.layers.${layer}.mlp.experts.${e}.gate_up_proj`, `model.layers.${layer}.mlp.experts.${e}.down_proj`);
    }
  }
  return keys;
}

export function countAllowed(allowed: AllowedExperts): number {
  return Object.values(allowed).reduce((n, ids) => n + ids.length, 0);
}

export interface ExpertGroup {
  /** `group_id` of the task folder's config.yaml (the `g` of model_expgroup_<g>.pt). */
  groupId: number;
  assignment: ExpertAssignment;
  /** The task folder. */
  path: string;
}

/**
 * Reads the task folder (§8.1): `config.yaml` (`group_id`, default 0 as in the reference) and
 * `expert_assignment.json`.
 */
export function loadExpertGroup(taskPath: string): ExpertGroup {
  const cfgFile = join(taskPath, 'config.yaml');
  let groupId = 0;
  let text: string | null = null;
  try {
    text = readFileSync(cfgFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new TrainerError('CNM_ERR_EXPERT_ASSIGNMENT', `cannot read ${cfgFile}: ${(e as Error).message}`, { cause: e });
    }
  }
  if (text !== null) {
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e) {
      throw new TrainerError('CNM_ERR_EXPERT_ASSIGNMENT', `${cfgFile} is not valid YAML (${(e as Error).message})`, { cause: e });
    }
    const g = doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>).group_id : undefined;
    if (g !== undefined) {
      if (!Number.isSafeInteger(g) || (g as number) < 0) {
        throw new TrainerError('CNM_ERR_EXPERT_ASSIGNMENT', `${cfgFile}: group_id must be a non-negative integer, got ${JSON.stringify(g)}`);
      }
      groupId = g as number;
    }
  }
  const file = join(taskPath, 'expert_assignment.json');
  let json: string;
  try {
    json = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TrainerError(
      'CNM_ERR_EXPERT_ASSIGNMENT',
      `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); set task.path / task.expert_group_name in config.yaml to the expert-group folder`,
      { cause: e },
    );
  }
  try {
    return { groupId, assignment: parseExpertAssignment(json, file), path: taskPath };
  } catch (e) {
    throw new TrainerError('CNM_ERR_EXPERT_ASSIGNMENT', (e as Error).message, { cause: e });
  }
}
