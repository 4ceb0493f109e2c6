// `parse_dynamic_filename` (`shared/helper.py:82-116`, PROTOCOL.md §7.6) and the directory names the
// reference gives checkpoints.

export type FilenameMeta = Record<string, string | number>;

/** Python `Path(name).stem`: last path component without its last suffix. */
export function pyStem(name: string): string {
  const base = name.replace(/\/+$/, '').split('/').pop() ?? '';
  const dot = base.lastIndexOf('.');
  // Path('.hidden').stem == '.hidden'; Path('a.').stem == 'a.' on 3.11 (no suffix for a trailing dot).
  if (dot <= 0 || dot === base.length - 1) return base;
  return base.slice(0, dot);
}

/** Python `int(text)` for the forms a file name can hold (sign, digits, single underscores). */
function pyInt(text: string): number | string {
  const m = /^[ \t\n\r\f\v]*([-+]?)(\d+(?:_\d+)*)[ \t\n\r\f\v]*$/.exec(text);
  if (!m) return text;
  const n = Number(m[1]! + m[2]!.replace(/_/g, ''));
  // Beyond 2^53 a JS number would be wrong: keep the text (no such names occur).
  return Number.isSafeInteger(n) ? n : text;
}

/**
 * Stem split on `_` into key/value pairs, left to right; integer values converted; a repeated key
 * advances one token instead of two; a trailing odd token is ignored; `filename` = the argument.
 */
export function parseDynamicFilename(filename: string): FilenameMeta {
  const parts = pyStem(filename).split('_');
  const meta = new Map<string, string | number>();
  let i = 0;
  while (i < parts.length - 1) {
    const key = parts[i]!;
    if (meta.has(key)) {
      i += 1;
      continue;
    }
    meta.set(key, pyInt(parts[i + 1]!));
    i += 2;
  }
  meta.set('filename', filename);
  return Object.fromEntries(meta);
}

/** `globalver_<G>_inneropt_<K>`: a miner's own checkpoint directory. */
export function checkpointDirName(globalVer: number, innerOpt: number): string {
  return `globalver_${globalVer}_inneropt_${innerOpt}`;
}

/** `uid_<u>_hotkey_<ss58>_globalver_<G>`: a downloaded validator checkpoint directory (§6.4). */
export function validatorCheckpointDirName(uid: number, hotkey: string, globalVer: number): string {
  return `uid_${uid}_hotkey_${hotkey}_globalver_${globalVer}`;
}

/** `model_expgroup_<g>.pt` (or `model_shared.pt` for the pseudo-group "shared"). */
export function expertGroupFileName(group: number | 'shared'): string {
  return group === 'shared' ? 'model_shared.pt' : `model_expgroup_${group}.pt`;
}

/** `hotkey_<ss58>_block_<n>.pt`: how a validator stores a submission (§5.2). */
export function submissionFileName(hotkey: string, block: number): string {
  return `hotkey_${hotkey}_block_${block}.pt`;
}
