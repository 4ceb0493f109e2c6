// The devnode: a loopback WebSocket JSON-RPC server speaking the Substrate RPC that @polkadot/api
// (and the production chain client) uses, over a DevChain that produces blocks on a timer. Faults can
// be injected: drop every connection, delay (or swallow) responses, stall block production, reject
// the next extrinsic, refuse new connections.

import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { hexToU8a } from '@polkadot/util';
import { blake2AsHex } from '@polkadot/util-crypto';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../../telemetry/logger.js';
import { DevChain, type Block, type TxStatus } from './chain.js';
import { RpcError } from './errors.js';
import { defaultGenesis, parseGenesis, type Genesis, type GenesisInput } from './genesis.js';
import { callRuntimeApi } from './runtime-api.js';

export interface DevnodeOptions {
  /** Genesis as JSON input (validated); default: defaultGenesis() (subnet 102: //Alice validator, //Bob and //Charlie miners). */
  genesis?: GenesisInput | Genesis;
  /** Block time in ms; 0 = produce blocks only through produceBlock(). Default 1000. */
  blockMs?: number;
  /** TCP port on 127.0.0.1; 0 (default) = any free port. */
  port?: number;
  host?: string;
  /** Blocks of state kept for historical reads. Default 4096. */
  historyBlocks?: number;
  /** Finalized = best − lag. Default 2. */
  finalityLag?: number;
  /** Let serve_axon announce 127.0.0.1 / ::1 (finney refuses them). Default false. */
  allowLoopbackAxon?: boolean;
  logger?: Logger;
}

export interface DevnodeFaults {
  /** Abruptly close every open connection (as a network cut would). Returns how many were closed. */
  dropConnections(): number;
  /** Hold every response (or only those of `methods`) for `ms`; Infinity swallows them; 0 clears. */
  delayResponses(ms: number, methods?: string[]): void;
  /** Stop producing blocks until resumeBlocks(). */
  stallBlocks(): void;
  resumeBlocks(): void;
  /** The next submitted extrinsic is rejected with this JSON-RPC error (default 1010 "Custom error: 255"). */
  rejectNextExtrinsic(error?: { code?: number; message?: string; data?: string }): void;
  /** While on, new WebSocket connections are closed at once. */
  refuseConnections(on: boolean): void;
  /** While on, subscription notifications (heads, storage, extrinsic status) are not sent. */
  muteSubscriptions(on: boolean): void;
}

export interface Devnode {
  url: string;
  port: number;
  chain: DevChain;
  faults: DevnodeFaults;
  head(): { number: number; hash: string };
  /** Produce one block now (also works while the timer runs or is stalled). */
  produceBlock(): Block;
  /** Resolves when block `n` exists. */
  waitForBlock(n: number, timeoutMs?: number): Promise<Block>;
  connections(): number;
  /** How often each RPC method was called (tests check which code paths ran). */
  rpcCalls(): ReadonlyMap<string, number>;
  stop(): Promise<void>;
}

type Params = unknown[];

interface Conn {
  ws: WebSocket;
  subs: Map<string, () => void>;
}

interface Handled {
  result: unknown;
  /** Runs after the response is sent (first notification of a subscription). */
  after?: () => void;
}

const SUBSCRIPTIONS: Record<string, { notify: string; kind: 'new' | 'finalized' | 'all' | 'runtime' | 'storage' }> = {
  chain_subscribeNewHead: { notify: 'chain_newHead', kind: 'new' },
  chain_subscribeNewHeads: { notify: 'chain_newHead', kind: 'new' },
  subscribe_newHead: { notify: 'chain_newHead', kind: 'new' },
  chain_subscribeFinalizedHeads: { notify: 'chain_finalizedHead', kind: 'finalized' },
  chain_subscribeFinalisedHeads: { notify: 'chain_finalizedHead', kind: 'finalized' },
  chain_subscribeAllHeads: { notify: 'chain_allHead', kind: 'all' },
  state_subscribeRuntimeVersion: { notify: 'state_runtimeVersion', kind: 'runtime' },
  chain_subscribeRuntimeVersion: { notify: 'state_runtimeVersion', kind: 'runtime' },
  state_subscribeStorage: { notify: 'state_storage', kind: 'storage' },
};

const UNSUBSCRIBE = [
  'chain_unsubscribeNewHead',
  'chain_unsubscribeNewHeads',
  'unsubscribe_newHead',
  'chain_unsubscribeFinalizedHeads',
  'chain_unsubscribeFinalisedHeads',
  'chain_unsubscribeAllHeads',
  'state_unsubscribeRuntimeVersion',
  'chain_unsubscribeRuntimeVersion',
  'state_unsubscribeStorage',
  'author_unwatchExtrinsic',
];

const MAX_PAGE = 1000;

function str(p: unknown, what: string): string {
  if (typeof p !== 'string') throw new RpcError(-32602, 'Invalid params', `${what}: expected a hex string`);
  return p;
}

function optAt(p: unknown): string | null {
  return typeof p === 'string' ? p : null;
}

function txStatusJson(s: TxStatus): unknown {
  return s;
}

export async function startDevnode(opts: DevnodeOptions = {}): Promise<Devnode> {
  const genesis = parseGenesis(opts.genesis ?? defaultGenesis());
  const log = opts.logger;
  const chain = await DevChain.create({
    genesis,
    historyBlocks: opts.historyBlocks ?? 4096,
    finalityLag: opts.finalityLag ?? 2,
    rules: { allowLoopbackAxon: opts.allowLoopbackAxon ?? false },
    ...(log ? { logger: log } : {}),
  });
  const { spec } = chain;

  const conns = new Set<Conn>();
  const calls = new Map<string, number>();
  let delay: { ms: number; methods: Set<string> | null } = { ms: 0, methods: null };
  let stalled = false;
  let refusing = false;
  let nextSub = 1;
  const newSubId = (): string => `devnode-${(nextSub++).toString(36)}`;

  const send = (c: Conn, msg: unknown): void => {
    if (c.ws.readyState === WebSocket.OPEN) c.ws.send(JSON.stringify(msg));
  };
  let muted = false;
  const notify = (c: Conn, method: string, subscription: string, result: unknown): void => {
    if (!muted) send(c, { jsonrpc: '2.0', method, params: { subscription, result } });
  };

  const header = (b: Block): unknown => b.header;

  // --- subscriptions -------------------------------------------------------------------------------
  function subscribe(c: Conn, method: string, params: Params): Handled {
    const def = SUBSCRIPTIONS[method]!;
    const id = newSubId();
    let first: () => void;
    let stop: () => void;
    switch (def.kind) {
      case 'new':
      case 'all':
        first = () => notify(c, def.notify, id, header(chain.head()));
        stop = chain.onBlock((b) => notify(c, def.notify, id, header(b)));
        break;
      case 'finalized':
        first = () => notify(c, def.notify, id, header(chain.finalizedBlock()));
        stop = chain.onFinalized((b) => notify(c, def.notify, id, header(b)));
        break;
      case 'runtime':
        first = () => notify(c, def.notify, id, spec.runtimeVersion);
        stop = () => undefined;
        break;
      case 'storage': {
        const keys = Array.isArray(params[0]) ? (params[0] as unknown[]).map((k) => str(k, 'key').toLowerCase()) : [];
        let last = chain.head();
        first = () =>
          notify(c, def.notify, id, { block: last.hash, changes: keys.map((k) => [k, last.state?.get(k) ?? null]) });
        stop = chain.onBlock((b) => {
          const prev = last;
          last = b;
          const changes = keys
            .filter((k) => prev.state?.get(k) !== b.state?.get(k))
            .map((k) => [k, b.state?.get(k) ?? null]);
          if (changes.length > 0) notify(c, def.notify, id, { block: b.hash, changes });
        });
        break;
      }
    }
    c.subs.set(id, stop);
    return { result: id, after: first };
  }

  function submitAndWatch(c: Conn, params: Params): Handled {
    const id = newSubId();
    const pending: TxStatus[] = [];
    let sent = false;
    const push = (s: TxStatus): void => {
      if (!sent) {
        pending.push(s);
        return;
      }
      notify(c, 'author_extrinsicUpdate', id, txStatusJson(s));
      if (typeof s === 'string' ? s === 'invalid' || s === 'dropped' : 'finalized' in s) c.subs.get(id)?.();
    };
    let listener: ((s: TxStatus) => void) | undefined = push;
    const { status } = chain.submit(str(params[0], 'extrinsic'), (s) => listener?.(s));
    c.subs.set(id, () => {
      listener = undefined;
      c.subs.delete(id);
    });
    return {
      result: id,
      after: () => {
        sent = true;
        notify(c, 'author_extrinsicUpdate', id, status);
        for (const s of pending.splice(0)) push(s);
      },
    };
  }

  // --- methods -------------------------------------------------------------------------------------
  const blockHash = (p: unknown): string | null => {
    if (p === undefined || p === null) return chain.head().hash;
    const n = typeof p === 'string' ? Number.parseInt(p, p.startsWith('0x') ? 16 : 10) : Number(p);
    if (!Number.isInteger(n) || n < 0) throw new RpcError(-32602, 'Invalid params', `block number: ${String(p)}`);
    return chain.blockByNumber(n)?.hash ?? null;
  };
  const blockOrNull = (at: unknown): Block | null => (typeof at === 'string' ? chain.blockByHash(at) : chain.head());

  const getKeysPaged = (params: Params): string[] => {
    const prefix = str(params[0] ?? '0x', 'prefix').toLowerCase();
    const count = Number(params[1]);
    if (!Number.isInteger(count) || count < 0) throw new RpcError(-32602, 'Invalid params', 'count');
    if (count > MAX_PAGE) throw new RpcError(4002, `count exceeds maximum value. value: ${count}, max: ${MAX_PAGE}`);
    const start = typeof params[2] === 'string' ? params[2].toLowerCase() : null;
    const { state } = chain.stateAt(optAt(params[3]));
    const keys = chain.sortedKeys(state);
    // First key that has the prefix and comes strictly after start (or at the prefix when no start).
    const from = start !== null && start > prefix ? start : prefix;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keys[mid]! < from) lo = mid + 1;
      else hi = mid;
    }
    if (start !== null && start >= prefix && keys[lo] === start) lo++;
    const out: string[] = [];
    for (let i = lo; i < keys.length && out.length < count && keys[i]!.startsWith(prefix); i++) out.push(keys[i]!);
    return out;
  };

  const methods: Record<string, (c: Conn, p: Params) => unknown> = {
    rpc_methods: () => ({ version: 1, methods: [...Object.keys(methods), ...Object.keys(SUBSCRIPTIONS), ...UNSUBSCRIBE, 'author_submitAndWatchExtrinsic'].sort() }),
    system_chain: () => 'Connito Devnode',
    system_name: () => 'connito-devnode',
    system_version: () => '0.1.0',
    system_chainType: () => 'Development',
    system_properties: () => ({ ss58Format: 42, tokenDecimals: 9, tokenSymbol: 'TAO' }),
    system_health: () => ({ peers: 0, isSyncing: false, shouldHavePeers: false }),
    system_peers: () => [],
    system_nodeRoles: () => ['Authority'],
    system_localPeerId: () => '12D3KooWDevnodeConnitoMiner',
    system_syncState: () => ({ startingBlock: 0, currentBlock: chain.head().number, highestBlock: chain.head().number }),
    system_accountNextIndex: (_c, p) => chain.nextIndex(str(p[0], 'account')),
    account_nextIndex: (_c, p) => chain.nextIndex(str(p[0], 'account')),

    chain_getBlockHash: (_c, p) => (Array.isArray(p[0]) ? (p[0] as unknown[]).map(blockHash) : blockHash(p[0])),
    chain_getHead: () => chain.head().hash,
    chain_getFinalizedHead: () => chain.finalizedBlock().hash,
    chain_getFinalisedHead: () => chain.finalizedBlock().hash,
    chain_getHeader: (_c, p) => {
      const b = blockOrNull(p[0]);
      return b === null ? null : header(b);
    },
    chain_getBlock: (_c, p) => {
      const b = blockOrNull(p[0]);
      return b === null ? null : { block: { header: header(b), extrinsics: b.extrinsics }, justifications: null };
    },
    chain_getRuntimeVersion: (_c, p) => (chain.resolveAt(optAt(p[0])), spec.runtimeVersion),

    state_getRuntimeVersion: (_c, p) => (chain.resolveAt(optAt(p[0])), spec.runtimeVersion),
    state_getMetadata: (_c, p) => (chain.resolveAt(optAt(p[0])), spec.metadataHex),
    state_getStorage: (_c, p) => chain.stateAt(optAt(p[1])).state.get(str(p[0], 'key').toLowerCase()) ?? null,
    state_getStorageAt: (_c, p) => chain.stateAt(optAt(p[1])).state.get(str(p[0], 'key').toLowerCase()) ?? null,
    state_getStorageHash: (_c, p) => {
      const v = chain.stateAt(optAt(p[1])).state.get(str(p[0], 'key').toLowerCase());
      return v === undefined ? null : blake2AsHex(hexToU8a(v), 256);
    },
    state_getStorageSize: (_c, p) => {
      const v = chain.stateAt(optAt(p[1])).state.get(str(p[0], 'key').toLowerCase());
      return v === undefined ? null : (v.length - 2) / 2;
    },
    state_getKeysPaged: (_c, p) => getKeysPaged(p),
    state_getKeysPagedAt: (_c, p) => getKeysPaged(p),
    state_getKeys: (_c, p) => {
      const prefix = str(p[0] ?? '0x', 'prefix').toLowerCase();
      return chain.sortedKeys(chain.stateAt(optAt(p[1])).state).filter((k) => k.startsWith(prefix));
    },
    state_queryStorageAt: (_c, p) => {
      const { block, state } = chain.stateAt(optAt(p[1]));
      const keys = Array.isArray(p[0]) ? (p[0] as unknown[]).map((k) => str(k, 'key').toLowerCase()) : [];
      return [{ block: block.hash, changes: keys.map((k) => [k, state.get(k) ?? null]) }];
    },
    state_call: (_c, p) => {
      const { state } = chain.stateAt(optAt(p[2]));
      return callRuntimeApi(
        { spec, codec: chain.codec, state, accountNonce: (a) => chain.accountNonce(state, a) },
        str(p[0], 'method'),
        str(p[1] ?? '0x', 'data'),
      );
    },

    author_submitExtrinsic: (_c, p) => chain.submit(str(p[0], 'extrinsic')).hash,
    author_pendingExtrinsics: () => chain.pendingExtrinsics(),
    payment_queryInfo: (_c, p) => {
      str(p[0], 'extrinsic');
      return { weight: { refTime: 100_000_000, proofSize: 4_000 }, class: 'normal', partialFee: '0' };
    },
  };
  for (const m of UNSUBSCRIBE) {
    methods[m] = (c, p) => {
      const id = String(p[0]);
      const stop = c.subs.get(id);
      if (stop === undefined) return false;
      stop();
      c.subs.delete(id);
      return true;
    };
  }

  async function handle(c: Conn, raw: string): Promise<void> {
    let req: { id?: unknown; method?: unknown; params?: unknown };
    try {
      req = JSON.parse(raw) as typeof req;
    } catch {
      send(c, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
      return;
    }
    const id = req.id ?? null;
    const method = typeof req.method === 'string' ? req.method : '';
    const params = Array.isArray(req.params) ? (req.params as Params) : [];
    calls.set(method, (calls.get(method) ?? 0) + 1);
    let out: { result?: unknown; error?: unknown };
    let after: (() => void) | undefined;
    try {
      let h: Handled;
      if (method in SUBSCRIPTIONS) h = subscribe(c, method, params);
      else if (method === 'author_submitAndWatchExtrinsic') h = submitAndWatch(c, params);
      else if (methods[method] !== undefined) h = { result: methods[method](c, params) };
      else throw new RpcError(-32601, 'Method not found');
      out = { result: h.result === undefined ? null : h.result };
      after = h.after;
    } catch (e) {
      if (e instanceof RpcError) out = { error: e.toJSON() };
      else {
        log?.error({ err: e, method }, 'devnode: internal error');
        out = { error: { code: -32603, message: 'Internal error', data: (e as Error).message } };
      }
    }
    const d = delay;
    if (d.ms > 0 && (d.methods === null || d.methods.has(method))) {
      if (!Number.isFinite(d.ms)) return; // swallowed: the caller must time out
      await new Promise((r) => setTimeout(r, d.ms));
    }
    send(c, { jsonrpc: '2.0', id, ...out });
    after?.();
  }

  // --- server --------------------------------------------------------------------------------------
  const wss = new WebSocketServer({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0, maxPayload: 16 * 1024 * 1024 });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    if (refusing) {
      ws.terminate();
      return;
    }
    const c: Conn = { ws, subs: new Map() };
    conns.add(c);
    ws.on('message', (data) => {
      void handle(c, data.toString());
    });
    ws.on('close', () => {
      for (const stop of c.subs.values()) stop();
      c.subs.clear();
      conns.delete(c);
    });
    ws.on('error', () => undefined);
  });
  const port = (wss.address() as AddressInfo).port;
  const url = `ws://${opts.host ?? '127.0.0.1'}:${port}`;

  const blockMs = opts.blockMs ?? 1000;
  const produce = (): Block => {
    const b = chain.produceBlock();
    log?.debug({ block: b.number, hash: b.hash, extrinsics: b.extrinsics.length - 1 }, 'devnode: block');
    return b;
  };
  const timer =
    blockMs > 0
      ? setInterval(() => {
          if (stalled) return;
          try {
            produce();
          } catch (e) {
            log?.error({ err: e }, 'devnode: block production failed');
          }
        }, blockMs)
      : null;
  log?.info({ url, netuid: genesis.netuid, neurons: chain.neurons.length, blockMs, genesisHash: chain.genesisHash }, 'devnode listening');

  const faults: DevnodeFaults = {
    dropConnections: () => {
      const n = conns.size;
      for (const c of conns) c.ws.terminate();
      return n;
    },
    delayResponses: (ms, only) => {
      delay = { ms, methods: only === undefined ? null : new Set(only) };
    },
    stallBlocks: () => {
      stalled = true;
    },
    resumeBlocks: () => {
      stalled = false;
    },
    rejectNextExtrinsic: (e = {}) => {
      chain.rejectNextExtrinsic(new RpcError(e.code ?? 1010, e.message ?? 'Invalid Transaction', e.data ?? 'Custom error: 255'));
    },
    refuseConnections: (on) => {
      refusing = on;
    },
    muteSubscriptions: (on) => {
      muted = on;
    },
  };

  return {
    url,
    port,
    chain,
    faults,
    head: () => ({ number: chain.head().number, hash: chain.head().hash }),
    produceBlock: produce,
    waitForBlock: (n, timeoutMs = 30_000) =>
      new Promise<Block>((resolve, reject) => {
        const have = chain.blockByNumber(n);
        if (have !== null) return resolve(have);
        const t = setTimeout(() => {
          off();
          reject(new Error(`devnode: block ${n} not produced within ${timeoutMs} ms`));
        }, timeoutMs);
        const off = chain.onBlock((b) => {
          if (b.number >= n) {
            clearTimeout(t);
            off();
            resolve(chain.blockByNumber(n)!);
          }
        });
      }),
    connections: () => conns.size,
    rpcCalls: () => calls,
    stop: async () => {
      if (timer !== null) clearInterval(timer);
      for (const c of conns) c.ws.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      log?.info({ url }, 'devnode stopped');
    },
  };
}
