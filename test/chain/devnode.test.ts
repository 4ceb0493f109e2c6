// The devnode itself: the metadata it serves is the recorded one; storage is real SCALE under real keys
// (checked against encodings computed here by hand, not through the devnode's own codec); blocks link
// and hash like Substrate's; the RPC answers like a node, including errors; burned_register and
// set_weights change what the production client reads.
import { ApiPromise, WsProvider } from '@polkadot/api';
import type { SubmittableExtrinsic } from '@polkadot/api/types';
import type { KeyringPair } from '@polkadot/keyring/types';
import { compactToU8a, hexToU8a, u8aConcat, u8aToHex } from '@polkadot/util';
import { blake2AsHex, decodeAddress, xxhashAsU8a } from '@polkadot/util-crypto';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainClient } from '../../src/chain/index.js';
import { GenesisError, loadChainSpec, parseGenesis, startDevnode, type Devnode } from '../../src/devnet/chain/index.js';
import { devPair, waitFor } from './helpers.js';

const twox128 = (s: string): string => u8aToHex(xxhashAsU8a(s, 128)).slice(2);
const le16 = (n: number): string => u8aToHex(new Uint8Array([n & 0xff, n >> 8])).slice(2);
const blake2_128Concat = (pk: Uint8Array): string => blake2AsHex(pk, 128).slice(2) + u8aToHex(pk).slice(2);

let node: Devnode;
let alice: KeyringPair;
let dave: KeyringPair;
let ferdie: KeyringPair;

/** Raw JSON-RPC over a plain WebSocket (no polkadot-js in between). */
async function rpc(method: string, params: unknown[] = []): Promise<{ result?: unknown; error?: { code: number; message: string; data?: string } }> {
  const ws = new WebSocket(node.url);
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  try {
    const reply = new Promise<string>((r) => ws.once('message', (d) => r(d.toString())));
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 7, method, params }));
    return JSON.parse(await reply) as { result?: unknown; error?: { code: number; message: string } };
  } finally {
    ws.close();
  }
}

beforeAll(async () => {
  [alice, dave, ferdie] = (await Promise.all(['//Alice', '//Dave', '//Ferdie'].map(devPair))) as [KeyringPair, KeyringPair, KeyringPair];
  node = await startDevnode({
    blockMs: 100,
    finalityLag: 2,
    genesis: {
      tempo: 360,
      burn: '1000',
      accounts: [{ address: '//Dave', free: '5000' }],
      neurons: [{ hotkey: '//Alice', validatorPermit: true }, { hotkey: '//Bob' }, { hotkey: '//Charlie' }],
    },
  });
});
afterAll(async () => {
  await node?.stop();
});

describe('metadata and runtime version', () => {
  it('serves the recorded spec-393 V15 metadata (blake2-256 as in its PROVENANCE.md)', async () => {
    const spec = loadChainSpec();
    expect(blake2AsHex(spec.metadataBytes, 256)).toBe('0x7669239eaf23c29010f86daa1506fe39ac5f32db5d61807729d51a43a1117d18');
    expect((await rpc('state_getMetadata')).result).toBe(spec.metadataHex);
    const v = (await rpc('state_getRuntimeVersion')).result as { specName: string; specVersion: number; transactionVersion: number };
    expect([v.specName, v.specVersion, v.transactionVersion]).toEqual(['node-subtensor', 393, 1]);
    // Metadata_metadata_at_version(15) = Some(OpaqueMetadata); 14 = None.
    const at15 = (await rpc('state_call', ['Metadata_metadata_at_version', '0x0f000000'])).result as string;
    expect(at15).toBe(u8aToHex(u8aConcat([1], compactToU8a(spec.metadataBytes.length), spec.metadataBytes)));
    expect((await rpc('state_call', ['Metadata_metadata_at_version', '0x0e000000'])).result).toBe('0x00');
    expect((await rpc('state_call', ['Metadata_metadata_versions', '0x'])).result).toBe('0x040f000000');
  });
});

describe('storage is real SCALE under real keys', () => {
  it('Tempo, Uids, SubnetworkN and System.Number read back as hand-encoded bytes', async () => {
    const bob = await devPair('//Bob');
    const get = async (key: string): Promise<unknown> => (await rpc('state_getStorage', [key])).result;
    expect(await get(`0x${twox128('SubtensorModule')}${twox128('Tempo')}${le16(102)}`)).toBe('0x6801'); // 360 LE
    expect(await get(`0x${twox128('SubtensorModule')}${twox128('SubnetworkN')}${le16(102)}`)).toBe('0x0300');
    expect(await get(`0x${twox128('SubtensorModule')}${twox128('Uids')}${le16(102)}${blake2_128Concat(decodeAddress(bob.address))}`)).toBe('0x0100');
    expect(await get(`0x${twox128('SubtensorModule')}${twox128('Keys')}${le16(102)}${le16(1)}`)).toBe(u8aToHex(decodeAddress(bob.address)));
    const head = node.head().number;
    const num = (await rpc('state_getStorage', [`0x${twox128('System')}${twox128('Number')}`, node.head().hash])).result as string;
    expect(new DataView(hexToU8a(num).buffer).getUint32(0, true)).toBeGreaterThanOrEqual(head);
  });

  it('state_getKeysPaged walks keys in byte order after startKey, within the prefix, at most count', async () => {
    const prefix = `0x${twox128('SubtensorModule')}${twox128('Keys')}`;
    const all = (await rpc('state_getKeysPaged', [prefix, 1000])).result as string[];
    expect(all).toHaveLength(3);
    expect([...all].sort()).toEqual(all);
    const two = (await rpc('state_getKeysPaged', [prefix, 2])).result as string[];
    expect(two).toEqual(all.slice(0, 2));
    const rest = (await rpc('state_getKeysPaged', [prefix, 1000, two[1]])).result as string[];
    expect(rest).toEqual(all.slice(2));
    const tooMany = await rpc('state_getKeysPaged', [prefix, 1001]);
    expect(tooMany.error?.code).toBe(4002);
  });
});

describe('blocks', () => {
  it('link to their parents, hash as blake2-256 of the SCALE header, and finalize two behind', async () => {
    await node.waitForBlock(6);
    for (let n = 1; n <= 5; n++) {
      const b = (await rpc('chain_getBlock', [node.chain.blockByNumber(n)!.hash])).result as {
        block: { header: { parentHash: string; number: string; stateRoot: string; extrinsicsRoot: string }; extrinsics: string[] };
      };
      const h = b.block.header;
      expect(Number(h.number)).toBe(n);
      expect(h.parentHash).toBe(node.chain.blockByNumber(n - 1)!.hash);
      // parentHash ‖ Compact(number) ‖ stateRoot ‖ extrinsicsRoot ‖ digest (empty Vec)
      const scale = u8aConcat(hexToU8a(h.parentHash), compactToU8a(n), hexToU8a(h.stateRoot), hexToU8a(h.extrinsicsRoot), [0]);
      expect(blake2AsHex(scale, 256)).toBe(node.chain.blockByNumber(n)!.hash);
      expect((await rpc('chain_getBlockHash', [n])).result).toBe(node.chain.blockByNumber(n)!.hash);
      expect(b.block.extrinsics.length).toBeGreaterThanOrEqual(1); // the timestamp inherent
    }
    const fin = (await rpc('chain_getFinalizedHead')).result as string;
    // Two behind the head (three if a block landed during the round trip).
    expect([2, 3]).toContain(node.head().number - node.chain.blockByHash(fin)!.number);
    expect((await rpc('chain_getBlockHash', [1_000_000])).result).toBeNull();
  });
});

describe('RPC errors', () => {
  it('unknown methods, bad JSON, unknown runtime APIs and unsigned transactions fail like a node', async () => {
    expect((await rpc('nope_nothing')).error?.code).toBe(-32601);
    const call = await rpc('state_call', ['SubnetInfoRuntimeApi_get_subnet_state', '0x6600']);
    expect(call.error?.code).toBe(4003);
    const spec = loadChainSpec();
    const unsigned = spec.registry.createType('Extrinsic', spec.decorated.tx.commitments!.setCommitment!(102, { fields: [] })).toHex();
    const r = await rpc('author_submitExtrinsic', [unsigned]);
    expect(r.error).toEqual({ code: 1010, message: 'Invalid Transaction', data: 'Transaction call is not expected' });
    const ws = new WebSocket(node.url);
    await new Promise((res) => ws.once('open', res));
    const reply = new Promise<string>((res) => ws.once('message', (d) => res(d.toString())));
    ws.send('{not json');
    expect(JSON.parse(await reply)).toMatchObject({ id: null, error: { code: -32700 } });
    ws.close();
  });
});

describe('subnet calls through @polkadot/api and the production client', () => {
  it('burned_register adds a uid (signed by the coldkey, Burn deducted); set_weights bumps last_update', async () => {
    const api = await ApiPromise.create({ provider: new WsProvider(node.url), noInitWarn: true });
    const reader = await ChainClient.connect({ url: node.url });
    const validator = await ChainClient.connect({ url: node.url, wallet: { hotkey: alice } });
    // Submit with @polkadot/api directly (the miner never registers); resolve with the pallet error or null.
    const send = async (tx: SubmittableExtrinsic<'promise'>, signer: KeyringPair): Promise<string | null> => {
      const nonce = await api.rpc.system.accountNextIndex(signer.address);
      return new Promise<string | null>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`not in a block within 20 s; pool ${node.chain.pendingExtrinsics().length}, head ${node.head().number}`)), 20_000);
        tx.signAndSend(signer, { nonce }, (r) => {
          if (r.status.isInvalid || r.status.isDropped || r.status.isUsurped) {
            clearTimeout(t);
            reject(new Error(`pool status ${r.status.type}`));
          } else if (r.status.isInBlock || r.status.isFinalized) {
            // polkadot-js skips InBlock when Finalized follows before the block's events were fetched.
            clearTimeout(t);
            if (r.dispatchError?.isModule) {
              const m = api.registry.findMetaError(r.dispatchError.asModule);
              resolve(`${m.section}.${m.name}`);
            } else resolve(r.dispatchError ? r.dispatchError.toString() : null);
          }
        }).catch((e: unknown) => {
          clearTimeout(t);
          reject(e as Error);
        });
      });
    };
    try {
      expect(await send(api.tx.subtensorModule!.burnedRegister!(102, ferdie.address), dave)).toBeNull();
      const mg = await reader.metagraph();
      expect(mg.neurons).toHaveLength(4);
      expect(mg.neurons[3]).toMatchObject({ uid: 3, hotkey: ferdie.address, coldkey: dave.address, validatorPermit: false });
      const acct = (await api.query.system!.account!(dave.address)).toJSON() as { data: { free: number } };
      expect(acct.data.free).toBe(4000);

      const w = await validator.setWeights([1, 3], [100, 200], 0);
      const after = await reader.metagraph();
      expect(after.neurons[0]!.lastUpdate).toBe(w.blockNumber);
      const weights = (await api.query.subtensorModule!.weights!(102, 0)).toJSON();
      expect(weights).toEqual([[1, 100], [3, 200]]);

      // Registering the same hotkey again fails at dispatch with the pallet error.
      expect(await send(api.tx.subtensorModule!.burnedRegister!(102, ferdie.address), dave)).toBe('subtensorModule.HotKeyAlreadyRegisteredInSubNet');
    } finally {
      await reader.close();
      await validator.close();
      await api.disconnect();
    }
  });

  it('pushes storage and finalized-head subscriptions as blocks come', async () => {
    const api = await ApiPromise.create({ provider: new WsProvider(node.url), noInitWarn: true });
    try {
      const numbers: number[] = [];
      const finalized: number[] = [];
      const u1 = (await api.query.system!.number!((n: { toNumber(): number }) => {
        numbers.push(n.toNumber());
      })) as unknown as () => void;
      const u2 = await api.rpc.chain.subscribeFinalizedHeads((h) => {
        finalized.push(h.number.toNumber());
      });
      await waitFor('updates', () => numbers.length >= 3 && finalized.length >= 3, 5_000);
      expect(numbers.slice(1).every((n, i) => n > numbers[i]!)).toBe(true);
      expect(Math.max(...finalized)).toBeLessThan(node.head().number);
      u1();
      u2();
    } finally {
      await api.disconnect();
    }
  });
});

describe('genesis validation', () => {
  it('names the offending field', () => {
    expect(() => parseGenesis({ neurons: [{ hotkey: 42 }] })).toThrow(/neurons\.0\.hotkey/);
    expect(() => parseGenesis({ commitments: [{ hotkey: '//Alice' }] })).toThrow(/exactly one of "data" or "hex"/);
    expect(() => parseGenesis({ netuid: -1 })).toThrow(GenesisError);
  });

  it('rejects bad addresses, duplicate hotkeys and oversize commitments when building', async () => {
    await expect(startDevnode({ blockMs: 0, genesis: { neurons: [{ hotkey: 'not-an-address' }] } })).rejects.toThrow(/neurons\.0\.hotkey/);
    await expect(startDevnode({ blockMs: 0, genesis: { neurons: [{ hotkey: '//Alice' }, { hotkey: '//Alice' }] } })).rejects.toThrow(/registered twice/);
    await expect(startDevnode({ blockMs: 0, genesis: { commitments: [{ hotkey: '//Alice', data: 'x'.repeat(129) }] } })).rejects.toThrow(/at most 128/);
  });
});
