// The phase clock plug-in (src/supervisor/phase-clock.ts) on a real chain: the devnode produces
// blocks, the clock follows them through the production chain client, takes the schedule from the
// devnet owner phase service (or, when that is down, from config.yaml) and dispatches through a real
// piscina TaskPool to a test-double duty module that echoes what it was given.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig, type MinerConfig } from '../../src/config/index.js';
import { BlockClock } from '../../src/devnet/block-clock.js';
import { startDevnode, type Devnode } from '../../src/devnet/chain/index.js';
import { startOwnerService, type OwnerService } from '../../src/devnet/owner-service.js';
import { phaseAt, scheduleFromLengths } from '../../src/protocol/phases.js';
import { PhaseClock } from '../../src/supervisor/phase-clock.js';
import type { DutyOutcome, PhaseInfo, PluginContext } from '../../src/supervisor/supervisor.js';
import { TaskPool } from '../../src/supervisor/task-pool.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const DOUBLE = join(ROOT, 'test', 'fixtures', 'workers', 'double-duty-task.mjs');
const BLOCK_MS = 60;

let node: Devnode;
let clock: BlockClock;
let pool: TaskPool;
const dirs: string[] = [];
beforeAll(async () => {
  node = await startDevnode({ blockMs: 0 });
  clock = new BlockClock(node, BLOCK_MS);
  const lines: string[] = [];
  pool = new TaskPool({
    entry: join(ROOT, 'dist', 'workers', 'pool-entry.js'),
    modules: { download: DOUBLE, commit: DOUBLE, submit: DOUBLE },
    minThreads: 1,
    maxThreads: 2,
    graceMs: 2000,
    logger: createLogger({ proc: 'test', json: true, destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(String(c)), cb()) }) }),
  });
  await pool.start();
});
afterAll(async () => {
  clock?.stop();
  await pool?.close(2000);
  await node?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Recorded {
  dispatched: Array<{ task: string; result: Record<string, unknown> }>;
  phases: PhaseInfo[];
  outcomes: Array<[string, DutyOutcome]>;
  logs: Array<Record<string, unknown>>;
}

function context(config: MinerConfig, controller: AbortController): { ctx: PluginContext; rec: Recorded } {
  const rec: Recorded = { dispatched: [], phases: [], outcomes: [], logs: [] };
  const logger = createLogger({
    proc: 'test',
    json: true,
    destination: new Writable({
      write: (c: Buffer, _e, cb) => {
        for (const l of String(c).split('\n')) if (l.trim()) rec.logs.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    }),
  });
  const ctx: PluginContext = {
    config,
    runDir: '/nonexistent',
    logger,
    metrics: createMetrics({ defaultMetrics: false }),
    dispatch: async (task, payload, opts) => {
      const result = (await pool.dispatch(task, payload, opts)) as Record<string, unknown>;
      rec.dispatched.push({ task, result });
      return result;
    },
    setPhase: (p) => rec.phases.push(p),
    recordOutcome: (d, o) => rec.outcomes.push([d, o]),
    signal: controller.signal,
  };
  return { ctx, rec };
}

function configWith(ownerUrl: string): MinerConfig {
  const c = defaultConfig();
  return {
    ...c,
    chain: { ...c.chain, network: node.url },
    cycle: {
      ...c.cycle,
      owner_url: ownerUrl,
      // The config's fallback lengths (cycle 24) differ from the owner's (cycle 36).
      distribute_period: 2, train_period: 4, commit_period: 2, submission_period: 6, validate_period: 2, merge_period: 2,
      block_time_sec: BLOCK_MS / 1000,
      api_timeout_sec: 1,
      api_retries: 1,
      api_backoff_sec: 1.1,
    },
  };
}

async function until(what: string, f: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.sequential('phase clock', () => {
  it('takes the owner schedule, dispatches each duty once per cycle at its window start with the window end as deadline', async () => {
    const owner: OwnerService = await startOwnerService({
      schedule: scheduleFromLengths({ distribute: 4, train: 6, commit: 3, submission: 6, validate: 4, merge: 4 }),
      head: () => node.head().number,
      whitelist: () => ['5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY'],
    });
    const controller = new AbortController();
    const { ctx, rec } = context(configWith(owner.url), controller);
    const pc = new PhaseClock({ configFile: '/run/config.yaml' });
    pc.start(ctx);
    try {
      await until('the owner schedule', () => pc.current().source === 'owner');
      const s = pc.current().schedule!;
      expect(s.cycleLength).toBe(36);
      clock.start();
      const startCycle = Math.floor(node.head().number / 36) + 1;
      await until('two full cycles', () => node.head().number >= (startCycle + 2) * 36 + 30, 40_000);
      await until('the last submit', () => rec.dispatched.filter((d) => (d.result.cycleIndex as number) === startCycle + 2 && d.task === 'submit').length === 1);
      for (const c of [startCycle, startCycle + 1, startCycle + 2]) {
        const mine = rec.dispatched.filter((d) => d.result.cycleIndex === c);
        expect(mine.map((d) => d.task)).toEqual(['download', 'commit', 'submit']);
        const [dl, cm, sb] = mine.map((d) => d.result.payload as { head: number; window: Record<string, number>; whitelist: string[]; scheduleSource: string; schedule: unknown[] });
        const base = c * 36;
        expect(dl!.head).toBe(base); // Distribute's first block
        expect(dl!.window).toEqual({ start: base, startBy: base + 9, actUntil: base + 9, deadline: base + 9 });
        expect(cm!.head).toBe(base + 10);
        expect(cm!.window).toEqual({ start: base + 10, startBy: base + 12, actUntil: base + 15, deadline: base + 15 });
        expect(sb!.head).toBe(base + 16);
        expect(sb!.window).toEqual({ start: base + 16, startBy: base + 21, actUntil: base + 21, deadline: base + 25 });
        expect(dl!.whitelist).toEqual(['5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY']);
        expect(dl!.scheduleSource).toBe('owner');
        // Deadline: when block `deadline + 1` is due, estimated from the block time.
        for (const d of mine) {
          const p = d.result.payload as { head: number; window: { deadline: number } };
          const blocks = p.window.deadline + 1 - p.head;
          expect(d.result.deadlineBlock).toBe(p.window.deadline);
          expect(d.result.deadline as number).toBeGreaterThan((d.result.receivedAt as number) + (blocks - 2) * BLOCK_MS);
          expect(d.result.deadline as number).toBeLessThan((d.result.receivedAt as number) + (blocks + 2) * BLOCK_MS * 3);
        }
      }
      const started = rec.logs.filter((l) => String(l.msg).startsWith('<MinerCommit1> has started'));
      expect(started.length).toBeGreaterThanOrEqual(3);
      expect(started[0]!.msg).toBe('<MinerCommit1> has started, 0 blocks passed, 2 blocks left in phase.');
      const waits = rec.logs.filter((l) => String(l.msg).startsWith('<MinerCommit1> to begin in'));
      expect(new Set(waits.map((w) => w.start_block)).size).toBe(waits.length); // once per wait
      // /status and the subnet_* gauges are fed through setPhase on every head.
      const last = rec.phases.at(-1)!;
      const p = phaseAt(s, last.block);
      expect(last).toEqual({ name: p.phase_name, index: p.phase_index, block: p.block, blocksRemaining: p.blocks_remaining_in_phase });
      expect(rec.phases.length).toBeGreaterThan(2 * 36);
      expect(rec.outcomes.filter(([d]) => d === 'commit').every(([, o]) => o.ok)).toBe(true);
    } finally {
      clock.stop();
      await pc.stop();
      await owner.close();
    }
  }, 60_000);

  it('with the owner service down: falls back to the config lengths (logged) and still dispatches on them', async () => {
    const controller = new AbortController();
    const { ctx, rec } = context(configWith('http://127.0.0.1:9'), controller);
    const pc = new PhaseClock({ configFile: '/run/config.yaml' });
    pc.start(ctx);
    try {
      await until('the fallback', () => pc.current().source === 'config');
      expect(pc.current().schedule!.cycleLength).toBe(24);
      expect(rec.logs.some((l) => String(l.msg).startsWith('owner phase service unreachable: using the phase lengths of config.yaml'))).toBe(true);
      expect(rec.outcomes.find(([d]) => d === 'schedule')?.[1]).toMatchObject({ ok: false, source: 'config' });
      expect(pc.current().whitelist).toBeNull();
      clock.start();
      const c = Math.floor(node.head().number / 24) + 1;
      await until('a full cycle on config lengths', () => rec.dispatched.some((d) => d.task === 'submit' && d.result.cycleIndex === c), 20_000);
      const mine = rec.dispatched.filter((d) => d.result.cycleIndex === c);
      expect(mine.map((d) => [d.task, (d.result.payload as { head: number }).head])).toEqual([
        ['download', c * 24],
        ['commit', c * 24 + 6],
        ['submit', c * 24 + 10],
      ]);
      expect((mine[0]!.result.payload as { scheduleSource: string; whitelist: unknown }).scheduleSource).toBe('config');
    } finally {
      clock.stop();
      await pc.stop();
    }
  }, 40_000);
});
