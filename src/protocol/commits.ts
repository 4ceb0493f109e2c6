// Chain commitment payloads (PROTOCOL.md §2.2, §2.4). Encoders reproduce the reference serialisers
// byte for byte: cbf3c65 `json.dumps(model_dump(by_alias=True))` (", " / ": " separators, field
// order, nulls kept, ASCII-only) and the HEAD compact form (",", ":", nulls dropped). Decoders never
// throw: garbage on chain is normal, and one bad commit must not break the reading of the others.
import { ProtocolError } from './errors.js';

/** The commitments pallet's `Raw` variant caps a payload at 128 bytes. */
export const MAX_COMMIT_BYTES = 128;

/** `m`: base64url-no-pad of a 64-byte sr25519 signature. */
export interface SignedModelHashCommit {
  m: string | null;
}

/** `MinerChainCommit` (field order b, e, m, h, v, i). */
export interface MinerCommit {
  b: number | null;
  e: number | null;
  m: string | null;
  h: string | null;
  v: number | null;
  i: number | null;
  /** HEAD only: Hugging Face repo id and revision. */
  r?: string | null;
  rv?: string | null;
}

/** `ValidatorChainCommit` (field order m, h, v, e, s, b). */
export interface ValidatorCommit {
  m: string | null;
  h: string | null;
  v: number | null;
  e: number | null;
  s: number | null;
  b: number | null;
  r?: string | null;
  rv?: string | null;
}

// ---------------------------------------------------------------------------------------------
// Python json.dumps, for the value kinds that occur in commits.

type PyJson = string | number | null;

/** `json.dumps(str)` with `ensure_ascii=True`. */
export function pyJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += s[i];
  }
  return out + '"';
}

function pyJsonValue(v: PyJson, field: string): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return pyJsonString(v);
  if (!Number.isSafeInteger(v)) {
    throw new ProtocolError('CNM_ERR_COMMIT_ENCODE', `commit field "${field}" must be an integer, got ${String(v)}`);
  }
  return String(v);
}

function dumps(fields: ReadonlyArray<readonly [string, PyJson]>, compact: boolean): string {
  const [sep, kv] = compact ? [',', ':'] : [', ', ': '];
  return '{' + fields.map(([k, v]) => pyJsonString(k) + kv + pyJsonValue(v, k)).join(sep) + '}';
}

function budget(payload: string, what: string): string {
  const n = Buffer.byteLength(payload, 'utf8');
  if (n > MAX_COMMIT_BYTES) {
    throw new ProtocolError('CNM_ERR_COMMIT_ENCODE', `${what} payload is ${n} bytes; the chain accepts at most ${MAX_COMMIT_BYTES}: ${payload}`);
  }
  return payload;
}

const SIGNATURE_B64 = /^[A-Za-z0-9_-]{86}$/;
const HASH_HEX = /^[0-9a-f]{48}$/;

function checkSig(m: string | null): void {
  if (m !== null && !SIGNATURE_B64.test(m)) {
    throw new ProtocolError('CNM_ERR_COMMIT_ENCODE', `commit field "m" must be an 86-character base64url signature, got ${JSON.stringify(m)}`);
  }
}
function checkHash(h: string | null): void {
  if (h !== null && !HASH_HEX.test(h)) {
    throw new ProtocolError('CNM_ERR_COMMIT_ENCODE', `commit field "h" must be 48 lowercase hex characters, got ${JSON.stringify(h)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// cbf3c65 encoders.

/** MinerCommit1 at cbf3c65: `{"m": "<sig>"}` (95 bytes). */
export function encodeMinerCommit1(signatureB64: string): string {
  checkSig(signatureB64);
  return budget(dumps([['m', signatureB64]], false), 'miner commit 1');
}

/** MinerCommit2 at cbf3c65: `{"b": ..., "e": ..., "m": null, "h": ..., "v": ..., "i": ...}`. */
export function encodeMinerCommit2(c: { b: number | null; e: number | null; h: string | null; v?: number | null; i?: number | null; m?: string | null }): string {
  const m = c.m ?? null;
  checkSig(m);
  checkHash(c.h);
  // MinerChainCommit defaults v and i to 0 at cbf3c65.
  return budget(
    dumps([['b', c.b], ['e', c.e], ['m', m], ['h', c.h], ['v', c.v ?? 0], ['i', c.i ?? 0]], false),
    'miner commit 2',
  );
}

/** A validator's commit at cbf3c65 (`{"m", "h", "v", "e", "s", "b"}`), for the devnet validator. */
export function encodeValidatorCommit(c: Partial<ValidatorCommit>): string {
  const m = c.m ?? null;
  const h = c.h ?? null;
  checkSig(m);
  checkHash(h);
  return budget(
    dumps([['m', m], ['h', h], ['v', c.v ?? null], ['e', c.e ?? null], ['s', c.s ?? null], ['b', c.b ?? null]], false),
    'validator commit',
  );
}

// ---------------------------------------------------------------------------------------------
// HEAD compact serialiser (`serialize_chain_status`): separators (",", ":"), `exclude_none`.

const MAX_REPO_ID_CHARS = 32;

function compact(fields: ReadonlyArray<readonly [string, PyJson | undefined]>, what: string): string {
  const kept = fields.filter((f): f is readonly [string, PyJson] => f[1] !== null && f[1] !== undefined);
  return budget(dumps(kept, true), what);
}

/** HEAD MinerCommit1: `{"m":"<sig>"}` (94 bytes). */
export function encodeHeadMinerCommit1(signatureB64: string): string {
  checkSig(signatureB64);
  return compact([['m', signatureB64]], 'miner commit 1');
}

/** HEAD MinerCommit2: `{"e":g,"h":"<hex>","v":G,"r":"<repo>","rv":"<rev7>"}`; r/rv omitted when null. */
export function encodeHeadMinerCommit2(c: { e: number | null; h: string | null; v: number | null; r?: string | null; rv?: string | null; b?: number | null; m?: string | null; i?: number | null }): string {
  checkHash(c.h);
  checkSig(c.m ?? null);
  if (c.r != null && c.r.length > MAX_REPO_ID_CHARS) {
    throw new ProtocolError('CNM_ERR_COMMIT_ENCODE', `Hugging Face repo id ${JSON.stringify(c.r)} is longer than ${MAX_REPO_ID_CHARS} characters`);
  }
  return compact([['b', c.b], ['e', c.e], ['m', c.m], ['h', c.h], ['v', c.v], ['i', c.i], ['r', c.r], ['rv', c.rv]], 'miner commit 2');
}

// ---------------------------------------------------------------------------------------------
// Decoding (pydantic-like lax parsing: unknown keys ignored, missing keys take the defaults).

export type CommitDecodeResult<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

function fail<T>(why: string): CommitDecodeResult<T> {
  return { ok: false, error: new ProtocolError('CNM_ERR_COMMIT_DECODE', why) };
}

function parseObject(raw: string | Uint8Array): Record<string, unknown> | string {
  let text: string;
  if (typeof raw === 'string') text = raw;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      return 'payload is not valid UTF-8';
    }
  }
  if (text.length > 64 * 1024) return `payload is ${text.length} characters`;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return `payload is not JSON: ${JSON.stringify(text.slice(0, 60))}`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'payload is not a JSON object';
  return v as Record<string, unknown>;
}

/** pydantic's lax int: ints, integral floats and decimal strings; bools and the rest are errors. */
function laxInt(o: Record<string, unknown>, k: string, dflt: number | null): number | null | string {
  if (!Object.prototype.hasOwnProperty.call(o, k)) return dflt;
  const v = o[k];
  if (v === null) return null;
  if (typeof v === 'number' && Number.isInteger(v) && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && /^\s*[-+]?\d+(_\d+)*\s*$/.test(v)) {
    const n = Number(v.replace(/_/g, '').trim());
    if (Number.isSafeInteger(n)) return n;
  }
  return `field "${k}" is not an integer: ${JSON.stringify(v)?.slice(0, 60)}`;
}

function laxStr(o: Record<string, unknown>, k: string): string | null | { err: string } {
  if (!Object.prototype.hasOwnProperty.call(o, k)) return null;
  const v = o[k];
  if (v === null || typeof v === 'string') return v;
  return { err: `field "${k}" is not a string: ${JSON.stringify(v)?.slice(0, 60)}` };
}

function readFields<K extends string>(
  o: Record<string, unknown>,
  ints: ReadonlyArray<readonly [K, number | null]>,
  strs: readonly K[],
): Record<K, number | string | null> | string {
  const out = {} as Record<K, number | string | null>;
  for (const [k, d] of ints) {
    const v = laxInt(o, k, d);
    if (typeof v === 'string') return v;
    out[k] = v;
  }
  for (const k of strs) {
    const v = laxStr(o, k);
    if (v !== null && typeof v === 'object') return v.err;
    out[k] = v;
  }
  return out;
}

/** parseObject + readFields, then `build` from the fields; the first problem is the error. */
function decodeFields<K extends string, T>(
  raw: string | Uint8Array,
  ints: ReadonlyArray<readonly [K, number | null]>,
  strs: readonly K[],
  build: (f: Record<K, number | string | null>) => T,
): CommitDecodeResult<T> {
  const o = parseObject(raw);
  if (typeof o === 'string') return fail(o);
  const f = readFields(o, ints, strs);
  if (typeof f === 'string') return fail(f);
  return { ok: true, value: build(f) };
}

/** HEAD's Hugging Face fields `r`/`rv`: present on the value only when set. */
function withRepo<T extends { r?: string | null; rv?: string | null }>(value: T, f: Record<'r' | 'rv', number | string | null>): T {
  if (f.r !== null) value.r = f.r as string;
  if (f.rv !== null) value.rv = f.rv as string;
  return value;
}

/** Reads any commitment as `SignedModelHashChainCommit` (`{m}`, other keys ignored). */
export function decodeSignatureCommit(raw: string | Uint8Array): CommitDecodeResult<SignedModelHashCommit> {
  return decodeFields(raw, [], ['m'], (f) => ({ m: f.m as string | null }));
}

/** `MinerChainCommit`; cbf3c65 defaults `v` and `i` to 0 (`head: true` → null, as at HEAD). */
export function decodeMinerCommit(raw: string | Uint8Array, opts: { head?: boolean } = {}): CommitDecodeResult<MinerCommit> {
  const d = opts.head ? null : 0;
  return decodeFields(raw, [['b', null], ['e', null], ['v', d], ['i', d]], ['m', 'h', 'r', 'rv'], (f) =>
    withRepo<MinerCommit>(
      {
        b: f.b as number | null, e: f.e as number | null, m: f.m as string | null, h: f.h as string | null,
        v: f.v as number | null, i: f.i as number | null,
      },
      f,
    ),
  );
}

/** `ValidatorChainCommit` (all fields default null; HEAD readers map a missing `s` to 0 themselves). */
export function decodeValidatorCommit(raw: string | Uint8Array): CommitDecodeResult<ValidatorCommit> {
  return decodeFields(raw, [['v', null], ['e', null], ['s', null], ['b', null]], ['m', 'h', 'r', 'rv'], (f) =>
    withRepo<ValidatorCommit>(
      {
        m: f.m as string | null, h: f.h as string | null, v: f.v as number | null,
        e: f.e as number | null, s: f.s as number | null, b: f.b as number | null,
      },
      f,
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Role gating (§2.4) and the parse of one `get_all_commitments` snapshot.

export interface RoleGateInput {
  hotkey: string;
  /** The owner API's validator whitelist (empty on API failure: everybody is then a miner). */
  whitelist: ReadonlySet<string>;
  /** `metagraph.neurons[uid].last_update`. */
  lastUpdate: number;
  /** The queried block (or the head). */
  currentBlock: number;
  /** Config `cycle.cycle_length` (448) — the weight-freshness window, not the phase cycle. */
  freshnessBlocks?: number;
}

/** A hotkey's commit is parsed as a validator's iff whitelisted and its weights are fresh. */
export function commitRole(i: RoleGateInput): 'validator' | 'miner' {
  const fresh = i.currentBlock - i.lastUpdate <= Math.trunc(i.freshnessBlocks ?? 448);
  return i.whitelist.has(i.hotkey) && fresh ? 'validator' : 'miner';
}

export type ParsedCommit =
  | { kind: 'validator'; commit: ValidatorCommit }
  | { kind: 'miner'; commit: MinerCommit }
  | { kind: 'signature'; commit: SignedModelHashCommit };

export interface ParsedCommitEntry {
  hotkey: string;
  /** null when the payload did not parse (the entry is still returned, like the reference). */
  parsed: ParsedCommit | null;
  error: ProtocolError | null;
}

/**
 * `get_chain_commits` without the chain: parse a snapshot in enumeration order (that order decides
 * assignment ties, §3.3). `signatureCommit` reads every payload as `{m}`; otherwise `role(hotkey)`
 * picks the schema (see `commitRole`).
 */
export function parseCommitSnapshot(
  snapshot: ReadonlyArray<{ hotkey: string; payload: string | Uint8Array }>,
  opts: { signatureCommit: true } | { signatureCommit?: false; role: (hotkey: string) => 'validator' | 'miner'; head?: boolean },
): ParsedCommitEntry[] {
  return snapshot.map(({ hotkey, payload }): ParsedCommitEntry => {
    const entry = <C>(r: CommitDecodeResult<C>, wrap: (commit: C) => ParsedCommit): ParsedCommitEntry =>
      r.ok ? { hotkey, parsed: wrap(r.value), error: null } : { hotkey, parsed: null, error: r.error };
    if (opts.signatureCommit) return entry(decodeSignatureCommit(payload), (commit) => ({ kind: 'signature', commit }));
    if (opts.role(hotkey) === 'validator') return entry(decodeValidatorCommit(payload), (commit) => ({ kind: 'validator', commit }));
    return entry(decodeMinerCommit(payload, { head: opts.head ?? false }), (commit) => ({ kind: 'miner', commit }));
  });
}
