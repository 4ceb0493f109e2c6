// The supervisor's pure parts and its in-process components: restart policy, IPC validation,
// OOM evidence, the pid-file lock (real flock through the addon), the status server (real
// fastify, inject), the systemd unit.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/index.js';
import { memoryEventsPath, readOomKills, systemdUnit } from '../../src/supervisor/oom.js';
import { acquirePidLock, readPidFile } from '../../src/supervisor/pidfile.js';
import { AlreadyRunningError } from '../../src/supervisor/errors.js';
import { RestartPolicy } from '../../src/supervisor/restart-policy.js';
import { buildStatusServer } from '../../src/supervisor/status-server.js';
import { quoteExecArg, renderSystemdUnit } from '../../src/supervisor/systemd-unit.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { parseChildMessage, parseParentMessage } from '../../src/trainer/ipc.js';
import { FIXTURES } from './helpers.js';

describe('RestartPolicy', () => {
  const opts = { maxRestarts: 3, windowMs: 60_000, initialDelayMs: 1000, maxDelayMs: 8000, factor: 2 };

  it('backs off exponentially up to the cap and gives up past the limit within the window', () => {
    const p = new RestartPolicy({ ...opts, maxRestarts: 5 });
    const delays = [0, 1, 2, 3, 4].map((i) => p.onCrash(i * 100, 50));
    expect(delays.map((d) => (d.restart ? d.delayMs : null))).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(p.onCrash(600, 50)).toEqual({ restart: false, crashesInWindow: 6 });
  });

  it('forgets crashes older than the window', () => {
    const p = new RestartPolicy(opts);
    for (let i = 0; i < 3; i++) expect(p.onCrash(i, 10).restart).toBe(true);
    expect(p.onCrash(70_000, 10)).toMatchObject({ restart: true, crashesInWindow: 1 });
  });

  it('a child that ran longer than the backoff cap starts the backoff over', () => {
    const p = new RestartPolicy(opts);
    p.onCrash(0, 10);
    p.onCrash(1, 10);
    expect(p.onCrash(2, 9000)).toMatchObject({ restart: true, delayMs: 1000, attempt: 1 });
  });
});

describe('IPC protocol validation', () => {
  it('accepts every well-formed child message', () => {
    const good = [
      { type: 'ready', protocol: 1, backend: 'cpu' },
      { type: 'progress', step: 8, innerOptStep: 2, loss: 3.5, lr: 1e-5, tokensPerSec: 100 },
      { type: 'progress', step: 9, loss: Number.NaN, lr: 1e-5, tokensPerSec: 0 },
      { type: 'checkpoint', path: '/d/checkpoints/globalver_3_inneropt_20', globalVer: 3, innerOpt: 20 },
      { type: 'heartbeat' },
      { type: 'fatal', reason: 'non-finite parameters' },
      { type: 'final', path: null },
      { type: 'log', level: 'warn', msg: 'x', fields: { a: 1 } },
    ];
    for (const m of good) expect(parseChildMessage(m), JSON.stringify(m)).toEqual({ ok: true, message: m });
  });

  it('rejects malformed messages and names the field', () => {
    expect(parseChildMessage(null)).toEqual({ ok: false, error: 'message is not an object' });
    expect(parseChildMessage({ type: 'explode' })).toMatchObject({ ok: false, error: 'unknown message type "explode"' });
    expect(parseChildMessage({ type: 'toString' })).toMatchObject({ ok: false });
    expect(parseChildMessage({ type: 'progress', step: -1, loss: 1, lr: 1, tokensPerSec: 1 })).toMatchObject({ ok: false, error: expect.stringContaining('progress.step') });
    expect(parseChildMessage({ type: 'progress', step: 1, loss: '1', lr: 1, tokensPerSec: 1 })).toMatchObject({ ok: false, error: expect.stringContaining('progress.loss') });
    expect(parseChildMessage({ type: 'checkpoint', path: 5, globalVer: 1, innerOpt: 1 })).toMatchObject({ ok: false, error: expect.stringContaining('checkpoint.path') });
    expect(parseChildMessage({ type: 'log', level: 'shout', msg: 'x' })).toMatchObject({ ok: false, error: expect.stringContaining('log.level') });
    expect(parseParentMessage({ type: 'stop', reason: 'x', budgetMs: 1000 })).toMatchObject({ ok: true });
    expect(parseParentMessage({ type: 'stop', reason: 'x' })).toMatchObject({ ok: false, error: expect.stringContaining('stop.budgetMs') });
  });
});

describe('OOM evidence and unit detection (cgroup v2)', () => {
  const cg = join(FIXTURES, 'cgroup');

  it('finds memory.events of our cgroup and reads oom_kill', () => {
    const path = memoryEventsPath(join(cg, 'proc-self-cgroup-system'), join(cg, 'root'));
    expect(path).toBe(join(cg, 'root', 'system.slice', 'connito-miner-run1.service', 'memory.events'));
    expect(readOomKills(path)).toBe(2);
    expect(readOomKills(join(cg, 'missing'))).toBeNull();
    expect(memoryEventsPath(join(cg, 'missing'))).toBeNull();
  });

  it('names the innermost .service, only under systemd', () => {
    expect(systemdUnit(join(cg, 'proc-self-cgroup-system'), { INVOCATION_ID: 'abc' })).toBe('connito-miner-run1.service');
    expect(systemdUnit(join(cg, 'proc-self-cgroup-user'), { INVOCATION_ID: 'abc' })).toBe('connito-miner-a.service');
    expect(systemdUnit(join(cg, 'proc-self-cgroup-system'), {})).toBeNull();
  });
});

describe('pid file lock (flock through connito_sys)', () => {
  it('a second holder is refused with the running pid; release removes the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cnm-pid-'));
    const lock = acquirePidLock(dir);
    expect(lock.stalePid).toBeNull();
    expect(readFileSync(join(dir, 'miner.pid'), 'utf8')).toBe(`${process.pid}\n`);
    expect(readPidFile(dir)).toEqual({ path: join(dir, 'miner.pid'), pid: process.pid, running: true });
    let err: unknown;
    try {
      acquirePidLock(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AlreadyRunningError);
    expect((err as AlreadyRunningError).pid).toBe(process.pid);
    expect((err as Error).message).toContain(`pid ${process.pid}`);
    lock.release();
    expect(readPidFile(dir)).toMatchObject({ pid: null, running: false });
  });

  it('a pid file without a lock holder is stale and taken over', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cnm-pid-'));
    writeFileSync(join(dir, 'miner.pid'), '4194000\n');
    expect(readPidFile(dir)).toMatchObject({ pid: 4194000, running: false });
    const lock = acquirePidLock(dir);
    expect(lock.stalePid).toBe(4194000);
    lock.release();
  });
});

describe('status server', () => {
  it('healthz reflects readiness; status and metrics answer from memory', async () => {
    const metrics = createMetrics();
    let ready = false;
    const app = buildStatusServer({
      source: { health: () => ({ state: ready ? 'running' : 'starting', ready, trainer: 'starting' }), snapshot: () => ({ state: 'x', n: 1 }) },
      registry: metrics.registry,
    });
    expect((await app.inject('/healthz')).statusCode).toBe(503);
    ready = true;
    const h = await app.inject('/healthz');
    expect(h.statusCode).toBe(200);
    expect(h.json()).toEqual({ ok: true, state: 'running', ready: true, trainer: 'starting' });
    expect((await app.inject('/status')).json()).toEqual({ state: 'x', n: 1 });
    metrics.trainingLoss.set({ expert_group: 'exp_math' }, 2.5);
    const m = await app.inject('/metrics');
    expect(m.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(m.body).toContain('miner_training_loss{expert_group="exp_math"} 2.5');
    expect(m.body).toContain('process_cpu_user_seconds_total');
    const page = await app.inject('/');
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain("fetch('/status')");
    await app.close();
  });
});

describe('systemd unit', () => {
  it('quotes paths with spaces and escapes %', () => {
    expect(quoteExecArg('/usr/bin/node')).toBe('/usr/bin/node');
    expect(quoteExecArg('/srv/my miner')).toBe('"/srv/my miner"');
    expect(quoteExecArg('/srv/100%')).toBe('/srv/100%%');
  });

  it('derives the stop timeout from the shutdown budget and the watchdog from the heartbeat timeout', () => {
    const config = defaultConfig();
    config.supervisor.shutdown_timeout_sec = 500;
    config.trainer.heartbeat_timeout_sec = 90;
    const unit = renderSystemdUnit({ config, runDir: '/srv/a b', nodePath: '/usr/bin/node', scriptPath: '/opt/cm/bin/connito-miner.js', user: false, runAs: 'miner' });
    expect(unit).toContain('TimeoutStopSec=560\n');
    expect(unit).toContain('WatchdogSec=180\n');
    expect(unit).toContain('ExecStart=/usr/bin/node /opt/cm/bin/connito-miner.js start --path "/srv/a b"\n');
    expect(unit).toContain('User=miner\n');
    expect(unit).toContain('WantedBy=multi-user.target\n');
    expect(renderSystemdUnit({ config, runDir: '/srv/x', nodePath: '/n', scriptPath: '/s', user: true, runAs: 'miner' })).not.toContain('User=');
  });
});
