// The production chain client against the devnode (real subtensor metadata, real @polkadot/api):
// commitments written and read back byte-exact, in storage-key order, at past blocks; the metagraph
// and axons as the genesis says; serve_axon; every way a transaction can fail, with its reason.
import { randomBytes } from 'node:crypto';
import type { KeyringPair } from '@polkadot/keyring/types';
import { u8aToHex } from '@polkadot/util';
import { blake2AsHex, decodeAddress, encodeAddress, xxhashAsU8a } from '@polkadot/util-crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChainClient,
  ChainTxError,
  decodeCommitments,
  loadWallet,
  readableCommitments,
  type ChainMetricsSink,
  type Wallet,
} from '../../src/chain/index.js';
import { startDevnode, type Devnode } from '../../src/devnet/chain/index.js';
import { decodeMinerCommit, decodeValidatorCommit } from '../../src/protocol/index.js';
import { captureLogs, devPair, FIXTURE_WALLETS, rejection, waitFor } from './helpers.js';

const NETUID = 102;
// twox128("Commitments") ++ twox128("CommitmentOf"), from shared/fixtures/chain/NOTES.md §1 (independent of the devnode).
const COMMITMENT_OF_PREFIX = '0xca407206ec1ab726b2636c4b145ac287419a60ae8b01e6dcaebd7317e43c69bf';
const VALIDATOR_COMMIT = '{"m": null, "h": "28e92acfd4508dbdacfd7beb934df27dc466d3f99b0ede38", "v": 7099968, "e": 0, "s": 4711, "b": 7099970}';

let node: Devnode;
let wallet: Wallet;
let alice: KeyringPair;
let bob: KeyringPair;
let charlie: KeyringPair;
let dave: KeyringPair;
let client: ChainClient;
const metrics = { latencies: [] as Array<[number, boolean]>, rpcErrors: [] as string[] };
const sink: ChainMetricsSink = {
  commitLatency: (s, ok) => metrics.latencies.push([s, ok]),
  rpcError: (op, kind) => metrics.rpcErrors.push(`${op}:${kind}`),
};

function clientFor(pair: KeyringPair, extra: Partial<ConstructorParameters<typeof ChainClient>[0]> = {}): Promise<ChainClient> {
  return ChainClient.connect({ url: node.url, wallet: { hotkey: pair }, blockTimeMs: 100, stallBlocks: 100, callTimeoutMs: 5_000, txTimeoutMs: 10_000, ...extra });
}

beforeAll(async () => {
  [alice, bob, charlie, dave] = await Promise.all(['//Alice', '//Bob', '//Charlie', '//Dave'].map(devPair)) as [KeyringPair, KeyringPair, KeyringPair, KeyringPair];
  wallet = await loadWallet({ path: FIXTURE_WALLETS, name: 'testcold', hotkey: 'testhot' });
  node = await startDevnode({
    blockMs: 100,
    genesis: {
      netuid: NETUID,
      servingRateLimit: 10_000, // blocks: the rate-limit test must not depend on machine speed
      neurons: [
        { hotkey: '//Alice', coldkey: '//Eve', stake: '1000000000000', validatorPermit: true, lastUpdate: 3, incentive: 0.5, axon: { ip: '10.0.0.1', port: 8091, version: 7 } },
        { hotkey: wallet.hotkeyAddress, coldkey: wallet.coldkeyAddress!, lastUpdate: 1 },
        { hotkey: '//Bob', axon: { ip: '2001:db8::1', port: 9000 } },
        { hotkey: '//Charlie' },
      ],
      commitments: [
        { hotkey: '//Alice', data: VALIDATOR_COMMIT, block: 0 },
        // Not UTF-8: bittensor drops the bad bytes (errors="ignore").
        { hotkey: '//Charlie', hex: '0x7b22ff6d223a2022c3a980227d', block: 0 },
      ],
    },
  });
  // stallBlocks: 100 — these tests are not about stalls; a loaded CI machine must not trigger one.
  client = await ChainClient.connect({ url: node.url, wallet, metrics: sink, blockTimeMs: 100, stallBlocks: 100, callTimeoutMs: 5_000, txTimeoutMs: 10_000 });
});

afterAll(async () => {
  await client?.close();
  await node?.stop();
});

describe('reads match the genesis', () => {
  it('metagraph: uid ↔ hotkey, coldkeys, stake, permits, last_update, incentive and axons', async () => {
    const mg = await client.metagraph();
    expect(mg.netuid).toBe(NETUID);
    expect(mg.block).toBeGreaterThanOrEqual(0);
    expect(mg.neurons.map((n) => [n.uid, n.hotkey])).toEqual([
      [0, alice.address],
      [1, wallet.hotkeyAddress],
      [2, bob.address],
      [3, charlie.address],
    ]);
    const [a, w, b, c] = mg.neurons as [(typeof mg.neurons)[0], (typeof mg.neurons)[0], (typeof mg.neurons)[0], (typeof mg.neurons)[0]];
    expect(a.coldkey).toBe((await devPair('//Eve')).address);
    expect(a.stake).toBe(1_000_000_000_000n);
    expect(a.validatorPermit).toBe(true);
    expect(a.lastUpdate).toBe(3);
    expect(a.incentive).toBeCloseTo(0.5, 4);
    expect(a.axon).toEqual({ ip: '10.0.0.1', port: 8091, ipType: 4, protocol: 4, version: 7, block: 0 });
    expect(w.coldkey).toBe(wallet.coldkeyAddress);
    expect(w.validatorPermit).toBe(false);
    expect(w.stake).toBe(0n);
    expect(w.lastUpdate).toBe(1);
    // Never served: the runtime reports a zeroed AxonInfo, printed as bittensor does.
    expect(w.axon).toEqual({ ip: '0.0.0.0', port: 0, ipType: 0, protocol: 0, version: 0, block: 0 });
    expect(b.axon.ip).toBe('2001:db8::1');
    expect(b.axon.ipType).toBe(6);
    expect(c.active).toBe(true);
  });

  it('is-registered and uid for this hotkey and others', async () => {
    expect(client.hotkeyAddress).toBe(wallet.hotkeyAddress);
    expect(await client.uid()).toBe(1);
    expect(await client.isRegistered()).toBe(true);
    expect(await client.uid({ hotkey: charlie.address })).toBe(3);
    expect(await client.isRegistered({ hotkey: dave.address })).toBe(false);
    expect(await client.axon({ hotkey: alice.address })).toMatchObject({ ip: '10.0.0.1', port: 8091 });
    expect(await client.axon()).toBeNull();
  });

  it('genesis commitments read back as the reference decodes them', async () => {
    const snap = await client.allCommitments({ block: 0 });
    const byHk = new Map(snap.commitments.map((c) => [c.hotkey, c]));
    expect(byHk.get(alice.address)).toEqual({ hotkey: alice.address, block: 0, data: VALIDATOR_COMMIT, field: `Raw${VALIDATOR_COMMIT.length}` });
    expect(byHk.get(charlie.address)?.data).toBe('{"m": "é"}');
    expect(byHk.get(charlie.address)?.field).toBe('Raw13');
  });

  it('current block follows the devnode head', async () => {
    const before = await client.currentBlock();
    await node.waitForBlock(before + 2);
    expect(await client.currentBlock()).toBeGreaterThanOrEqual(before + 2);
    expect(await client.blockHash(before)).toBe(node.chain.blockByNumber(before)!.hash);
  });
});

describe('set_commitment', () => {
  it('lands in the reported block and reads back byte-exact via all-commitments and this hotkey', async () => {
    const payload = '{"b": 7100133, "e": 0, "m": null, "h": "28e92acfd4508dbdacfd7beb934df27dc466d3f99b0ede38", "v": 7099968, "i": 40}';
    const calls0 = node.rpcCalls().get('author_submitAndWatchExtrinsic') ?? 0;
    const inc = await client.setCommitment(payload);
    expect(node.rpcCalls().get('author_submitAndWatchExtrinsic')).toBe(calls0 + 1);
    expect(node.rpcCalls().get('system_accountNextIndex')).toBeGreaterThan(0);
    // The reported block really holds the extrinsic.
    const block = node.chain.blockByNumber(inc.blockNumber)!;
    expect(block.hash).toBe(inc.blockHash);
    expect(block.extrinsics.map((x) => blake2AsHex(x, 256))).toContain(inc.txHash);

    const mine = await client.commitment();
    expect(mine).toEqual({ hotkey: wallet.hotkeyAddress, block: inc.blockNumber, data: payload, field: 'Raw113' });
    const all = await client.allCommitments();
    expect(all.commitments.find((c) => c.hotkey === wallet.hotkeyAddress)?.data).toBe(payload);
    // One block earlier it was not there yet (historical read at a pinned block).
    expect(await client.commitment({ block: inc.blockNumber - 1 })).toBeNull();
    expect(metrics.latencies.at(-1)?.[1]).toBe(true);
  });

  it('two back-to-back commits from one wallet both land, with consecutive nonces', async () => {
    const first = '{"m": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-Pw"}';
    const second = '{"b": 12, "e": 0, "m": null, "h": "28e92acfd4508dbdacfd7beb934df27dc466d3f99b0ede38", "v": 3, "i": 4}';
    const [a, b] = await Promise.all([client.setCommitment(first), client.setCommitment(second)]);
    expect(b.nonce).toBe(a.nonce + 1);
    expect(b.blockNumber).toBeGreaterThanOrEqual(a.blockNumber);
    expect((await client.commitment({ block: a.blockNumber }))?.data).toBe(first);
    expect((await client.commitment())?.data).toBe(second);
    // And sequentially, right after each other.
    const c = await client.setCommitment(first);
    const d = await client.setCommitment(second);
    expect(d.nonce).toBe(c.nonce + 1);
  });

  it('a commitment that is not JSON, or JSON of the wrong shape, is skipped with a logged reason', async () => {
    const cBob = await clientFor(bob);
    const cCharlie = await clientFor(charlie);
    try {
      await cBob.setCommitment('definitely not json {');
      await cCharlie.setCommitment('{"e": "zero", "h": 5}');
      const snap = await client.allCommitments();
      const cap = captureLogs();
      const decoded = decodeCommitments(snap.commitments, (s) => decodeMinerCommit(s), { logger: cap.logger, context: { phase: 'test' } });
      const bobEntry = decoded.find((d) => d.hotkey === bob.address)!;
      const charlieEntry = decoded.find((d) => d.hotkey === charlie.address)!;
      expect(bobEntry.ok).toBe(false);
      expect(charlieEntry.ok).toBe(false);
      const skipped = cap.lines().filter((l) => l.msg === 'skipping unreadable chain commitment');
      expect(skipped.map((l) => l.hotkey).sort()).toEqual([bob.address, charlie.address].sort());
      expect(skipped.find((l) => l.hotkey === bob.address)?.reason).toMatch(/not JSON/);
      expect(skipped.find((l) => l.hotkey === charlie.address)?.reason).toMatch(/"e" is not an integer/);
      expect(skipped.every((l) => l.phase === 'test')).toBe(true);
      // The readable ones come through in the same (storage-key) order.
      const ok = readableCommitments(decoded);
      expect(ok.map((d) => d.hotkey)).toEqual(snap.commitments.map((c) => c.hotkey).filter((h) => h !== bob.address && h !== charlie.address));
      const v = decodeCommitments(snap.commitments.filter((c) => c.hotkey === alice.address), decodeValidatorCommit);
      expect(v[0]).toMatchObject({ ok: true, payload: { s: 4711, e: 0, v: 7099968 } });
    } finally {
      await cBob.close();
      await cCharlie.close();
    }
  });

  it('a commitment over 128 UTF-8 bytes is refused before anything is sent', async () => {
    const before = node.rpcCalls().get('author_submitAndWatchExtrinsic') ?? 0;
    const e = await rejection(client.setCommitment('é'.repeat(65)));
    expect(e.code).toBe('CNM_ERR_CHAIN_ARG');
    expect(node.rpcCalls().get('author_submitAndWatchExtrinsic') ?? 0).toBe(before);
  });
});

describe('storage-key order (PROTOCOL §13 Q1)', () => {
  it('all commitments come back in CommitmentOf key order, paged through state_getKeysPaged', async () => {
    const hotkeys = Array.from({ length: 1100 }, () => encodeAddress(randomBytes(32), 42));
    const big = await startDevnode({
      blockMs: 0,
      genesis: { commitments: hotkeys.map((h, i) => ({ hotkey: h, data: `{"s": ${i}}` })) },
    });
    const c = await ChainClient.connect({ url: big.url, callTimeoutMs: 20_000 });
    try {
      const pages0 = big.rpcCalls().get('state_getKeysPaged') ?? 0;
      const snap = await c.allCommitments({ timeoutMs: 20_000 });
      // Expected order computed independently: prefix ‖ u16le(netuid) ‖ twox64(pubkey) ‖ pubkey, sorted bytewise.
      const key = (h: string): string => {
        const pk = decodeAddress(h);
        return COMMITMENT_OF_PREFIX + '6600' + u8aToHex(xxhashAsU8a(pk, 64)).slice(2) + u8aToHex(pk).slice(2);
      };
      const expected = [...hotkeys].sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0));
      expect(snap.commitments.map((r) => r.hotkey)).toEqual(expected);
      expect(snap.commitments.map((r) => r.data)).toEqual(expected.map((h) => `{"s": ${hotkeys.indexOf(h)}}`));
      expect((big.rpcCalls().get('state_getKeysPaged') ?? 0) - pages0).toBe(2); // 1000 + 100
    } finally {
      await c.close();
      await big.stop();
    }
  });
});

describe('serve_axon', () => {
  it('changes what the metagraph and the axon read return; an identical record is not re-sent', async () => {
    const r = await client.serveAxon({ ip: '203.0.113.7', port: 8100 });
    expect(r.skipped).toBe(false);
    const mg = await client.metagraph();
    expect(mg.neurons[1]!.axon).toEqual({
      ip: '203.0.113.7',
      port: 8100,
      ipType: 4,
      protocol: 4,
      version: 10_001_000,
      block: (r as { blockNumber: number }).blockNumber,
    });
    expect(await client.axon()).toEqual(mg.neurons[1]!.axon);
    const sent = node.rpcCalls().get('author_submitAndWatchExtrinsic');
    const again = await client.serveAxon({ ip: '203.0.113.7', port: 8100 });
    expect(again.skipped).toBe(true);
    expect(node.rpcCalls().get('author_submitAndWatchExtrinsic')).toBe(sent);
  });

  it('a second change within the serving rate limit is refused by the pool (rate_limited)', async () => {
    const e = await rejection(client.serveAxon({ ip: '203.0.113.7', port: 8101 }));
    expect(e).toBeInstanceOf(ChainTxError);
    expect(e.reason).toBe('rate_limited');
    expect(e.code).toBe('CNM_ERR_TX_RATE_LIMITED');
    expect(e.message).toMatch(/ServingRateLimitExceeded/);
    expect((await client.axon())?.port).toBe(8100);
  });

  it('a loopback IP is refused as on finney (InvalidIpAddress)', async () => {
    const c = await clientFor(charlie);
    try {
      const e = await rejection(c.serveAxon({ ip: '127.0.0.1', port: 8000 }));
      expect(e.reason).toBe('invalid');
      expect(e.message).toMatch(/InvalidIpAddress/);
    } finally {
      await c.close();
    }
  });
});

describe('rejected and failed extrinsics', () => {
  it('signed by the wrong key: bad_signature, and nothing changes on chain', async () => {
    // A hotkey file whose secret belongs to another account (what a corrupt wallet would produce):
    // it claims Dave's address but signs with Alice's key.
    const forged = Object.assign(Object.create(dave) as KeyringPair, {
      sign: (m: Uint8Array, o?: object) => alice.sign(m, o),
    });
    const c = await ChainClient.connect({ url: node.url, wallet: { hotkey: forged }, txTimeoutMs: 5_000 });
    try {
      const e = await rejection(c.setCommitment('{"m": "forged"}'));
      expect(e).toBeInstanceOf(ChainTxError);
      expect(e.reason).toBe('bad_signature');
      expect(e.code).toBe('CNM_ERR_TX_BAD_SIGNATURE');
      expect(e.message).toContain(dave.address);
      expect(e.message).toMatch(/bad signature/);
      expect(await client.commitment({ hotkey: dave.address })).toBeNull();
    } finally {
      await c.close();
    }
  });

  it('with a stale nonce: stale_nonce naming the nonce', async () => {
    const before = await client.commitment();
    const e = await rejection(client.setCommitment('{"m": "stale"}', { nonce: 0 }));
    expect(e.reason).toBe('stale_nonce');
    expect(e.code).toBe('CNM_ERR_TX_STALE_NONCE');
    expect(e.message).toMatch(/nonce 0 was already used/);
    expect((await client.commitment())?.data).toBe(before?.data);
    expect(metrics.latencies.at(-1)?.[1]).toBe(false);
  });

  it('while blocks stall: times out (timeout), and the same nonce again is nonce_in_use', async () => {
    const c = await clientFor(charlie);
    try {
      node.faults.stallBlocks();
      const nonce = node.chain.nextIndex(charlie.address);
      const t0 = Date.now();
      const e = await rejection(c.setCommitment('{"m": "waiting"}', { timeoutMs: 800 }));
      expect(e.reason).toBe('timeout');
      expect(Date.now() - t0).toBeLessThan(3_000);
      const e2 = await rejection(c.setCommitment('{"m": "again"}', { nonce, timeoutMs: 2_000 }));
      expect(e2.reason).toBe('nonce_in_use');
      node.faults.resumeBlocks();
      // The first one was only late: it lands once blocks resume.
      await waitFor('late commit', () => node.chain.nextIndex(charlie.address) === nonce + 1 && node.chain.pendingExtrinsics().length === 0, 5_000);
    } finally {
      node.faults.resumeBlocks();
      await c.close();
    }
  });

  it('from a hotkey that is not registered: not_registered (AccountNotAllowedCommit at dispatch, custom 10 in the pool)', async () => {
    const c = await clientFor(dave);
    try {
      const e = await rejection(c.setCommitment('{"m": "who"}'));
      expect(e.reason).toBe('not_registered');
      expect((e as ChainTxError).details.module).toBe('commitments.AccountNotAllowedCommit');
      expect((e as ChainTxError).details.blockNumber).toBeGreaterThan(0);
      expect(e.message).toMatch(/not registered on netuid 102/);
      const e2 = await rejection(c.serveAxon({ ip: '198.51.100.1', port: 1 }));
      expect(e2.reason).toBe('not_registered');
      expect(e2.message).toMatch(/HotKeyNotRegisteredInNetwork/);
    } finally {
      await c.close();
    }
  });

  it('an injected pool rejection surfaces with the node text', async () => {
    node.faults.rejectNextExtrinsic({ code: 1010, message: 'Invalid Transaction', data: 'Inability to pay some fees (e.g. account balance too low)' });
    const e = await rejection(client.setCommitment('{"m": "x"}'));
    expect(e.reason).toBe('invalid');
    expect(e.message).toContain('Inability to pay some fees');
    // The next one goes through.
    await client.setCommitment('{"m": "y"}');
  });
});

describe('commitment space budget', () => {
  it('over MaxSpace in one epoch the dispatch fails with rate_limited (Commitments.SpaceLimitExceeded)', async () => {
    const small = await startDevnode({ blockMs: 100, genesis: { maxSpace: 250, neurons: [{ hotkey: '//Alice' }] } });
    const c = await ChainClient.connect({ url: small.url, wallet: { hotkey: alice }, txTimeoutMs: 10_000 });
    try {
      await c.setCommitment('{"m": 1}'); // costs 100
      await c.setCommitment('{"m": 2}'); // 200
      const e = await rejection(c.setCommitment('{"m": 3}'));
      expect(e.reason).toBe('rate_limited');
      expect((e as ChainTxError).details.module).toBe('commitments.SpaceLimitExceeded');
      expect((await c.commitment())?.data).toBe('{"m": 2}');
    } finally {
      await c.close();
      await small.stop();
    }
  });
});
