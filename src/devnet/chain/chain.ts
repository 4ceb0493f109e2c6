// The devnode's chain: blocks with real headers and hashes, a transaction pool that checks signature,
// nonce and era like a Substrate pool, block production that applies the subnet's calls and writes
// System.Events, a finality lag, and per-block state kept for a bounded history (archive reads at b1/b2).

import type { Header } from '@polkadot/types/interfaces';
import { hexToU8a, u8aConcat, u8aToHex } from '@polkadot/util';
import { blake2AsHex } from '@polkadot/util-crypto';
import type { Logger } from '../../telemetry/logger.js';
import { alreadyImported, INVALID, priorityTooLow, RpcError, stateDiscarded, unknownBlock } from './errors.js';
import { eraBirth, parseExtrinsic, verifySignature, type MortalEra, type ParsedExtrinsic } from './extrinsic.js';
import { buildGenesisState, type Genesis, type GenesisNeuron } from './genesis.js';
import { dispatch, validateInPool, type DispatchContext, type EventOut, type RuntimeRules } from './pallets.js';
import { loadChainSpec, type ChainSpec } from './spec.js';
import { StorageCodec, type StateMap } from './storage.js';

export interface HeaderJson {
  parentHash: string;
  number: string;
  stateRoot: string;
  extrinsicsRoot: string;
  digest: { logs: string[] };
}

export interface Block {
  number: number;
  hash: string;
  header: HeaderJson;
  extrinsics: string[];
  /** null once pruned out of the history window. */
  state: StateMap | null;
  timestamp: number;
}

/** Statuses as `author_extrinsicUpdate` reports them. */
export type TxStatus = 'future' | 'ready' | { inBlock: string } | { finalized: string } | 'invalid' | 'dropped';

interface PoolEntry {
  x: ParsedExtrinsic;
  signer: string;
  nonce: number;
  era: MortalEra | null;
  birth: number;
  listeners: Set<(s: TxStatus) => void>;
}

export interface DevChainOptions {
  genesis: Genesis;
  /** Blocks whose state stays readable (older reads fail with "State already discarded"). */
  historyBlocks: number;
  /** Finalized head = best − finalityLag. */
  finalityLag: number;
  rules: RuntimeRules;
  logger?: Logger;
  now?: () => number;
}

const ZERO_HASH = `0x${'00'.repeat(32)}`;

function camel(pallet: string): string {
  return pallet.charAt(0).toLowerCase() + pallet.slice(1);
}

export class DevChain {
  readonly spec: ChainSpec;
  readonly codec: StorageCodec;
  readonly genesis: Genesis;
  readonly neurons: GenesisNeuron[];
  readonly #opts: DevChainOptions;
  readonly #blocks: Block[] = [];
  readonly #byHash = new Map<string, number>();
  readonly #sorted = new WeakMap<StateMap, string[]>();
  #pool: PoolEntry[] = [];
  /** Included, not yet finalized: tx hash → block number and listeners. */
  readonly #inBlock = new Map<string, { number: number; listeners: Set<(s: TxStatus) => void> }>();
  #finalized = 0;
  #rejectNext: RpcError | null = null;
  readonly #blockListeners = new Set<(b: Block) => void>();
  readonly #finalizedListeners = new Set<(b: Block) => void>();
  readonly #now: () => number;

  private constructor(spec: ChainSpec, opts: DevChainOptions, neurons: GenesisNeuron[]) {
    this.spec = spec;
    this.codec = new StorageCodec(spec);
    this.genesis = opts.genesis;
    this.neurons = neurons;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  static async create(opts: DevChainOptions): Promise<DevChain> {
    const spec = loadChainSpec();
    const codec = new StorageCodec(spec);
    const now = (opts.now ?? Date.now)();
    const { state, neurons } = await buildGenesisState(codec, opts.genesis, now);
    const chain = new DevChain(spec, opts, neurons);
    codec.write(state, 'system', 'events', [], []);
    chain.#push(ZERO_HASH, 0, state, [], opts.genesis.timestamp ?? now);
    return chain;
  }

  get genesisHash(): string {
    return this.#blocks[0]!.hash;
  }

  head(): Block {
    return this.#blocks[this.#blocks.length - 1]!;
  }

  finalizedBlock(): Block {
    return this.#blocks[this.#finalized]!;
  }

  blockByNumber(n: number): Block | null {
    return this.#blocks[n] ?? null;
  }

  blockByHash(hash: string): Block | null {
    const n = this.#byHash.get(hash.toLowerCase());
    return n === undefined ? null : this.#blocks[n]!;
  }

  /** The block an `at` parameter names (best block when absent). */
  resolveAt(at?: string | null): Block {
    if (at === undefined || at === null) return this.head();
    const b = this.blockByHash(at);
    if (b === null) throw unknownBlock(at);
    return b;
  }

  stateAt(at?: string | null): { block: Block; state: StateMap } {
    const block = this.resolveAt(at);
    if (block.state === null) throw stateDiscarded(block.hash);
    return { block, state: block.state };
  }

  /** Keys of a state in byte order (the order state_getKeysPaged walks). */
  sortedKeys(state: StateMap): string[] {
    let k = this.#sorted.get(state);
    if (k === undefined) {
      k = [...state.keys()].sort();
      this.#sorted.set(state, k);
    }
    return k;
  }

  accountNonce(state: StateMap, address: string): number {
    const a = this.codec.read(state, 'system', 'account', [address]);
    return a === null ? 0 : (a as unknown as { nonce: { toNumber(): number } }).nonce.toNumber();
  }

  /** system_accountNextIndex: the state nonce plus this account's consecutive transactions in the pool. */
  nextIndex(address: string): number {
    let n = this.accountNonce(this.head().state!, address);
    const mine = new Set(this.#pool.filter((e) => e.signer === address).map((e) => e.nonce));
    while (mine.has(n)) n++;
    return n;
  }

  pendingExtrinsics(): string[] {
    return this.#pool.map((e) => e.x.hex);
  }

  rejectNextExtrinsic(err: RpcError): void {
    this.#rejectNext = err;
  }

  onBlock(cb: (b: Block) => void): () => void {
    this.#blockListeners.add(cb);
    return () => this.#blockListeners.delete(cb);
  }

  onFinalized(cb: (b: Block) => void): () => void {
    this.#finalizedListeners.add(cb);
    return () => this.#finalizedListeners.delete(cb);
  }

  /** Validate and queue a signed extrinsic. Throws RpcError (1010/1013/1014) like a Substrate pool. */
  submit(hex: string, listener?: (s: TxStatus) => void): { hash: string; status: TxStatus } {
    if (this.#rejectNext !== null) {
      const e = this.#rejectNext;
      this.#rejectNext = null;
      throw e;
    }
    const x = parseExtrinsic(this.spec, hex);
    if (!x.signed) throw INVALID.call();
    if (this.#pool.some((e) => e.x.hash === x.hash) || this.#inBlock.has(x.hash)) throw alreadyImported();
    const head = this.head();
    const current = head.number + 1;
    const birth = x.era ? eraBirth(x.era, current) : 0;
    if (birth > current) throw INVALID.ancientBirth();
    const birthHash = x.era ? (this.#blocks[birth]?.hash ?? ZERO_HASH) : this.genesisHash;
    if (
      !verifySignature(x, {
        specVersion: this.spec.runtimeVersion.specVersion,
        transactionVersion: this.spec.runtimeVersion.transactionVersion,
        genesisHash: this.genesisHash,
        birthHash,
      })
    ) {
      throw INVALID.badSignature();
    }
    const signer = x.signer!;
    const nonce = x.nonce!;
    const state = head.state!;
    if (nonce < this.accountNonce(state, signer)) throw INVALID.stale();
    if (this.#pool.some((e) => e.signer === signer && e.nonce === nonce)) throw priorityTooLow(nonce);
    validateInPool(this.#ctx(state, current, []), x);
    const entry: PoolEntry = { x, signer, nonce, era: x.era ?? null, birth, listeners: new Set() };
    if (listener) entry.listeners.add(listener);
    this.#pool.push(entry);
    const status: TxStatus = nonce <= this.nextIndex(signer) - 1 ? 'ready' : 'future';
    this.#opts.logger?.debug({ tx: x.hash, call: x.callName, signer, nonce, status }, 'devnode: extrinsic accepted');
    return { hash: x.hash, status };
  }

  #ctx(state: StateMap, block: number, events: EventOut[]): DispatchContext {
    return { spec: this.spec, codec: this.codec, state, block, rules: this.#opts.rules, events };
  }

  #drop(e: PoolEntry, status: TxStatus, why: string): void {
    this.#pool = this.#pool.filter((p) => p !== e);
    this.#opts.logger?.debug({ tx: e.x.hash, call: e.x.callName, why }, 'devnode: extrinsic dropped');
    for (const l of e.listeners) l(status);
  }

  /** Build the next block from the pool. */
  produceBlock(): Block {
    const parent = this.head();
    const number = parent.number + 1;
    const state: StateMap = new Map(parent.state!);
    const now = Math.max(this.#now(), parent.timestamp + 1);
    const { codec, spec } = this;
    codec.write(state, 'system', 'number', [], number);
    codec.write(state, 'system', 'parentHash', [], parent.hash);
    codec.write(state, 'timestamp', 'now', [], now);

    const extrinsics: string[] = [spec.registry.createType('Extrinsic', spec.decorated.tx.timestamp!.set!(now)).toHex()];
    const records: Array<{ index: number; event: EventOut }> = [
      { index: 0, event: this.#success('Mandatory') },
    ];
    const included: PoolEntry[] = [];
    for (let progressed = true; progressed; ) {
      progressed = false;
      for (const e of [...this.#pool]) {
        const stateNonce = this.accountNonce(state, e.signer);
        if (e.nonce < stateNonce) {
          this.#drop(e, 'invalid', 'nonce already used');
          continue;
        }
        if (e.nonce !== stateNonce) continue;
        if (e.era !== null && eraBirth(e.era, number) !== e.birth) {
          this.#drop(e, 'invalid', 'era expired');
          continue;
        }
        try {
          validateInPool(this.#ctx(state, number, []), e.x);
        } catch (err) {
          this.#drop(e, 'invalid', (err as Error).message);
          continue;
        }
        const account = codec.readOrDefault(state, 'system', 'account', [e.signer]).toJSON() as Record<string, unknown>;
        codec.write(state, 'system', 'account', [e.signer], { ...account, nonce: e.nonce + 1 });
        const events: EventOut[] = [];
        const outcome = dispatch(this.#ctx(state, number, events), e.x);
        const index = extrinsics.length;
        extrinsics.push(e.x.hex);
        for (const ev of events) records.push({ index, event: ev });
        records.push({ index, event: outcome.ok ? this.#success('Normal') : this.#failed(outcome.pallet, outcome.error) });
        this.#pool = this.#pool.filter((p) => p !== e);
        included.push(e);
        progressed = true;
      }
    }
    state.set(codec.key('system', 'events'), this.#encodeEvents(records));
    const block = this.#push(parent.hash, number, state, extrinsics, now);
    for (const e of included) {
      this.#inBlock.set(e.x.hash, { number, listeners: e.listeners });
      for (const l of e.listeners) l({ inBlock: block.hash });
    }
    for (const l of [...this.#blockListeners]) l(block);
    this.#finalize(Math.max(0, number - this.#opts.finalityLag));
    return block;
  }

  #finalize(target: number): void {
    while (this.#finalized < target) {
      this.#finalized++;
      const b = this.#blocks[this.#finalized]!;
      for (const [hash, t] of this.#inBlock) {
        if (t.number === b.number) {
          for (const l of t.listeners) l({ finalized: b.hash });
          this.#inBlock.delete(hash);
        }
      }
      for (const l of [...this.#finalizedListeners]) l(b);
    }
  }

  #push(parentHash: string, number: number, state: StateMap, extrinsics: string[], timestamp: number): Block {
    const keys = this.sortedKeys(state);
    const stateRoot = blake2AsHex(hexToU8a(`0x${keys.map((k) => k.slice(2) + state.get(k)!.slice(2)).join('')}`), 256);
    const extrinsicsRoot = blake2AsHex(hexToU8a(`0x${extrinsics.map((x) => x.slice(2)).join('')}`), 256);
    const header = { parentHash, number, stateRoot, extrinsicsRoot, digest: { logs: [] } };
    const hash = (this.spec.registry.createType('Header', header) as Header).hash.toHex();
    const block: Block = {
      number,
      hash,
      header: { parentHash, number: `0x${number.toString(16)}`, stateRoot, extrinsicsRoot, digest: { logs: [] } },
      extrinsics,
      state,
      timestamp,
    };
    this.#blocks.push(block);
    this.#byHash.set(hash, number);
    const prune = number - this.#opts.historyBlocks;
    if (prune > 0 && this.#blocks[prune]!.state !== null) this.#blocks[prune]!.state = null;
    return block;
  }

  #success(cls: 'Normal' | 'Mandatory'): EventOut {
    return {
      pallet: 'System',
      name: 'ExtrinsicSuccess',
      args: [{ weight: { refTime: 100_000_000, proofSize: 4_000 }, class: cls, paysFee: 'Yes' }],
    };
  }

  #failed(pallet: string, error: string): EventOut {
    const meta = this.spec.decorated.errors[camel(pallet)]?.[error]?.meta;
    const index = this.spec.palletIndex.get(pallet);
    if (meta === undefined || index === undefined) throw new Error(`devnode: no error ${pallet}.${error} in the metadata`);
    return {
      pallet: 'System',
      name: 'ExtrinsicFailed',
      args: [
        { Module: { index, error: u8aToHex(new Uint8Array([meta.index.toNumber(), 0, 0, 0])) } },
        { weight: { refTime: 100_000_000, proofSize: 4_000 }, class: 'Normal', paysFee: 'Yes' },
      ],
    };
  }

  // Vec<EventRecord>: phase (0x00 ApplyExtrinsic ‖ u32) ‖ pallet index ‖ event index ‖ fields ‖ topics (empty).
  #encodeEvents(records: Array<{ index: number; event: EventOut }>): string {
    const { registry } = this.spec;
    const parts = records.map(({ index, event }) => {
      const meta = this.spec.decorated.events[camel(event.pallet)]?.[event.name]?.meta;
      const pallet = this.spec.palletIndex.get(event.pallet);
      if (meta === undefined || pallet === undefined) throw new Error(`devnode: no event ${event.pallet}.${event.name} in the metadata`);
      const phase = new Uint8Array(5);
      new DataView(phase.buffer).setUint32(1, index, true);
      const fields = meta.fields.map((f, i) => registry.createType(registry.createLookupType(f.type), event.args[i]).toU8a());
      return u8aConcat(phase, new Uint8Array([pallet, meta.index.toNumber()]), ...fields, new Uint8Array([0]));
    });
    return u8aToHex(u8aConcat(registry.createType('Compact<u32>', parts.length).toU8a(), ...parts));
  }
}
