// The chain client under the faults a live network produces, injected by the devnode: a connection cut
// mid-call, a silent (zombie) connection, a stalled chain, an unreachable endpoint, pruned state.
import { afterEach, describe, expect, it } from 'vitest';
import { ChainClient, type ChainMetricsSink, type HeadInfo, type StallEvent } from '../../src/chain/index.js';
import { startDevnode, type Devnode } from '../../src/devnet/chain/index.js';
import { devPair, rejection, waitFor } from './helpers.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

async function setup(opts: { blockMs?: number; historyBlocks?: number } = {}, clientOpts: Partial<ConstructorParameters<typeof ChainClient>[0]> = {}) {
  const node = await startDevnode({ blockMs: opts.blockMs ?? 100, historyBlocks: opts.historyBlocks ?? 4096 });
  cleanup.push(() => node.stop());
  const events = { reconnects: [] as string[], rpcErrors: [] as string[], stalls: [] as number[] };
  const metrics: ChainMetricsSink = {
    reconnect: (r) => events.reconnects.push(r),
    rpcError: (op, kind) => events.rpcErrors.push(`${op}:${kind}`),
    headStall: (s) => events.stalls.push(s),
  };
  const client = await ChainClient.connect({
    url: node.url,
    metrics,
    blockTimeMs: 100,
    stallBlocks: 5,
    callTimeoutMs: 1_500,
    connectTimeoutMs: 5_000,
    reconnectDelayMs: 100,
    maxReconnectDelayMs: 500,
    ...clientOpts,
  });
  cleanup.push(() => client.close());
  const heads: HeadInfo[] = [];
  client.onHead((h) => heads.push(h));
  return { node, client, events, heads };
}

function maxHead(heads: HeadInfo[]): number {
  return heads.reduce((m, h) => Math.max(m, h.number), -1);
}

describe('connection faults', () => {
  it('connection killed mid-call: the call fails within its timeout, the client reconnects, the next call succeeds, heads resume', async () => {
    const { node, client, events, heads } = await setup();
    await waitFor('first heads', () => heads.length >= 2);
    node.faults.delayResponses(60_000, ['chain_getHeader']); // the call hangs on the server side
    const t0 = Date.now();
    const pending = rejection(client.currentBlock());
    await new Promise((r) => setTimeout(r, 200));
    expect(node.faults.dropConnections()).toBe(1);
    const e = await pending;
    expect(Date.now() - t0).toBeLessThan(1_500 + 700);
    expect(e.code).toMatch(/CNM_ERR_CHAIN_(RPC|TIMEOUT)/);
    node.faults.delayResponses(0);
    const lastBefore = maxHead(heads);
    await waitFor('reconnect', () => client.health().connected && events.reconnects.length >= 1, 10_000);
    expect(events.reconnects).toContain('connection closed');
    const n = await client.currentBlock();
    expect(n).toBeGreaterThanOrEqual(lastBefore);
    // The head subscription lives on the new connection.
    await waitFor('heads after reconnect', () => maxHead(heads) >= lastBefore + 3, 10_000);
    expect(node.connections()).toBe(1);
    expect(events.rpcErrors.some((x) => x.startsWith('currentBlock:'))).toBe(true);
  });

  it('a silent connection: calls time out, and after repeated failures the API is re-created', async () => {
    const { node, client, events } = await setup({}, { maxConsecutiveFailures: 3, callTimeoutMs: 600 });
    node.faults.delayResponses(Number.POSITIVE_INFINITY); // the socket stays open, nothing answers
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const e = await rejection(client.currentBlock());
      expect(e.code).toBe('CNM_ERR_CHAIN_TIMEOUT');
      expect(Date.now() - t0).toBeLessThan(600 + 700); // the timeout plus timer slack
    }
    expect(events.reconnects).toContain('repeated failures');
    node.faults.delayResponses(0);
    // The re-created API connects on a new socket; the next call succeeds.
    const n = await waitFor('a successful call', () => client.health().connected, 10_000).then(() => client.currentBlock());
    expect(n).toBeGreaterThan(0);
    expect(events.rpcErrors.filter((x) => x === 'currentBlock:timeout')).toHaveLength(3);
  });

  it('stalled blocks are detected after stallBlocks × blockTime, and the recovery is reported', async () => {
    const { node, client, events, heads } = await setup();
    const stallEvents: Array<StallEvent & { at: number }> = [];
    client.onStall((e) => stallEvents.push({ ...e, at: Date.now() }));
    await waitFor('heads', () => heads.length >= 2);
    node.faults.stallBlocks();
    const stalledAt = Date.now();
    const stalled = await waitFor('stall event', () => stallEvents.find((e) => e.type === 'stalled'), 5_000);
    // Not before 5 block times of silence, and not much later (timer slack on a loaded machine).
    expect(stalled.type === 'stalled' && stalled.silentMs).toBeGreaterThan(500);
    expect(stalled.at - stalledAt).toBeLessThan(2_000);
    expect(client.health().stalled).toBe(true);
    expect(events.stalls).toHaveLength(1);
    // The probe found the node alive at the same head: the chain stalled, the connection is kept.
    await new Promise((r) => setTimeout(r, 700));
    expect(events.reconnects).toEqual([]);
    const last = maxHead(heads);
    node.faults.resumeBlocks();
    const resumed = await waitFor('resume event', () => stallEvents.find((e) => e.type === 'resumed'), 10_000);
    expect(resumed.type === 'resumed' && resumed.head.number).toBeGreaterThan(last);
    expect(client.health().stalled).toBe(false);
  });

  it('a head subscription that goes silent while the node advances is re-established', async () => {
    const { node, client, events, heads } = await setup();
    await waitFor('heads', () => heads.length >= 2);
    node.faults.muteSubscriptions(true);
    await waitFor('re-subscription', () => events.reconnects.includes('head subscription silent'), 10_000);
    const last = maxHead(heads);
    node.faults.muteSubscriptions(false);
    await waitFor('heads again', () => maxHead(heads) > last + 2, 10_000);
    expect(client.health().connected).toBe(true);
  });

  it('a connection that answers nothing during a head stall is rebuilt', async () => {
    const { node, events, heads } = await setup({}, { callTimeoutMs: 800 });
    await waitFor('heads', () => heads.length >= 2);
    node.faults.muteSubscriptions(true);
    node.faults.delayResponses(Number.POSITIVE_INFINITY);
    await waitFor('reconnect', () => events.reconnects.includes('connection silent'), 10_000);
    node.faults.muteSubscriptions(false);
    node.faults.delayResponses(0);
    const last = maxHead(heads);
    await waitFor('heads on the new connection', () => maxHead(heads) > last + 2, 15_000);
  });

  it('connect has a deadline: refused connections fail with CNM_ERR_CHAIN_CONNECT in time', async () => {
    const node = await startDevnode({ blockMs: 0 });
    cleanup.push(() => node.stop());
    node.faults.refuseConnections(true);
    const t0 = Date.now();
    const e = await rejection(ChainClient.connect({ url: node.url, connectTimeoutMs: 1_000, reconnectDelayMs: 100 }));
    expect(e.code).toBe('CNM_ERR_CHAIN_CONNECT');
    expect(e.message).toContain(node.url);
    expect(Date.now() - t0).toBeLessThan(3_000);
    // A client created while the node refuses keeps trying and connects once it accepts.
    const c = new ChainClient({ url: node.url, connectTimeoutMs: 1_000, reconnectDelayMs: 100, maxReconnectDelayMs: 200 });
    cleanup.push(() => c.close());
    const ready = c.ready(10_000);
    await new Promise((r) => setTimeout(r, 300));
    node.faults.refuseConnections(false);
    await ready;
    expect(await c.currentBlock()).toBe(0);
  });

  it('a URL that is not ws:// is refused up front', () => {
    expect(() => new ChainClient({ url: 'http://127.0.0.1:9944' })).toThrow(/must start with ws:\/\//);
  });
});

describe('historical reads', () => {
  it('reads at past blocks see past state; pruned state gives CNM_ERR_CHAIN_BLOCK_UNAVAILABLE', async () => {
    const { node, client } = await setup({ historyBlocks: 30 }, { stallBlocks: 1_000 });
    const bob = await devPair('//Bob');
    const writer = await ChainClient.connect({ url: node.url, wallet: { hotkey: bob } });
    cleanup.push(() => writer.close());
    const a = await writer.setCommitment('{"m": "one"}');
    const b = await writer.setCommitment('{"m": "two"}');
    // From here blocks come only by hand, so pruning happens exactly when the test says.
    node.faults.stallBlocks();
    expect((await client.commitment({ hotkey: bob.address, block: a.blockNumber }))?.data).toBe('{"m": "one"}');
    expect((await client.commitment({ hotkey: bob.address, block: b.blockNumber }))?.data).toBe('{"m": "two"}');
    expect((await client.commitment({ hotkey: bob.address, block: a.blockNumber - 1 }))).toBeNull();
    for (let i = 0; i < 31; i++) node.produceBlock();
    const e = await rejection(client.allCommitments({ block: a.blockNumber }));
    expect(e.code).toBe('CNM_ERR_CHAIN_BLOCK_UNAVAILABLE');
    expect(e.message).toMatch(/archive node/);
    const future = await rejection(client.metagraph({ block: 1_000_000 }));
    expect(future.code).toBe('CNM_ERR_CHAIN_BLOCK_UNAVAILABLE');
  });
});
