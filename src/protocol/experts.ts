// Expert groups (PROTOCOL.md §8): `expert_assignment.json`, state-dict name parsing, and the
// validator's expert-group check of §5.2(c) as a pure function.
import { ProtocolError } from './errors.js';

/** layer → [my (group-local) id, org (global) id] pairs, as in `expert_assignment.json`. */
export type ExpertAssignment = Map<number, Array<[my: number, org: number]>>;

/** Parses `expert_assignment.json` (decimal layer keys → arrays of [my, org] pairs). */
export function parseExpertAssignment(input: string | unknown, source = 'expert_assignment.json'): ExpertAssignment {
  const bad = (why: string): never => {
    throw new ProtocolError('CNM_ERR_EXPERT_ASSIGNMENT', `${source}: ${why}`);
  };
  let json: unknown = input;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input);
    } catch (e) {
      bad(`not valid JSON (${(e as Error).message})`);
    }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return bad('expected a JSON object mapping layer numbers to [my_id, org_id] pairs');
  const out: ExpertAssignment = new Map();
  for (const [key, pairs] of Object.entries(json as Record<string, unknown>)) {
    if (!/^\s*[-+]?\d+\s*$/.test(key)) bad(`layer key ${JSON.stringify(key)} is not a decimal integer`);
    const layer = Number(key.trim());
    if (!Number.isSafeInteger(layer) || layer < 0) bad(`layer key ${JSON.stringify(key)} is not a non-negative integer`);
    if (out.has(layer)) bad(`layer ${layer} appears twice`);
    if (!Array.isArray(pairs)) return bad(`layer ${key}: expected an array of [my_id, org_id] pairs`);
    const list: Array<[number, number]> = [];
    const mine = new Set<number>();
    for (const [j, p] of pairs.entries()) {
      if (!Array.isArray(p) || p.length !== 2 || !p.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) {
        bad(`layer ${key} entry ${j}: expected [my_id, org_id] of non-negative integers, got ${JSON.stringify(p)}`);
      }
      const [my, org] = p as [number, number];
      // validate_unique_mycelia_expert_ids: my ids are unique within a layer.
      if (mine.has(my)) bad(`layer ${key}: my_id ${my} is used twice`);
      mine.add(my);
      list.push([my, org]);
    }
    out.set(layer, list);
  }
  return out;
}

/** The cbf3c65 `exp_math` assignment: layers 0..47, layer L → [[i, 8·(L mod 8)+i] for i in 0..7]. */
export function cbf3c65ExpMathAssignment(): ExpertAssignment {
  const out: ExpertAssignment = new Map();
  for (let L = 0; L < 48; L++) out.set(L, Array.from({ length: 8 }, (_, i) => [i, 8 * (L % 8) + i] as [number, number]));
  return out;
}

/** Serialises an assignment the way the reference files look (`{"0": [[0, 0], ...], ...}`). */
export function stringifyExpertAssignment(a: ExpertAssignment): string {
  const obj: Record<string, Array<[number, number]>> = {};
  for (const [layer, pairs] of a) obj[String(layer)] = pairs;
  return JSON.stringify(obj);
}

// Python's `\d` matches every Unicode decimal digit and `int()` converts them; mirror both.
const LAYER_EXPERT = /layers\.(\p{Nd}+)(?:\.mlp\.experts\.(\p{Nd}+))?/u;
const ND = /^\p{Nd}$/u;

function unicodeDigitsToInt(s: string): number {
  let v = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    let zero = cp;
    // Nd characters come in runs of whole 0..9 sets; walk back to the run start.
    while (ND.test(String.fromCodePoint(zero - 1))) zero--;
    v = v * 10 + ((cp - zero) % 10);
  }
  return v;
}

/** `get_layer_expert_id`: first `layers.<L>(.mlp.experts.<E>)?` match anywhere in the name. */
export function getLayerExpertId(name: string): [layer: number | null, expert: number | null] {
  const m = LAYER_EXPERT.exec(name);
  if (!m) return [null, null];
  return [unicodeDigitsToInt(m[1]!), m[2] === undefined ? null : unicodeDigitsToInt(m[2])];
}

/** `is_expert_param`: "expert" in the name and "shared_expert" not. */
export function isExpertParam(name: string): boolean {
  return name.includes('expert') && !name.includes('shared_expert');
}

/** Ids accepted in layer L: {my} ∪ {org} (§8.2: the union keeps local ids 0..7 acceptable). */
export function allowedExpertIds(a: ExpertAssignment, layer: number): Set<number> {
  const s = new Set<number>();
  for (const [my, org] of a.get(layer) ?? []) {
    s.add(my);
    s.add(org);
  }
  return s;
}

/** Sorted distinct org ids of a layer: the experts the partial model holds (§9.3). */
export function localExpertIds(a: ExpertAssignment, layer: number): number[] {
  return [...new Set((a.get(layer) ?? []).map(([, org]) => org))].sort((x, y) => x - y);
}

/** The state-dict keys of a group's expert file for the given MoE layers (§9.3/§9.4). */
export function expertGroupKeys(a: ExpertAssignment, layers: Iterable<number>): string[] {
  const keys: string[] = [];
  for (const L of layers) {
    for (const org of localExpertIds(a, L)) {
      keys.push(`model.layers.${L}.mlp.experts.${org}.gate_up_proj`, `model.layers.${L}.mlp.experts.${org}.down_proj`);
    }
  }
  return keys;
}

export interface ExpertCheckEntry {
  key: string;
  /** false if this floating tensor holds a NaN or ±inf (integer tensors: true). */
  finite: boolean;
}

export type ExpertCheckResult = { ok: true } | { ok: false; reason: string };

/**
 * §5.2(c): every floating tensor finite; at least one routed-expert key; every key that parses as
 * `layers.<L>.mlp.experts.<E>` has E ∈ allowedExpertIds(L). Other keys are ignored (cbf3c65), or
 * rejected when `rejectNonExpert` (HEAD).
 */
export function checkExpertGroup(entries: Iterable<ExpertCheckEntry>, a: ExpertAssignment, opts: { rejectNonExpert?: boolean } = {}): ExpertCheckResult {
  let experts = 0;
  const allowed = new Map<number, Set<number>>();
  for (const { key, finite } of entries) {
    if (!finite) return { ok: false, reason: `tensor ${key} has non-finite values` };
    const [layer, expert] = getLayerExpertId(key);
    if (layer === null || expert === null) {
      if (opts.rejectNonExpert) return { ok: false, reason: `key ${key} is not a routed-expert parameter` };
      continue;
    }
    experts++;
    let ids = allowed.get(layer);
    if (!ids) allowed.set(layer, (ids = allowedExpertIds(a, layer)));
    if (!ids.has(expert)) return { ok: false, reason: `key ${key}: expert ${expert} is not in this group's layer ${layer}` };
  }
  if (experts === 0) return { ok: false, reason: 'no routed-expert parameters in the state dict' };
  return { ok: true };
}
