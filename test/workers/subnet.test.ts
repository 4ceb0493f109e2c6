// The chain views of src/workers/subnet.ts (PROTOCOL.md §2.3, §2.4, §3.1) as pure functions over
// commitment snapshots and a metagraph: role gating, the join of the two snapshots, the filters,
// the stake-weighted majority and the assignment inputs — in the enumeration order of the chain.
import { describe, expect, it } from 'vitest';
import type { CommitmentRecord, Metagraph, Neuron } from '../../src/chain/types.js';
import { encodeMinerCommit1, encodeMinerCommit2, encodeValidatorCommit } from '../../src/protocol/commits.js';
import {
  filterChainCheckpoints,
  gateCommitments,
  joinChainCheckpoints,
  majorityHash,
  minersOf,
  snapshotBlocks,
  validatorSeedsOf,
  validatorSet,
} from '../../src/workers/subnet.js';
import { scheduleFromLengths } from '../../src/protocol/phases.js';

// Real SS58 addresses (dev keys), so nothing here depends on how hotkeys look.
const V1 = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const V2 = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const V3 = '5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y';
const M1 = '5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy';
const M2 = '5HGjWAeFDfFCWPsjFQdVV2Msvz2XtMktvgocEZcCj68kUMaw';
const GONE = '5CiPPseXPECbkjWCa6MnjNokrgYjMqmKndv2rSnekmSK2DjL';

const sig = (c: string) => c.repeat(86);
const H = (c: string) => c.repeat(48);

function neuron(uid: number, hotkey: string, o: Partial<Neuron> = {}): Neuron {
  return {
    uid, hotkey, coldkey: hotkey, active: true, lastUpdate: 990, validatorPermit: false, stake: 0n, incentive: 0,
    axon: { ip: '10.0.0.' + uid, port: 8000 + uid, ipType: 4, protocol: 4, version: 0, block: 1 }, ...o,
  };
}
const mg: Metagraph = {
  netuid: 102, block: 1000, blockHash: '0x',
  neurons: [
    neuron(0, V1, { validatorPermit: true, stake: 10n }),
    neuron(1, V2, { validatorPermit: true, stake: 30n }),
    neuron(2, V3, { validatorPermit: true, stake: 50n, lastUpdate: 100 }), // weights 900 blocks old: stale
    neuron(3, M1),
    neuron(4, M2, { axon: { ip: '0.0.0.0', port: 0, ipType: 0, protocol: 0, version: 0, block: 0 } }),
  ],
};
const rec = (hotkey: string, data: string | null, block = 1): CommitmentRecord => ({ hotkey, block, data, field: data === null ? 'Sha256' : `Raw${Buffer.byteLength(data ?? '')}` });

describe('chain checkpoints from two snapshots', () => {
  const whitelist = new Set([V1, V2, V3]);
  const gate = { validators: whitelist, freshnessBlocks: 448 };

  it('role gating: whitelisted and fresh → validator payload; stale or not listed → miner payload; unknown hotkeys dropped; garbage kept as unreadable', () => {
    const b2 = [
      rec(V2, encodeValidatorCommit({ h: H('b'), v: 500, e: 0, s: 0, b: 990 })),
      rec(GONE, encodeValidatorCommit({ h: H('c'), v: 500, e: 0, s: 0, b: 990 })),
      rec(V3, encodeValidatorCommit({ h: H('d'), v: 500, e: 0, s: 0, b: 990 })),
      rec(M1, '{"b": 1, "e": 0'),
      rec(V1, encodeValidatorCommit({ h: H('a'), v: 500, e: 0, s: 7, b: 990 })),
      rec(M2, encodeMinerCommit2({ b: 995, e: 0, h: H('e'), v: 500, i: 12 })),
    ];
    const g = gateCommitments(b2, mg, 1000, gate);
    expect(g.map((x) => [x.hotkey, x.kind])).toEqual([
      [V2, 'validator'],
      [V3, 'miner'],
      [M1, 'unreadable'],
      [V1, 'validator'],
      [M2, 'miner'],
    ]);
    const b1 = [rec(V1, encodeMinerCommit1(sig('x'))), rec(V2, encodeMinerCommit1(sig('y'))), rec(V3, encodeMinerCommit1(sig('z'))), rec(M2, encodeMinerCommit1(sig('w')))];
    const all = joinChainCheckpoints(b1, g);
    expect(all.map((c) => [c.hotkey, c.signedModelHash?.[0], c.modelHash?.[0], c.minerSeed, c.innerOpt, c.uid])).toEqual([
      [V2, 'y', 'b', 0, null, 1],
      [V3, 'z', 'd', null, 0, 2], // parsed as a miner payload: no seed; i defaults to 0 (cbf3c65)
      [V1, 'x', 'a', 7, null, 0],
      [M2, 'w', 'e', null, 12, 4],
    ]);
    // Validator role needs the seed; the version window applies to both roles.
    expect(filterChainCheckpoints(all, 'validator', { min: 0, max: 500 }).map((c) => c.hotkey)).toEqual([V2, V1]);
    expect(filterChainCheckpoints(all, 'validator', { min: 0, max: 499 })).toEqual([]);
    // Miner role: an un-served axon is not missing data.
    expect(filterChainCheckpoints(all, 'miner', { min: 0, max: 500 }).map((c) => c.hotkey)).toEqual([V2, V3, V1, M2]);
    // Stake-weighted majority: b (30) beats a (10); on a tie the first hash in order wins.
    const v = filterChainCheckpoints(all, 'validator', null);
    expect(majorityHash(v)).toBe(H('b'));
    expect(majorityHash(v.map((c) => ({ ...c, stake: 5n })))).toBe(H('b'));
    expect(majorityHash([...v].reverse().map((c) => ({ ...c, stake: 5n })))).toBe(H('a'));
  });

  it('a signature snapshot only counts non-empty m; the second snapshot decides what is joined', () => {
    const g = gateCommitments([rec(M1, encodeMinerCommit2({ b: 1, e: 0, h: H('f'), v: 3, i: 1 }))], mg, 1000, gate);
    expect(joinChainCheckpoints([rec(M1, '{"m": null}')], g)[0]!.signedModelHash).toBeNull();
    expect(joinChainCheckpoints([rec(M1, '{"m": ""}')], g)[0]!.signedModelHash).toBeNull();
    expect(joinChainCheckpoints([], g)[0]!.signedModelHash).toBeNull();
    expect(filterChainCheckpoints(joinChainCheckpoints([], g), 'miner', null)).toEqual([]);
  });

  it('assignment inputs at the head: validator seeds of our group in commit order; miners of our group', () => {
    const head = [
      rec(V2, encodeValidatorCommit({ h: null, v: 700, e: 0, s: 4242, b: 700 })),
      rec(M2, encodeMinerCommit2({ b: 710, e: 0, h: H('1'), v: 500, i: 3 })),
      rec(V1, encodeValidatorCommit({ h: null, v: 700, e: 1, s: 1, b: 700 })), // another group
      rec(M1, encodeMinerCommit1(sig('q'))), // still the signature payload: e is null
    ];
    const g = gateCommitments(head, mg, 1000, { validators: new Set([V1, V2]), freshnessBlocks: 448 });
    expect(validatorSeedsOf(g, 0)).toEqual([[V2, 4242]]);
    expect(validatorSeedsOf(g, 1)).toEqual([[V1, 1]]);
    expect(minersOf(g, 0)).toEqual([M2]);
  });

  it('without an owner whitelist, validator permits stand in for it', () => {
    expect([...validatorSet(null, mg)]).toEqual([V1, V2, V3]);
    expect([...validatorSet([M1], mg)]).toEqual([M1]);
  });

  it('snapshot blocks are the first blocks after the last completed commit phases', () => {
    const s = scheduleFromLengths({ distribute: 20, train: 300, commit: 8, submission: 20, validate: 50, merge: 50 }); // L = 472
    // In Submission of cycle 15042: this cycle's MinerCommit1/2 (7100144-51, 7100152-59).
    expect(snapshotBlocks(s, 7_100_165, 'miner')).toEqual({ b1: 7_100_152, b2: 7_100_160, inCommitPhase: false });
    // In Distribute: the previous cycle's ValidatorCommit1/2.
    expect(snapshotBlocks(s, 472 * 10 + 3, 'validator')).toEqual({ b1: 472 * 10 - 8, b2: 472 * 10, inCommitPhase: false });
    expect(snapshotBlocks(s, 472 * 10 + 325, 'miner').inCommitPhase).toBe(true);
  });
});
