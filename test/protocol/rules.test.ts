// Behaviour beyond the golden vectors: garbage commits, budgets, role gating, owner-API schedules,
// expert groups (against the shipped expert_groups/exp_math), SS58 and encodings edge cases.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sr25519PairFromSeed } from '@polkadot/util-crypto';
import { describe, expect, it } from 'vitest';
import {
  CBF3C65_PHASE_LENGTHS,
  HEAD_PHASE_LENGTHS,
  MAX_COMMIT_BYTES,
  ProtocolError,
  allowedExpertIds,
  allowedVersionRange,
  assignMinersToValidators,
  assignedValidator,
  base64UrlNoPad,
  blocksUntilNextPhase,
  cbf3c65ExpMathAssignment,
  checkExpertGroup,
  commitRole,
  comparePy,
  decodeMinerCommit,
  decodeSignatureCommit,
  decodeValidatorCommit,
  encodeHeadMinerCommit2,
  encodeMinerCommit1,
  encodeMinerCommit2,
  expertGroupKeys,
  fromBase64UrlNoPad,
  fromHex,
  getLayerExpertId,
  isExpertParam,
  localExpertIds,
  parseCommitSnapshot,
  parseExpertAssignment,
  phaseAt,
  pyFloatRepr,
  scheduleFromLengths,
  scheduleFromOwnerRoot,
  signModelHash,
  ss58Decode,
  ss58Encode,
  verifyModelHash,
} from '../../src/protocol/index.js';

const HASH = '28e92acfd4508dbdacfd7beb934df27dc466d3f99b0ede38';
const SIG = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-Pw';

describe('chain commits', () => {
  it('decoding garbage returns a typed error and never throws', () => {
    const garbage: Array<string | Uint8Array> = [
      '', 'null', '[]', '"m"', '{', '{"m": 5}', '{"b": "x"}', '{"b": 1.5}', '{"e": true}', '{"h": []}',
      new Uint8Array([0xff, 0xfe, 0x00]), 'x'.repeat(200000), '{"v": 1e300}', '{"s": {"a": 1}}',
    ];
    for (const g of garbage) {
      for (const decode of [decodeSignatureCommit, decodeMinerCommit, decodeValidatorCommit]) {
        const r = decode(g);
        if (!r.ok) {
          expect(r.error).toBeInstanceOf(ProtocolError);
          expect(r.error.code).toBe('CNM_ERR_COMMIT_DECODE');
        }
      }
    }
    expect(decodeMinerCommit('{"b": 1.5}').ok).toBe(false);
    expect(decodeMinerCommit('{"e": true}').ok).toBe(false);
    expect(decodeSignatureCommit('{"m": 5}').ok).toBe(false);
    // pydantic-style lax ints, unknown keys ignored, defaults applied
    expect(decodeMinerCommit('{"b": "12", "e": 3.0, "zz": 1}')).toEqual({ ok: true, value: { b: 12, e: 3, m: null, h: null, v: 0, i: 0 } });
    expect(decodeValidatorCommit('{}')).toEqual({ ok: true, value: { m: null, h: null, v: null, e: null, s: null, b: null } });
    // a miner's commit 1 read with the miner schema has e = null (excluded from assignment)
    expect(decodeMinerCommit(encodeMinerCommit1(SIG))).toEqual({ ok: true, value: { b: null, e: null, m: SIG, h: null, v: 0, i: 0 } });
  });

  it('checks the 128-byte budget and field shapes when encoding', () => {
    const long = encodeHeadMinerCommit2({ e: 0, h: HASH, v: 7099968, r: 'abcdefghijklmnop/qrstuvwxyz01234', rv: '1a2b3c4' });
    expect(Buffer.byteLength(long)).toBe(MAX_COMMIT_BYTES);
    expect(() => encodeHeadMinerCommit2({ e: 0, h: HASH, v: 70999680, r: 'abcdefghijklmnop/qrstuvwxyz01234', rv: '1a2b3c4' })).toThrow(/129 bytes/);
    expect(() => encodeHeadMinerCommit2({ e: 0, h: HASH, v: 1, r: 'a'.repeat(33) })).toThrow(/longer than 32/);
    expect(() => encodeMinerCommit2({ b: 1, e: 0, h: HASH.toUpperCase(), v: 1, i: 1 })).toThrow(ProtocolError);
    expect(() => encodeMinerCommit2({ b: 1.5, e: 0, h: HASH, v: 1, i: 1 })).toThrow(/integer/);
    expect(() => encodeMinerCommit1('short')).toThrow(/86-character/);
    expect(encodeMinerCommit2({ b: 7100133, e: 0, h: HASH })).toBe(`{"b": 7100133, "e": 0, "m": null, "h": "${HASH}", "v": 0, "i": 0}`);
  });

  it('gates roles as §2.4: whitelisted AND fresh weights; snapshot parse keeps order and bad entries', () => {
    const wl = new Set(['V1']);
    expect(commitRole({ hotkey: 'V1', whitelist: wl, lastUpdate: 1000, currentBlock: 1448 })).toBe('validator');
    expect(commitRole({ hotkey: 'V1', whitelist: wl, lastUpdate: 1000, currentBlock: 1449 })).toBe('miner');
    expect(commitRole({ hotkey: 'M1', whitelist: wl, lastUpdate: 1000, currentBlock: 1000 })).toBe('miner');
    expect(commitRole({ hotkey: 'V1', whitelist: new Set(), lastUpdate: 1000, currentBlock: 1000 })).toBe('miner');
    const snap = [
      { hotkey: 'M1', payload: `{"b": 5, "e": 0, "m": null, "h": "${HASH}", "v": 9, "i": 2}` },
      { hotkey: 'V1', payload: '{"m": null, "h": null, "v": 9, "e": 0, "s": 4711, "b": 7}' },
      { hotkey: 'X', payload: 'not json' },
    ];
    const parsed = parseCommitSnapshot(snap, { role: (hk) => (hk === 'V1' ? 'validator' : 'miner') });
    expect(parsed.map((p) => [p.hotkey, p.parsed?.kind ?? null])).toEqual([['M1', 'miner'], ['V1', 'validator'], ['X', null]]);
    expect(parsed[2]!.error?.code).toBe('CNM_ERR_COMMIT_DECODE');
    expect(parseCommitSnapshot(snap, { signatureCommit: true }).map((p) => p.parsed?.kind ?? null)).toEqual(['signature', 'signature', null]);
  });
});

describe('signatures', () => {
  it('commit-1 signatures made with a real key verify only for that hash and key', () => {
    const pair = sr25519PairFromSeed(new Uint8Array(32).fill(1));
    const me = ss58Encode(pair.publicKey);
    const sig = signModelHash(pair, HASH);
    expect(sig).toHaveLength(86);
    expect(verifyModelHash(me, HASH, sig)).toBe(true);
    expect(verifyModelHash(me, HASH.replace('2', '3'), sig)).toBe(false);
    expect(verifyModelHash(me, HASH.toUpperCase(), sig)).toBe(false);
    expect(verifyModelHash(ss58Encode(new Uint8Array(32).fill(2)), HASH, sig)).toBe(false);
    expect(verifyModelHash('not-an-address', HASH, sig)).toBe(false);
    expect(verifyModelHash(me, HASH, 'A'.repeat(86))).toBe(false);
    expect(verifyModelHash(me, HASH, sig + '!')).toBe(false);
  });

  it('strict encodings', () => {
    expect(() => fromHex('abc')).toThrow(ProtocolError);
    expect(() => fromHex('zz')).toThrow(ProtocolError);
    expect(() => fromBase64UrlNoPad('ab+/')).toThrow(ProtocolError);
    expect(() => fromBase64UrlNoPad('AB')).toThrow(/non-canonical/);
    expect(base64UrlNoPad(fromBase64UrlNoPad('AA'))).toBe('AA');
    expect(() => ss58Decode('5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKut0Y')).toThrow(/base58/);
    expect(() => ss58Decode('5Grwva')).toThrow(ProtocolError);
    expect(() => ss58Decode('5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY', 0)).toThrow(/prefix 42/);
  });
});

describe('phases', () => {
  it('builds the schedule from the owner service "/" response', () => {
    const root = {
      message: 'Phase service is running', cycle_length: 500, usage: 'GET /phase?block_height=123',
      phases: scheduleFromLengths(HEAD_PHASE_LENGTHS).phases.map((p) => ({ index: p.index, name: p.name, length: p.length })).reverse(),
    };
    const s = scheduleFromOwnerRoot(root);
    expect(s).toEqual(scheduleFromLengths(HEAD_PHASE_LENGTHS));
    expect(() => scheduleFromOwnerRoot({ ...root, cycle_length: 472 })).toThrow(/sum to 500/);
    expect(() => scheduleFromOwnerRoot({ ...root, phases: [{ index: 0, name: 'Sleep', length: 3 }] })).toThrow(/unknown phase/);
    expect(() => scheduleFromOwnerRoot('nope')).toThrow(ProtocolError);
    expect(() => phaseAt(s, -1)).toThrow(ProtocolError);
  });

  it('matches the §1.4 worked example and the version window of §1.5', () => {
    const s = scheduleFromLengths(CBF3C65_PHASE_LENGTHS);
    expect(phaseAt(s, 7100017)).toMatchObject({ cycle_index: 15042, phase_name: 'Train', blocks_remaining_in_phase: 126 });
    expect(blocksUntilNextPhase(s, 7100017).Train).toEqual([7100316, 7100615, 299]);
    expect(allowedVersionRange(null, null)).toBeNull();
    const mc1 = phaseAt(s, 7100150);
    expect(mc1.phase_name).toBe('MinerCommit1');
    expect(allowedVersionRange(mc1, null)).toEqual({ max: 7100144, min: 7100144 - 3 * 472 });
  });
});

describe('assignment helpers', () => {
  it('finds the assigned validator and sorts like Python', () => {
    const a = assignMinersToValidators([['V1', 1], ['V2', 2]], ['M1', 'M2', 'M3']);
    const all = [...a.values()].flat().sort();
    expect(all).toEqual(['M1', 'M2', 'M3']);
    for (const m of all) expect(a.get(assignedValidator(a, m)!)).toContain(m);
    expect(assignedValidator(a, 'nobody')).toBeNull();
    expect(['\u{1F600}', '\uFF01', 'a'].sort(comparePy)).toEqual(['a', '\uFF01', '\u{1F600}']);
    expect(pyFloatRepr(1e-7)).toBe('1e-07');
    expect(pyFloatRepr(1e16)).toBe('1e+16');
    expect(pyFloatRepr(123.25)).toBe('123.25');
    expect(pyFloatRepr(0.0001)).toBe('0.0001');
  });
});

describe('expert groups', () => {
  const shipped = readFileSync(join(import.meta.dirname, '../../expert_groups/exp_math/expert_assignment.json'), 'utf8');

  it('the shipped exp_math file is the cbf3c65 assignment', () => {
    const a = parseExpertAssignment(shipped);
    expect(a).toEqual(cbf3c65ExpMathAssignment());
    expect(a.get(3)).toEqual([[0, 24], [1, 25], [2, 26], [3, 27], [4, 28], [5, 29], [6, 30], [7, 31]]);
    expect(localExpertIds(a, 9)).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    expect([...allowedExpertIds(a, 1)].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(expertGroupKeys(a, [1, 2])).toHaveLength(32);
    expect(readFileSync(join(import.meta.dirname, '../../expert_groups/exp_math/config.yaml'), 'utf8')).toMatch(/^group_id: 0$/m);
  });

  it('rejects malformed assignment files with the reason', () => {
    expect(() => parseExpertAssignment('{"x": []}')).toThrow(/not a decimal integer/);
    expect(() => parseExpertAssignment('{"1": [[0, 1], [0, 2]]}')).toThrow(/my_id 0 is used twice/);
    expect(() => parseExpertAssignment('{"1": [[0]]}')).toThrow(/\[my_id, org_id\]/);
    expect(() => parseExpertAssignment('[')).toThrow(/not valid JSON/);
  });

  it('parses names like get_layer_expert_id / is_expert_param (§8.3)', () => {
    expect(getLayerExpertId('model.layers.3.mlp.experts.7.gate_up_proj')).toEqual([3, 7]);
    expect(getLayerExpertId('model.layers.3.mlp.experts.gate_up_proj')).toEqual([3, null]);
    expect(getLayerExpertId('model.layers.5.mlp.gate.weight')).toEqual([5, null]);
    expect(getLayerExpertId('model.layers.5.mlp.shared_experts.up_proj.weight')).toEqual([5, null]);
    expect(getLayerExpertId('lm_head.weight')).toEqual([null, null]);
    expect(getLayerExpertId('model.layers.\u0661\u0662.mlp.experts.\u0663.x')).toEqual([12, 3]); // Python \d
    expect(isExpertParam('model.layers.1.mlp.experts.8.down_proj')).toBe(true);
    expect(isExpertParam('model.layers.1.mlp.shared_experts.down_proj.weight')).toBe(false);
  });

  it('the validator expert-group check of §5.2(c)', () => {
    const a = cbf3c65ExpMathAssignment();
    const ok = (keys: string[], finite = true) => checkExpertGroup(keys.map((key) => ({ key, finite })), a);
    expect(ok(['model.layers.1.mlp.experts.8.gate_up_proj', 'model.norm.weight'])).toEqual({ ok: true });
    expect(ok(['model.layers.1.mlp.experts.3.gate_up_proj'])).toEqual({ ok: true }); // local id accepted
    expect(ok(['model.layers.1.mlp.experts.16.gate_up_proj']).ok).toBe(false);
    expect(ok(['model.layers.1.mlp.experts.8.gate_up_proj'], false).ok).toBe(false);
    expect(ok(['model.norm.weight']).ok).toBe(false);
    expect(checkExpertGroup([{ key: 'model.layers.1.mlp.experts.8.x', finite: true }, { key: 'lm_head.weight', finite: true }], a, { rejectNonExpert: true }).ok).toBe(false);
  });
});
