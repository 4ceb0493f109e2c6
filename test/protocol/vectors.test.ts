// Every golden vector file in test/fixtures/vectors reproduces exactly. The suite iterates over the
// directory: a vector file without a checker below fails the run, so new vectors cannot be skipped.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeAddress } from '@polkadot/util-crypto';
import { describe, expect, it } from 'vitest';
import {
  type PhaseName,
  PHASE_NAMES,
  allowedVersionRangeAt,
  assignMinersToValidatorsTraced,
  base64UrlNoPad,
  blockMessage,
  blocksUntilNextPhase,
  combinedValidatorSeed,
  cosineWithWarmupMultiplier,
  datasetSelectionThreshold,
  decodeMinerCommit,
  decodeSignatureCommit,
  decodeValidatorCommit,
  downloadMessage,
  encodeHeadMinerCommit1,
  encodeHeadMinerCommit2,
  encodeMinerCommit1,
  encodeMinerCommit2,
  encodeValidatorCommit,
  fromBase64UrlNoPad,
  h256Int,
  h256Preimage,
  interleaveIntSeed,
  keepDatasetIndex,
  modelHash,
  modelHashHex,
  modelHashMessage,
  parseDynamicFilename,
  phaseAt,
  previousPhaseRanges,
  pyStr,
  scheduleFromLengths,
  scheduleFromPhases,
  serializeStateDict,
  sortedKeys,
  ss58Decode,
  ss58Encode,
  submissionMessage,
  toHex,
  verifyMessage,
  verifyModelHash,
  fromHex,
} from '../../src/protocol/index.js';
import { type DType, type StateDict, tensorFromValues } from '../../src/checkpoint/tensor.js';

const DIR = join(import.meta.dirname, '../fixtures/vectors');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
const load = (f: string): Json => JSON.parse(readFileSync(join(DIR, f), 'utf8'));

function flat(v: Json): number[] {
  return Array.isArray(v) ? v.flatMap(flat) : [v];
}

/** A state dict built from the vector's *values* (so dtype rounding is checked too). */
function stateDictFromCase(c: Json): StateDict {
  const sd: StateDict = new Map();
  for (const t of c.state_dict_in_insertion_order) {
    const tensor = tensorFromValues(t.dtype as DType, t.shape, flat(t.values));
    expect(toHex(tensor.data), `${c.name}/${t.key} raw bytes`).toBe(t.raw_le_hex);
    sd.set(t.key, tensor);
  }
  return sd;
}

const checkers: Record<string, (v: Json) => void> = {
  'phases.json': (v) => {
    for (const [label, table] of Object.entries<Json>(v)) {
      const s = scheduleFromPhases(table.phases);
      expect(s.cycleLength, label).toBe(table.cycle_length);
      if (label === 'cbf3c65_defaults') expect(scheduleFromLengths({ distribute: 20, train: 300, commit: 8, submission: 20, validate: 50, merge: 50 })).toEqual(s);
      for (const c of table.cases) {
        expect(phaseAt(s, c.block), `${label} get_phase(${c.block})`).toEqual(c.get_phase);
        const next = blocksUntilNextPhase(s, c.block);
        expect(next, `${label} blocks_until_next_phase(${c.block})`).toEqual(c.blocks_until_next_phase);
        expect(Object.keys(next)).toEqual(Object.keys(c.blocks_until_next_phase));
        expect(previousPhaseRanges(s, c.block), `${label} previous_phase_blocks(${c.block})`).toEqual(c.previous_phase_blocks);
        // allowed version range as the reference derives it from those two answers (§1.5)
        const r = allowedVersionRangeAt(s, c.block);
        const mc1Now = c.get_phase.phase_name === 'MinerCommit1';
        const max = mc1Now ? c.get_phase.phase_start_block : c.previous_phase_blocks.MinerCommit1[0];
        expect(r).toEqual({ max, min: max - 3 * table.cycle_length });
      }
    }
  },
  'chain_commits.json': (v) => {
    const sig = v.cbf3c65.miner_commit_1.payload.match(/"m": "([^"]+)"/)[1];
    const check = (payload: string, c: Json) => {
      expect(payload).toBe(c.payload);
      expect(Buffer.byteLength(payload)).toBe(c.utf8_bytes);
    };
    check(encodeMinerCommit1(sig), v.cbf3c65.miner_commit_1);
    const mc2 = JSON.parse(v.cbf3c65.miner_commit_2.payload);
    check(encodeMinerCommit2(mc2), v.cbf3c65.miner_commit_2);
    for (const k of ['validator_commit_miner_commit1_phase', 'validator_commit_2']) {
      check(encodeValidatorCommit(JSON.parse(v.cbf3c65[k].payload)), v.cbf3c65[k]);
      const d = decodeValidatorCommit(v.cbf3c65[k].payload);
      expect(d.ok && d.value).toEqual(JSON.parse(v.cbf3c65[k].payload));
    }
    check(encodeHeadMinerCommit1(sig), v.HEAD.miner_commit_1);
    check(encodeHeadMinerCommit2(JSON.parse(v.HEAD.miner_commit_2.payload)), v.HEAD.miner_commit_2);
    check(encodeHeadMinerCommit2(JSON.parse(v.HEAD.miner_commit_2_no_hf.payload)), v.HEAD.miner_commit_2_no_hf);
    // decoding round trip
    const d1 = decodeSignatureCommit(v.cbf3c65.miner_commit_1.payload);
    expect(d1.ok && d1.value).toEqual({ m: sig });
    const d2 = decodeMinerCommit(v.cbf3c65.miner_commit_2.payload);
    expect(d2.ok && d2.value).toEqual(mc2);
    const d3 = decodeMinerCommit(v.HEAD.miner_commit_2.payload, { head: true });
    expect(d3.ok && d3.value).toEqual({ b: null, m: null, i: null, ...JSON.parse(v.HEAD.miner_commit_2.payload) });
  },
  'h256_int.json': (v) => {
    for (const c of v.cases) {
      expect(c.parts.map(pyStr)).toEqual(c.part_reprs);
      expect(toHex(h256Preimage(...c.parts))).toBe(c.preimage_hex);
      const n = h256Int(...c.parts);
      expect(n.toString(16).padStart(64, '0')).toBe(c.sha256_hex);
      expect(n.toString()).toBe(c.h256_int_decimal);
    }
  },
  'combined_seed.json': (v) => {
    for (const c of v.cases) {
      const seeds = new Map(Object.entries<number | null>(c.validator_seeds));
      expect(combinedValidatorSeed(seeds)).toBe(c.combined_seed_hex);
      if (c.interleave_int_seed !== undefined) expect(interleaveIntSeed(c.combined_seed_hex)).toBe(c.interleave_int_seed);
    }
    const f = v.dataset_fraction_filter;
    expect(datasetSelectionThreshold(f.vali_fraction).toString()).toBe(f.threshold_decimal);
    for (const s of f.samples) {
      expect(h256Int('dataset_selection', String(s.idx), f.seed).toString()).toBe(s.score_decimal);
      expect(keepDatasetIndex(s.idx, f.seed, f.vali_fraction)).toBe(s.kept);
    }
  },
  'assign_miners_to_validators.json': (v) => {
    for (const c of v.cases) {
      const validators = c.validator_insertion_order
        ? c.validator_insertion_order.map((hk: string) => [hk, c.validators[hk]] as [string, number])
        : Object.entries<number>(c.validators);
      const r = assignMinersToValidatorsTraced(validators, c.miners, c.max_miners_per_validator);
      expect(Object.fromEntries(r.assignment), c.name).toEqual(c.expected_assignment);
      expect([...r.assignment.keys()], c.name).toEqual(Object.keys(c.expected_assignment));
      const d = c.debug;
      if (!d || Object.keys(d).length === 0) continue;
      if (d.combined_seed) expect(r.combinedSeed, c.name).toBe(d.combined_seed);
      if (d.capacities_initial) expect(Object.fromEntries(r.capacitiesInitial), c.name).toEqual(d.capacities_initial);
      if (d.bonus_ranking) expect(r.bonusRanking, c.name).toEqual(d.bonus_ranking);
      if (d.miner_order) expect(r.minerOrder, c.name).toEqual(d.miner_order);
      if (d.trace) {
        expect(r.trace.map((t) => ({ miner: t.miner, preferences: t.preferences, assigned_to: t.assignedTo, overflow: t.overflow })), c.name).toEqual(d.trace);
      }
    }
  },
  'block_message.json': (v) => {
    for (const c of v.cases) {
      const m = blockMessage(c.target_hotkey_ss58, c.block);
      expect(m.length).toBe(c.length);
      expect(toHex(m)).toBe(c.message_hex);
    }
  },
  'ss58.json': (v) => {
    for (const c of v.cases) {
      const d = ss58Decode(c.ss58);
      expect(d.prefix).toBe(c.prefix);
      expect(toHex(d.publicKey)).toBe(c.public_key_hex);
      expect(toHex(d.checksum)).toBe(c.checksum_hex);
      expect(ss58Encode(d.publicKey, d.prefix)).toBe(c.ss58);
      expect(toHex(decodeAddress(c.ss58))).toBe(c.public_key_hex); // independent implementation agrees
    }
    expect(v.bad_checksum_example.must_reject).toBe(true);
    expect(() => ss58Decode(v.bad_checksum_example.ss58)).toThrow(/checksum/);
  },
  'model_hash.json': async (v) => {
    for (const c of v.cases) {
      const sd = stateDictFromCase(c);
      expect(sortedKeys(sd)).toEqual(c.sorted_keys);
      const chunks: Uint8Array[] = [];
      for await (const ch of serializeStateDict(sd)) chunks.push(Uint8Array.from(ch));
      const pre = Buffer.concat(chunks);
      expect(pre.length).toBe(c.serialized_length);
      expect(pre.toString('hex')).toBe(c.serialized_hex);
      expect(await modelHashHex(sd)).toBe(c.model_hash_hex);
      expect((await modelHash(sd)).length).toBe(24);
      expect(toHex(modelHashMessage(c.model_hash_hex))).toBe(c.sign_hash_message_utf8_hex);
    }
  },
  'signature_encoding.json': (v) => {
    const raw = fromHex(v.fake_signature_hex);
    expect(base64UrlNoPad(raw)).toBe(v.fake_signature_b64url_nopad);
    expect(base64UrlNoPad(raw)).toHaveLength(86);
    expect(toHex(fromBase64UrlNoPad(v.fake_signature_b64url_nopad))).toBe(v.decoded_back_hex);
    const c1 = v.miner_commit_1_signed_message;
    expect(toHex(modelHashMessage(c1.model_hash_hex))).toBe(c1.message_bytes_hex);
    const s = v.submit_model_signed_message;
    const msg = submissionMessage(fromHex(s.model_hash_raw_hex), s.target, s.block);
    expect(msg.length).toBe(s.length);
    expect(toHex(msg)).toBe(s.message_bytes_hex);
    expect(toHex(submissionMessage(s.model_hex_form_field, s.target, s.block))).toBe(s.message_bytes_hex);
    expect(toHex(blockMessage(s.target, s.block))).toBe(s.block_hex_form_field);
    const dl = v.download_request_signed_message;
    expect(toHex(downloadMessage(dl.target, dl.block))).toBe(dl.message_bytes_hex);
  },
  'sr25519_examples.json': (v) => {
    for (const e of v.examples) {
      expect(toHex(ss58Decode(e.signer_ss58).publicKey)).toBe(e.signer_pubkey_hex);
      expect(base64UrlNoPad(fromHex(e.signature_hex))).toBe(e.signature_b64url_nopad);
      const msg = fromHex(e.message_hex);
      expect(verifyMessage(e.signer_ss58, msg, e.signature_b64url_nopad), e.label).toBe(e.verifies);
      // a flipped message bit or another signer must not verify
      const flipped = Uint8Array.from(msg);
      flipped[0]! ^= 1;
      expect(verifyMessage(e.signer_ss58, flipped, e.signature_b64url_nopad)).toBe(false);
      expect(verifyMessage('5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty', msg, e.signature_b64url_nopad)).toBe(false);
      if (e.label.startsWith('miner_commit_1')) {
        expect(verifyModelHash(e.signer_ss58, Buffer.from(msg).toString('utf8'), e.signature_b64url_nopad)).toBe(true);
      }
    }
  },
  'filenames.json': (v) => {
    for (const c of v.cases) {
      const got = parseDynamicFilename(c.input);
      expect(got, c.input).toEqual(c.parsed);
      expect(Object.keys(got)).toEqual(Object.keys(c.parsed));
    }
  },
  'lr_schedule.json': (v) => {
    for (const c of v.cases) {
      const m = cosineWithWarmupMultiplier(c.step, c.warmup, c.total);
      expect(m, `warmup ${c.warmup} total ${c.total} step ${c.step}`).toBe(c.multiplier);
      expect(1e-5 * m).toBe(c.lr);
    }
  },
};

describe('golden vectors (test/fixtures/vectors)', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

  it('has a checker for every vector file and a file for every checker', () => {
    expect(files.length).toBeGreaterThanOrEqual(12);
    expect(files.filter((f) => !checkers[f])).toEqual([]);
    expect(Object.keys(checkers).filter((k) => !files.includes(k))).toEqual([]);
  });

  for (const f of files) {
    it(`reproduces ${f}`, async () => {
      const checker = checkers[f];
      expect(checker, `no checker for ${f}`).toBeDefined();
      await checker!(load(f));
    });
  }

  it('phase names are the wire strings in order', () => {
    const s = scheduleFromPhases(load('phases.json').HEAD_defaults.phases);
    expect(s.phases.map((p) => p.name)).toEqual([...PHASE_NAMES]);
    const n: PhaseName = 'MinerCommit1';
    expect(PHASE_NAMES).toContain(n);
  });
});
