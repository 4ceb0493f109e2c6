// Subtensor access for the miner: one ApiPromise over a WsProvider, wrapped so that nothing hangs and a
// dead connection heals itself.
//   - connect: deadline on isReady; a failed connection is retried in the background with backoff;
//   - every call: a timeout covering the wait for a connection and the call itself;
//   - the API is re-created (new socket, new ApiPromise) when the socket closes, after
//     `maxConsecutiveFailures` failed calls in a row, and when the head stalls;
//   - a head subscription lives across re-creations; no new head for stallBlocks × blockTime → a
//     `stalled` event and a probe of the node's head (no answer, or a head the subscription never
//     delivered → reconnect; the same head → the chain itself stalled); the next head → `resumed`;
//   - writes are serialised per hotkey (one extrinsic in flight), take the nonce from
//     system_accountNextIndex, wait for in-block and report the block, or fail with a ChainTxError reason.
// Reads follow bittensor 10.1 (NOTES §2): commitments by paging CommitmentOf keys in storage-key order at
// one pinned block; the metagraph from NeuronInfoRuntimeApi.get_neurons_lite.

import { ApiPromise, WsProvider } from '@polkadot/api';
import type { SubmittableResult } from '@polkadot/api';
import type { SubmittableExtrinsic } from '@polkadot/api/types';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { Option } from '@polkadot/types';
import type { Codec } from '@polkadot/types/types';
import type { Logger } from '../telemetry/logger.js';
import { commitmentBytes, decodeUtf8Ignore, ipFromString, ipToString } from './codec.js';
import { ChainError, ChainTxError, type TxErrorDetails } from './errors.js';
import { classifyDispatchError, classifyPoolRejection, isTransportError, rpcErrorText, txError } from './tx-errors.js';
import {
  CONNITO_NETUID,
  type AxonInfo,
  type ChainMetricsSink,
  type CommitmentRecord,
  type CommitmentSnapshot,
  type HeadInfo,
  type Metagraph,
  type Neuron,
  type ServeAxonResult,
  type StallEvent,
  type TxInclusion,
  type TxOptions,
} from './types.js';

export interface ChainClientOptions {
  /** ws:// or wss:// endpoint. */
  url: string;
  netuid?: number;
  /** The hotkey that signs writes and is "this hotkey" for reads (a Wallet from loadWallet fits). */
  wallet?: { hotkey: KeyringPair };
  logger?: Logger;
  metrics?: ChainMetricsSink;
  /** Deadline for the API to become ready (per attempt, and for connect()). Default 30 s. */
  connectTimeoutMs?: number;
  /** Timeout of every read, including the wait for a connection. Default 30 s. */
  callTimeoutMs?: number;
  /** Wait for inclusion of a transaction. Default 120 s (10 blocks). */
  txTimeoutMs?: number;
  /** Re-create the API after this many failed calls in a row. Default 3. */
  maxConsecutiveFailures?: number;
  /** Expected block time. Default 12 000 ms (finney). */
  blockTimeMs?: number;
  /** Head stall = no new head for stallBlocks × blockTimeMs. Default 5. */
  stallBlocks?: number;
  /** First reconnect delay, doubled per failure up to maxReconnectDelayMs. Default 1 s / 30 s. */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** Mortality of transactions in blocks (bittensor uses 128). */
  eraPeriod?: number;
  /** axon `version` field for serveAxon (bittensor 10.1.0's version_as_int = 10001000). */
  axonVersion?: number;
}

// Four signed extensions of subtensor carry no data; polkadot-js would otherwise warn about them.
// If a future runtime adds a non-empty one, signing breaks until it is added here (NOTES §1).
const SIGNED_EXTENSIONS = {
  SudoTransactionExtension: { extrinsic: {}, payload: {} },
  CheckShieldedTxValidity: { extrinsic: {}, payload: {} },
  SubtensorTransactionExtension: { extrinsic: {}, payload: {} },
  DrandPriority: { extrinsic: {}, payload: {} },
};

const KEYS_PAGE = 1000;

type ApiAt = Awaited<ReturnType<ApiPromise['at']>>;

const closedError = (): ChainError => new ChainError('CNM_ERR_CHAIN_CLOSED', 'the chain client is closed');

// One extrinsic in flight per hotkey in this process (several clients may share a wallet).
const walletLocks = new Map<string, Promise<unknown>>();

function withWalletLock<T>(address: string, fn: () => Promise<T>): Promise<T> {
  const prev = walletLocks.get(address) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => undefined);
  walletLocks.set(address, tail);
  void tail.then(() => {
    if (walletLocks.get(address) === tail) walletLocks.delete(address);
  });
  return run;
}

class TimeoutError extends Error {}

function within<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  const ms = deadline - Date.now();
  if (ms <= 0) return Promise.reject(new TimeoutError(what));
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError(what)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

interface RegistrationLike extends Codec {
  block: { toNumber(): number };
  info: { fields: Array<Codec & { type: string; value: Codec }> };
}

interface NeuronLiteLike {
  uid: { toNumber(): number };
  hotkey: Codec;
  coldkey: Codec;
  active: { isTrue: boolean };
  lastUpdate: { toNumber(): number };
  validatorPermit: { isTrue: boolean };
  incentive: { toNumber(): number };
  stake: Array<[Codec, { toString(): string }]>;
  axonInfo: AxonCodec;
}

interface AxonCodec {
  block: { toNumber(): number };
  version: { toNumber(): number };
  ip: { toString(): string };
  port: { toNumber(): number };
  ipType: { toNumber(): number };
  protocol: { toNumber(): number };
  placeholder1: { toNumber(): number };
  placeholder2: { toNumber(): number };
}

function axonFrom(a: AxonCodec): AxonInfo & { ipRaw: bigint; placeholder1: number; placeholder2: number } {
  const ipRaw = BigInt(a.ip.toString());
  return {
    ip: ipToString(ipRaw),
    ipRaw,
    port: a.port.toNumber(),
    ipType: a.ipType.toNumber(),
    protocol: a.protocol.toNumber(),
    version: a.version.toNumber(),
    block: a.block.toNumber(),
    placeholder1: a.placeholder1.toNumber(),
    placeholder2: a.placeholder2.toNumber(),
  };
}

function publicAxon(a: ReturnType<typeof axonFrom>): AxonInfo {
  return { ip: a.ip, port: a.port, ipType: a.ipType, protocol: a.protocol, version: a.version, block: a.block };
}

export class ChainClient {
  readonly url: string;
  readonly netuid: number;
  readonly #log: Logger | undefined;
  readonly #metrics: ChainMetricsSink;
  readonly #pair: KeyringPair | undefined;
  readonly #o: Required<
    Pick<
      ChainClientOptions,
      | 'connectTimeoutMs'
      | 'callTimeoutMs'
      | 'txTimeoutMs'
      | 'maxConsecutiveFailures'
      | 'blockTimeMs'
      | 'stallBlocks'
      | 'reconnectDelayMs'
      | 'maxReconnectDelayMs'
      | 'eraPeriod'
      | 'axonVersion'
    >
  >;

  #api: ApiPromise | null = null;
  #connecting: Promise<ApiPromise> | null = null;
  #closed = false;
  #failures = 0;
  #reconnects = 0;
  /** metadata cache keyed `${genesisHash}-${specVersion}`: a re-created API does not download it again. */
  readonly #metadata: Record<string, `0x${string}`> = {};

  #lastHead: HeadInfo | null = null;
  #lastHeadAt = Date.now();
  #everConnected = false;
  #stalled = false;
  #lastStallProbe = 0;
  #probing = false;
  readonly #stallTimer: NodeJS.Timeout;
  readonly #headListeners = new Set<(h: HeadInfo) => void>();
  readonly #stallListeners = new Set<(e: StallEvent) => void>();

  constructor(opts: ChainClientOptions) {
    if (!/^wss?:\/\//.test(opts.url)) {
      throw new ChainError('CNM_ERR_CHAIN_ARG', `chain endpoint "${opts.url}" must start with ws:// or wss:// (check chain.network)`);
    }
    this.url = opts.url;
    this.netuid = opts.netuid ?? CONNITO_NETUID;
    this.#log = opts.logger;
    this.#metrics = opts.metrics ?? {};
    this.#pair = opts.wallet?.hotkey;
    this.#o = {
      connectTimeoutMs: opts.connectTimeoutMs ?? 30_000,
      callTimeoutMs: opts.callTimeoutMs ?? 30_000,
      txTimeoutMs: opts.txTimeoutMs ?? 120_000,
      maxConsecutiveFailures: opts.maxConsecutiveFailures ?? 3,
      blockTimeMs: opts.blockTimeMs ?? 12_000,
      stallBlocks: opts.stallBlocks ?? 5,
      reconnectDelayMs: opts.reconnectDelayMs ?? 1_000,
      maxReconnectDelayMs: opts.maxReconnectDelayMs ?? 30_000,
      eraPeriod: opts.eraPeriod ?? 128,
      axonVersion: opts.axonVersion ?? 10_001_000,
    };
    const stallMs = this.#o.stallBlocks * this.#o.blockTimeMs;
    this.#stallTimer = setInterval(() => this.#checkStall(), Math.max(20, Math.min(1_000, Math.floor(stallMs / 4))));
    this.#stallTimer.unref();
  }

  /** Create a client and wait (up to connectTimeoutMs) for the first connection. */
  static async connect(opts: ChainClientOptions): Promise<ChainClient> {
    const c = new ChainClient(opts);
    try {
      await c.ready();
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  /** SS58 of the wallet's hotkey, or null for a read-only client. */
  get hotkeyAddress(): string | null {
    return this.#pair?.address ?? null;
  }

  /** Wait until connected, up to `timeoutMs` (default connectTimeoutMs). */
  async ready(timeoutMs = this.#o.connectTimeoutMs): Promise<void> {
    try {
      await within(this.#apiNow(), Date.now() + timeoutMs, 'connect');
    } catch (e) {
      if (e instanceof ChainError) throw e;
      throw new ChainError(
        'CNM_ERR_CHAIN_CONNECT',
        `could not connect to the chain at ${this.url} within ${timeoutMs} ms: ${e instanceof TimeoutError ? 'no ready API' : rpcErrorText(e)}. ` +
          'Check chain.network and that the endpoint is reachable.',
        { cause: e },
      );
    }
  }

  health(): { connected: boolean; lastHead: HeadInfo | null; stalled: boolean; reconnects: number; consecutiveFailures: number } {
    return {
      connected: this.#api?.isConnected ?? false,
      lastHead: this.#lastHead,
      stalled: this.#stalled,
      reconnects: this.#reconnects,
      consecutiveFailures: this.#failures,
    };
  }

  lastHead(): HeadInfo | null {
    return this.#lastHead;
  }

  /** Every new best head (deduplicated across reconnects). Returns an unsubscribe function. */
  onHead(listener: (h: HeadInfo) => void): () => void {
    this.#headListeners.add(listener);
    return () => this.#headListeners.delete(listener);
  }

  /** Head stalls and recoveries. */
  onStall(listener: (e: StallEvent) => void): () => void {
    this.#stallListeners.add(listener);
    return () => this.#stallListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#stallTimer);
    this.#headListeners.clear();
    this.#stallListeners.clear();
    const api = this.#api;
    this.#api = null;
    if (api !== null) await api.disconnect().catch(() => undefined);
  }

  // --- connection ---------------------------------------------------------------------------------

  #apiNow(): Promise<ApiPromise> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#api !== null && this.#api.isConnected) return Promise.resolve(this.#api);
    return this.#connect();
  }

  #connect(): Promise<ApiPromise> {
    if (this.#connecting !== null) return this.#connecting;
    const p = (async () => {
      for (let attempt = 0; ; attempt++) {
        if (this.#closed) throw closedError();
        try {
          return await this.#open();
        } catch (e) {
          if (this.#closed) throw closedError();
          const delay = Math.min(this.#o.maxReconnectDelayMs, this.#o.reconnectDelayMs * 2 ** Math.min(attempt, 16));
          this.#log?.warn({ url: this.url, attempt: attempt + 1, retry_ms: delay, err: rpcErrorText(e) }, 'chain connection failed');
          await sleep(delay);
        }
      }
    })();
    this.#connecting = p;
    const clear = (): void => {
      if (this.#connecting === p) this.#connecting = null;
    };
    p.then(clear, clear);
    return p;
  }

  async #open(): Promise<ApiPromise> {
    const provider = new WsProvider(this.url, false, {}, this.#o.callTimeoutMs);
    const api = new ApiPromise({ provider, noInitWarn: true, signedExtensions: SIGNED_EXTENSIONS, metadata: this.#metadata });
    api.on('error', (e: unknown) => this.#log?.debug({ err: rpcErrorText(e) }, 'chain api error'));
    let onDisconnect: (() => void) | undefined;
    const lost = new Promise<never>((_, reject) => {
      onDisconnect = () => reject(new Error(`disconnected from ${this.url} while connecting`));
      provider.on('disconnected', onDisconnect);
    });
    lost.catch(() => undefined);
    try {
      await provider.connect();
      await within(Promise.race([api.isReadyOrError, lost]), Date.now() + this.#o.connectTimeoutMs, 'api ready');
      if (this.#closed) throw closedError();
      const key = `${api.genesisHash.toHex()}-${api.runtimeVersion.specVersion.toString()}`;
      this.#metadata[key] ??= api.runtimeMetadata.toHex();
      await within(
        api.rpc.chain.subscribeNewHeads((h) => this.#onHead(api, h.number.toNumber(), h.hash.toHex())),
        Date.now() + this.#o.callTimeoutMs,
        'subscribe heads',
      );
    } catch (e) {
      await api.disconnect().catch(() => undefined);
      throw e instanceof TimeoutError ? new Error(`no ready API within ${this.#o.connectTimeoutMs} ms`) : e;
    }
    if (this.#closed) {
      // close() ran while this connection was being set up: do not leave a socket behind.
      await api.disconnect().catch(() => undefined);
      throw closedError();
    }
    provider.on('disconnected', () => this.#onDisconnected(api));
    this.#api = api;
    // Stall detection starts with the first connection (a slow first connect is not a stalled chain).
    if (!this.#everConnected) {
      this.#everConnected = true;
      if (this.#lastHead === null) this.#lastHeadAt = Date.now();
    }
    this.#log?.info(
      { url: this.url, spec_version: api.runtimeVersion.specVersion.toNumber(), genesis: api.genesisHash.toHex(), reconnects: this.#reconnects },
      'chain connected',
    );
    return api;
  }

  #onDisconnected(api: ApiPromise): void {
    if (this.#api !== api || this.#closed) return;
    this.#log?.warn({ url: this.url }, 'chain connection lost; reconnecting');
    this.#recreate('connection closed');
  }

  #recreate(reason: string): void {
    const old = this.#api;
    this.#api = null;
    this.#failures = 0;
    this.#reconnects++;
    this.#metrics.reconnect?.(reason);
    if (old !== null) void old.disconnect().catch(() => undefined);
    if (!this.#closed) this.#connect().catch(() => undefined);
  }

  #onHead(api: ApiPromise, number: number, hash: string): void {
    if (this.#api !== null && this.#api !== api) return; // a stale API's late notification
    const prev = this.#lastHead;
    if (prev !== null && prev.hash === hash) return; // re-sent on (re)subscription
    const now = Date.now();
    const head: HeadInfo = { number, hash, seenAt: now };
    const silentMs = now - this.#lastHeadAt;
    this.#lastHead = head;
    this.#lastHeadAt = now;
    this.#metrics.head?.(number);
    if (this.#stalled) {
      this.#stalled = false;
      this.#log?.info({ block: number, silent_s: Math.round(silentMs / 100) / 10 }, 'chain head resumed');
      this.#emitStall({ type: 'resumed', head, silentMs });
    }
    for (const l of [...this.#headListeners]) {
      try {
        l(head);
      } catch (e) {
        this.#log?.error({ err: e }, 'head listener threw');
      }
    }
  }

  #checkStall(): void {
    if (this.#closed || !this.#everConnected) return;
    const stallMs = this.#o.stallBlocks * this.#o.blockTimeMs;
    const silentMs = Date.now() - this.#lastHeadAt;
    if (silentMs <= stallMs) return;
    if (!this.#stalled) {
      this.#stalled = true;
      this.#log?.warn(
        { last_block: this.#lastHead?.number ?? null, silent_s: Math.round(silentMs / 100) / 10, limit_blocks: this.#o.stallBlocks },
        'chain head stalled: no new block',
      );
      this.#metrics.headStall?.(silentMs / 1000);
      this.#emitStall({ type: 'stalled', lastHead: this.#lastHead, silentMs });
    }
    // Tell a stalled chain from a dead connection or a dead subscription, at most once per stall period:
    // ask the node for its head. No answer → rebuild the connection; a newer head than the subscription
    // delivered → rebuild (the subscription is gone); the same head → the chain itself stalled, keep it.
    const api = this.#api;
    if (api !== null && !this.#probing && Date.now() - this.#lastStallProbe > stallMs) {
      this.#lastStallProbe = Date.now();
      this.#probing = true;
      within(api.rpc.chain.getHeader(), Date.now() + Math.min(this.#o.callTimeoutMs, Math.max(1_000, stallMs)), 'stall probe')
        .then(
          (h) => {
            // Judge at answer time: heads may have resumed while the probe was out.
            const last = this.#lastHead?.number ?? -1;
            if (this.#stalled && this.#api === api && h.number.toNumber() > last) {
              this.#log?.warn({ node_head: h.number.toNumber(), last_seen: last }, 'the node advanced but no head arrived; re-subscribing');
              this.#recreate('head subscription silent');
            } else {
              this.#log?.debug({ node_head: h.number.toNumber() }, 'connection alive: the chain itself is stalled');
            }
          },
          (e: unknown) => {
            if (this.#api !== api || !this.#stalled) return;
            this.#log?.warn({ err: rpcErrorText(e) }, 'no answer from the node during a head stall; reconnecting');
            this.#recreate('connection silent');
          },
        )
        .finally(() => {
          this.#probing = false;
        });
    }
  }

  #emitStall(e: StallEvent): void {
    for (const l of [...this.#stallListeners]) {
      try {
        l(e);
      } catch (err) {
        this.#log?.error({ err }, 'stall listener threw');
      }
    }
  }

  /** Run one chain operation with a deadline; count failures; rebuild the API when they pile up. */
  async #call<T>(op: string, fn: (api: ApiPromise, deadline: number) => Promise<T>, timeoutMs = this.#o.callTimeoutMs): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    try {
      const api = await within(this.#apiNow(), deadline, `${op}: waiting for a connection`);
      const out = await within(fn(api, deadline), deadline, op);
      this.#failures = 0;
      return out;
    } catch (e) {
      if (e instanceof ChainError && (e.code === 'CNM_ERR_CHAIN_CLOSED' || e.code === 'CNM_ERR_CHAIN_ARG' || e.code === 'CNM_ERR_CHAIN_BLOCK_UNAVAILABLE')) {
        throw e;
      }
      const kind = e instanceof TimeoutError ? 'timeout' : isTransportError(e) ? 'disconnected' : 'rpc';
      this.#failures++;
      this.#metrics.rpcError?.(op, kind);
      this.#log?.warn({ op, kind, failures: this.#failures, err: rpcErrorText(e) }, 'chain call failed');
      if (kind !== 'rpc' && this.#failures >= this.#o.maxConsecutiveFailures && this.#api !== null) {
        this.#log?.warn({ failures: this.#failures }, 'chain calls keep failing; re-creating the API');
        this.#recreate('repeated failures');
      }
      if (kind === 'timeout') {
        throw new ChainError('CNM_ERR_CHAIN_TIMEOUT', `chain call ${op} did not complete within ${timeoutMs} ms (${this.url})`, { cause: e });
      }
      throw new ChainError('CNM_ERR_CHAIN_RPC', `chain call ${op} failed: ${rpcErrorText(e)}`, { cause: e });
    }
  }

  /** The decorated API at `block` (pinned to the head's hash when absent), with that block's number and hash. */
  async #at(api: ApiPromise, block: number | undefined): Promise<{ at: ApiAt; number: number; hash: string }> {
    let hash: string;
    let number: number;
    if (block === undefined) {
      const h = await api.rpc.chain.getHeader();
      hash = h.hash.toHex();
      number = h.number.toNumber();
    } else {
      if (!Number.isInteger(block) || block < 0) throw new ChainError('CNM_ERR_CHAIN_ARG', `invalid block number ${block}`);
      const bh = await api.rpc.chain.getBlockHash(block);
      if (bh.isEmpty) {
        throw new ChainError('CNM_ERR_CHAIN_BLOCK_UNAVAILABLE', `block ${block} is not known to ${this.url} (beyond the head?)`);
      }
      hash = bh.toHex();
      number = block;
    }
    try {
      return { at: await api.at(hash), number, hash };
    } catch (e) {
      throw this.#historical(e, number);
    }
  }

  /** `read` against the state at `block` (default: head); pruned state becomes CNM_ERR_CHAIN_BLOCK_UNAVAILABLE. */
  async #readAt<T>(api: ApiPromise, block: number | undefined, read: (at: ApiAt) => Promise<T>): Promise<{ value: T; number: number; hash: string }> {
    const { at, number, hash } = await this.#at(api, block);
    try {
      return { value: await read(at), number, hash };
    } catch (e) {
      throw this.#historical(e, number);
    }
  }

  #historical(e: unknown, block: number): unknown {
    if (/State already discarded|UnknownBlock/i.test(rpcErrorText(e))) {
      return new ChainError(
        'CNM_ERR_CHAIN_BLOCK_UNAVAILABLE',
        `state of block ${block} is no longer available on ${this.url} (pruned). Historical reads need an archive node: set chain.network to one.`,
        { cause: e },
      );
    }
    return e;
  }

  #requirePair(op: string): KeyringPair {
    if (this.#pair === undefined) {
      throw new ChainError('CNM_ERR_CHAIN_NO_WALLET', `${op} needs the hotkey, but this chain client was created without a wallet`);
    }
    return this.#pair;
  }

  #hotkeyOr(hotkey: string | undefined, op: string): string {
    return hotkey ?? this.#requirePair(op).address;
  }

  // --- reads --------------------------------------------------------------------------------------

  /** Best block number. */
  currentBlock(): Promise<number> {
    return this.#call('currentBlock', async (api) => (await api.rpc.chain.getHeader()).number.toNumber());
  }

  /** Hash of block `n`. */
  blockHash(n: number): Promise<string> {
    return this.#call('blockHash', async (api) => {
      const h = await api.rpc.chain.getBlockHash(n);
      if (h.isEmpty) throw new ChainError('CNM_ERR_CHAIN_BLOCK_UNAVAILABLE', `block ${n} is not known to ${this.url}`);
      return h.toHex();
    });
  }

  /**
   * Every commitment of the subnet at `block` (default: the head), in storage-key order — the order of
   * bittensor's `get_all_commitments` (a query_map: state_getKeysPaged pages, then state_queryStorageAt),
   * which decides assignment ties (PROTOCOL §3.3).
   */
  allCommitments(opts: { block?: number; timeoutMs?: number } = {}): Promise<CommitmentSnapshot> {
    return this.#call(
      'allCommitments',
      async (api) => {
        const { value: commitments, number, hash } = await this.#readAt(api, opts.block, async (at) => {
          const entry = at.query.commitments!.commitmentOf!;
          const out: CommitmentRecord[] = [];
          let startKey: string | undefined;
          for (;;) {
            const page = await entry.entriesPaged({ args: [this.netuid], pageSize: KEYS_PAGE, ...(startKey ? { startKey } : {}) });
            for (const [key, value] of page) {
              const hotkey = key.args[1]!.toString();
              const rec = registrationRecord(hotkey, value as Option<RegistrationLike>);
              if (rec !== null) out.push(rec);
            }
            if (page.length < KEYS_PAGE) return out;
            startKey = page[page.length - 1]![0].toHex();
          }
        });
        return { block: number, blockHash: hash, commitments };
      },
      opts.timeoutMs,
    );
  }

  /** One hotkey's commitment (default: this wallet's hotkey) at `block` (default: head); null if none. */
  commitment(opts: { hotkey?: string; block?: number } = {}): Promise<CommitmentRecord | null> {
    const hotkey = this.#hotkeyOr(opts.hotkey, 'commitment');
    return this.#call('commitment', async (api) => {
      const { value } = await this.#readAt(api, opts.block, (at) => at.query.commitments!.commitmentOf!(this.netuid, hotkey));
      return registrationRecord(hotkey, value as Option<RegistrationLike>);
    });
  }

  /** uid ↔ hotkey, last_update, axons, validator permits and stake at `block` (default: head). */
  metagraph(opts: { block?: number; timeoutMs?: number } = {}): Promise<Metagraph> {
    return this.#call(
      'metagraph',
      async (api) => {
        const { value: raw, number, hash } = await this.#readAt(api, opts.block, (at) =>
          at.call.neuronInfoRuntimeApi!.getNeuronsLite!(this.netuid),
        );
        const neurons: Neuron[] = [];
        for (const n of raw as unknown as NeuronLiteLike[]) {
          const uid = n.uid.toNumber();
          neurons[uid] = {
            uid,
            hotkey: n.hotkey.toString(),
            coldkey: n.coldkey.toString(),
            active: n.active.isTrue,
            lastUpdate: n.lastUpdate.toNumber(),
            validatorPermit: n.validatorPermit.isTrue,
            stake: n.stake.reduce((s, [, v]) => s + BigInt(v.toString()), 0n),
            incentive: n.incentive.toNumber() / 65535,
            axon: publicAxon(axonFrom(n.axonInfo)),
          };
        }
        return { netuid: this.netuid, block: number, blockHash: hash, neurons: Array.from(neurons, (x, i) => x ?? placeholder(i)) };
      },
      opts.timeoutMs,
    );
  }

  /** uid of a hotkey (default: this wallet's) on the subnet, or null when not registered. */
  uid(opts: { hotkey?: string; block?: number } = {}): Promise<number | null> {
    const hotkey = this.#hotkeyOr(opts.hotkey, 'uid');
    return this.#call('uid', async (api) => {
      const { value } = await this.#readAt(api, opts.block, (at) => at.query.subtensorModule!.uids!(this.netuid, hotkey));
      const o = value as Option<Codec & { toNumber(): number }>;
      return o.isSome ? o.unwrap().toNumber() : null;
    });
  }

  async isRegistered(opts: { hotkey?: string; block?: number } = {}): Promise<boolean> {
    return (await this.uid(opts)) !== null;
  }

  /** The axon record of a hotkey (default: this wallet's), or null when never served. */
  axon(opts: { hotkey?: string; block?: number } = {}): Promise<AxonInfo | null> {
    const hotkey = this.#hotkeyOr(opts.hotkey, 'axon');
    return this.#call('axon', async (api) => {
      const { value } = await this.#readAt(api, opts.block, (at) => at.query.subtensorModule!.axons!(this.netuid, hotkey));
      const o = value as Option<Codec & AxonCodec>;
      return o.isSome ? publicAxon(axonFrom(o.unwrap())) : null;
    });
  }

  // --- writes -------------------------------------------------------------------------------------

  /**
   * Commit `data` (≤ 128 UTF-8 bytes) for this hotkey: `Commitments.set_commitment(netuid, {fields: [RawN]})`,
   * as bittensor's `set_commitment`. Resolves when the extrinsic is in a block, with that block.
   */
  async setCommitment(data: string, opts: TxOptions = {}): Promise<TxInclusion> {
    const bytes = commitmentBytes(data);
    const t0 = Date.now();
    try {
      const res = await this.#submit(
        'setCommitment',
        'commitments.setCommitment',
        (api) => api.tx.commitments!.setCommitment!(this.netuid, { fields: [{ [`Raw${bytes.length}`]: bytes }] }),
        opts,
      );
      this.#metrics.commitLatency?.((Date.now() - t0) / 1000, true);
      this.#log?.info({ block: res.blockNumber, block_hash: res.blockHash, bytes: bytes.length, latency_ms: res.latencyMs }, 'Committed status to chain');
      return res;
    } catch (e) {
      this.#metrics.commitLatency?.((Date.now() - t0) / 1000, false);
      this.#log?.warn(
        { reason: e instanceof ChainTxError ? e.reason : undefined, code: (e as ChainError).code, err: (e as Error).message },
        'Failed to commit status to chain',
      );
      throw e;
    }
  }

  /**
   * Publish this hotkey's axon (`SubtensorModule.serve_axon`, protocol 4 as bittensor). Skipped, like
   * bittensor, when the chain already holds the same record.
   */
  async serveAxon(axon: { ip: string; port: number; protocol?: number; version?: number }, opts: TxOptions = {}): Promise<ServeAxonResult> {
    const pair = this.#requirePair('serveAxon');
    const { ip, ipType } = ipFromString(axon.ip);
    if (!Number.isInteger(axon.port) || axon.port < 0 || axon.port > 65535) {
      throw new ChainError('CNM_ERR_CHAIN_ARG', `axon port ${axon.port} is out of range (check chain.port)`);
    }
    const want = { version: axon.version ?? this.#o.axonVersion, ip, port: axon.port, ipType, protocol: axon.protocol ?? 4 };
    const current = await this.#call('serveAxon', async (api) => {
      const o = (await api.query.subtensorModule!.axons!(this.netuid, pair.address)) as Option<Codec & AxonCodec>;
      return o.isSome ? axonFrom(o.unwrap()) : null;
    });
    if (
      current !== null &&
      current.version === want.version &&
      current.ipRaw === want.ip &&
      current.port === want.port &&
      current.ipType === want.ipType &&
      current.protocol === want.protocol &&
      current.placeholder1 === 0 &&
      current.placeholder2 === 0
    ) {
      this.#log?.info({ ip: current.ip, port: current.port }, 'axon already served with these values; skipping serve_axon');
      return { skipped: true, axon: publicAxon(current) };
    }
    const res = await this.#submit(
      'serveAxon',
      'subtensorModule.serveAxon',
      (api) => api.tx.subtensorModule!.serveAxon!(this.netuid, want.version, want.ip, want.port, want.ipType, want.protocol, 0, 0),
      opts,
    );
    this.#log?.info({ ip: axon.ip, port: axon.port, block: res.blockNumber }, 'axon served');
    return { skipped: false, ...res };
  }

  /** `SubtensorModule.set_weights` (validators; the devnet validator uses it). */
  setWeights(uids: number[], weights: number[], versionKey: number | bigint, opts: TxOptions = {}): Promise<TxInclusion> {
    return this.#submit(
      'setWeights',
      'subtensorModule.setWeights',
      (api) => api.tx.subtensorModule!.setWeights!(this.netuid, uids, weights, versionKey),
      opts,
    );
  }

  /** Sign with the hotkey, submit, wait for in-block. One at a time per hotkey. */
  #submit(
    op: string,
    call: string,
    build: (api: ApiPromise) => SubmittableExtrinsic<'promise'>,
    opts: TxOptions,
  ): Promise<TxInclusion> {
    const pair = this.#requirePair(op);
    const timeoutMs = opts.timeoutMs ?? this.#o.txTimeoutMs;
    return withWalletLock(pair.address, async () => {
      const t0 = Date.now();
      const deadline = t0 + timeoutMs;
      const base: TxErrorDetails = { call, signer: pair.address };
      const prep = await this.#call(
        op,
        async (api) => {
          const nonce = opts.nonce ?? (await api.rpc.system.accountNextIndex(pair.address)).toNumber();
          return { api, nonce };
        },
        Math.min(this.#o.callTimeoutMs, Math.max(1, deadline - Date.now())),
      );
      const d: TxErrorDetails = { ...base, nonce: prep.nonce };
      try {
        const r = await this.#watch(prep.api, build(prep.api), pair, prep.nonce, deadline, opts.signal, d);
        this.#failures = 0;
        return { ...r, nonce: prep.nonce, latencyMs: Date.now() - t0 };
      } catch (e) {
        if (e instanceof ChainTxError || (e as Error).name === 'AbortError') throw e;
        const kind = isTransportError(e) ? 'disconnected' : 'rpc';
        this.#failures++;
        this.#metrics.rpcError?.(op, kind);
        if (kind === 'disconnected' && this.#failures >= this.#o.maxConsecutiveFailures && this.#api !== null) this.#recreate('repeated failures');
        throw new ChainError(
          'CNM_ERR_CHAIN_RPC',
          `${call} by ${pair.address}: the connection failed while submitting (${rpcErrorText(e)}); the transaction may or may not have landed`,
          { cause: e },
        );
      }
    });
  }

  #watch(
    api: ApiPromise,
    tx: SubmittableExtrinsic<'promise'>,
    pair: KeyringPair,
    nonce: number,
    deadline: number,
    signal: AbortSignal | undefined,
    d: TxErrorDetails,
  ): Promise<{ blockNumber: number; blockHash: string; txHash: string }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let unsub: (() => void) | null = null;
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => finish(() => reject(signal?.reason ?? Object.assign(new Error('aborted'), { name: 'AbortError' })));
      const finish = (f: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (unsub !== null) unsub();
        f();
      };
      timer = setTimeout(
        () => finish(() => reject(txError('timeout', { ...d, detail: `no in-block status within ${Math.max(0, deadline - Date.now())} ms` }, this.netuid))),
        Math.max(1, deadline - Date.now()),
      );
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort);
      const txHash = (): string => tx.hash.toHex();
      tx.signAndSend(pair, { nonce, era: this.#o.eraPeriod }, (r: SubmittableResult) => {
        const s = r.status;
        if (s.isInBlock || s.isFinalized) {
          const blockHash = (s.isInBlock ? s.asInBlock : s.asFinalized).toHex();
          if (r.internalError !== undefined) {
            finish(() =>
              reject(new ChainError('CNM_ERR_CHAIN_RPC', `${d.call} is in block ${blockHash} but its events could not be read: ${rpcErrorText(r.internalError)}`)),
            );
            return;
          }
          const blockNumber = r.blockNumber?.toNumber() ?? -1;
          if (r.dispatchError !== undefined) {
            let module: string | null = null;
            let detail = r.dispatchError.toString();
            if (r.dispatchError.isModule) {
              const meta = api.registry.findMetaError(r.dispatchError.asModule);
              module = `${meta.section}.${meta.name}`;
              detail = meta.docs.join(' ').trim() || meta.name;
            }
            const reason = classifyDispatchError(module);
            finish(() => reject(txError(reason, { ...d, detail, ...(module ? { module } : {}), blockHash, blockNumber }, this.netuid)));
            return;
          }
          finish(() => resolve({ blockNumber, blockHash, txHash: txHash() }));
        } else if (s.isInvalid || s.isDropped || s.isUsurped) {
          finish(() => reject(txError('dropped', { ...d, detail: `pool status ${s.type}` }, this.netuid)));
        }
      })
        .then((u) => {
          if (settled) u();
          else unsub = u;
        })
        .catch((e: unknown) => {
          if (isTransportError(e)) return finish(() => reject(e));
          const { reason, detail } = classifyPoolRejection(e);
          finish(() => reject(txError(reason, { ...d, detail }, this.netuid, e)));
        });
    });
  }
}

function registrationRecord(hotkey: string, opt: Option<RegistrationLike>): CommitmentRecord | null {
  if (opt.isNone) return null;
  const reg = opt.unwrap();
  const first = reg.info.fields[0];
  if (first === undefined) return { hotkey, block: reg.block.toNumber(), data: null, field: null };
  const field = first.type;
  // bittensor reads the first field's payload whatever its variant; only Raw payloads are text.
  const data = /^Raw\d+$/.test(field) ? decodeUtf8Ignore(first.value.toU8a(true)) : null;
  return { hotkey, block: reg.block.toNumber(), data, field };
}

function placeholder(uid: number): Neuron {
  return {
    uid,
    hotkey: '',
    coldkey: '',
    active: false,
    lastUpdate: 0,
    validatorPermit: false,
    stake: 0n,
    incentive: 0,
    axon: { ip: '0.0.0.0', port: 0, ipType: 0, protocol: 0, version: 0, block: 0 },
  };
}
