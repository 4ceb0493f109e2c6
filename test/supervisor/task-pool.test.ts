// The task pool with real piscina worker threads, the built pool entry (dist/workers/pool-entry.js)
// and a fake task module (a test double of the phase duties, which need a chain).
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskPool, type TaskOutcome } from '../../src/supervisor/task-pool.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { FAKE_TASK, ROOT } from './helpers.js';

type Tasks = {
  fake: { payload: { mode: string; value?: unknown; telemetry?: unknown }; result: Record<string, unknown> };
};

const logger = createLogger({ proc: 'test', level: 'silent', destination: process.stderr });
const pools: TaskPool<Tasks>[] = [];

function makePool(graceMs = 300): TaskPool<Tasks> {
  const pool = new TaskPool<Tasks>({
    entry: join(ROOT, 'dist', 'workers', 'pool-entry.js'),
    modules: { fake: FAKE_TASK },
    minThreads: 1,
    maxThreads: 1,
    graceMs,
    logger,
  });
  pools.push(pool);
  return pool;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
});

describe('TaskPool', () => {
  it('runs typed tasks in a warm worker that keeps module state between tasks', async () => {
    const pool = makePool();
    await pool.start();
    const ends: TaskOutcome[] = [];
    pool.on('end', (o) => ends.push(o));
    const deadline = Date.now() + 30_000;
    const a = await pool.dispatch('fake', { mode: 'echo', value: 1 }, { deadline, deadlineBlock: 1234 });
    const b = await pool.dispatch('fake', { mode: 'echo', value: 2 }, { deadline });
    expect(a).toMatchObject({ echo: 1, deadline, deadlineBlock: 1234 });
    expect(a['timeLeft']).toBeGreaterThan(0);
    expect(b['threadId']).toBe(a['threadId']);
    expect(b['calls']).toBe((a['calls'] as number) + 1);
    expect(ends.map((e) => [e.task, e.ok])).toEqual([
      ['fake', true],
      ['fake', true],
    ]);
    expect(pool.running()).toEqual([]);
  });

  it('a cooperative task stops itself at its deadline', async () => {
    const pool = makePool();
    await pool.start();
    const r = await pool.dispatch('fake', { mode: 'cooperative' }, { deadline: Date.now() + 300 });
    expect(r['stoppedBy']).toMatch(/deadline of task fake reached/);
    expect(r['lateMs']).toBeGreaterThanOrEqual(0);
  });

  it('a task that ignores its deadline is terminated after the grace period', async () => {
    const pool = makePool(200);
    await pool.start();
    const ends: TaskOutcome[] = [];
    pool.on('end', (o) => ends.push(o));
    await expect(pool.dispatch('fake', { mode: 'ignore' }, { deadline: Date.now() + 200 })).rejects.toMatchObject({ code: 'CNM_ERR_TASK_DEADLINE' });
    expect(ends[0]).toMatchObject({ ok: false, code: 'CNM_ERR_TASK_DEADLINE' });
    // The pool replaces the terminated thread and keeps working.
    await expect(pool.dispatch('fake', { mode: 'echo', value: 'after' }, { deadline: Date.now() + 30_000 })).resolves.toMatchObject({ echo: 'after' });
  });

  it('task errors reach the caller; unknown tasks are refused', async () => {
    const pool = makePool();
    await pool.start();
    await expect(pool.dispatch('fake', { mode: 'throw' }, { deadline: Date.now() + 30_000 })).rejects.toThrow('fake task failed');
    await expect(pool.dispatch('nope' as 'fake', { mode: 'echo' }, { deadline: Date.now() + 30_000 })).rejects.toMatchObject({ code: 'CNM_ERR_TASK_UNKNOWN' });
  });

  it('close cancels running tasks (cooperatively), then refuses new ones', async () => {
    const pool = makePool(5_000);
    await pool.start();
    const started = new Promise((r) => pool.once('start', r));
    const running = pool.dispatch('fake', { mode: 'cooperative' }, { deadline: Date.now() + 60_000 });
    await started;
    expect(pool.running().map((t) => t.task)).toEqual(['fake']);
    await pool.close(10_000);
    expect((await running)['stoppedBy']).toMatch(/cancelled: the supervisor is stopping/);
    await expect(pool.dispatch('fake', { mode: 'echo' }, { deadline: Date.now() + 1000 })).rejects.toMatchObject({ code: 'CNM_ERR_POOL_CLOSED' });
  });

  it('close terminates a task that ignores cancellation', async () => {
    const pool = makePool(200);
    await pool.start();
    const started = new Promise((r) => pool.once('start', r));
    const running = pool.dispatch('fake', { mode: 'ignore' }, { deadline: Date.now() + 60_000 });
    await started;
    const closed = pool.close(500);
    await expect(running).rejects.toMatchObject({ code: 'CNM_ERR_TASK_CANCELLED' });
    await closed;
  });
});
