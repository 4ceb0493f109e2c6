// The supervisor as a real process tree: `connito-miner start` (bin → dist) forking the fake
// trainer (a test double speaking the real IPC protocol), real signals, real HTTP over loopback.
// Waits are on log lines and files with generous timeouts, never on fixed sleeps.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupRunDirs, makeRunDir, markers, MinerProcess, readMarker, runCli, until } from './helpers.js';

afterAll(cleanupRunDirs);

const READY = /^supervisor ready$/;

function statusUrl(dir: string): string {
  return (JSON.parse(readFileSync(join(dir, 'supervisor.json'), 'utf8')) as { statusUrl: string }).statusUrl;
}

describe('supervisor process tree', () => {
  it('serves health, status and metrics while the trainer is busy; SIGTERM stops the tree cleanly', async () => {
    const dir = await makeRunDir();
    const miner = MinerProcess.start(['start', '--path', dir], { FAKE_TRAINER_BUSY: '1' });
    await miner.waitForLog(READY);
    expect(readFileSync(join(dir, 'miner.pid'), 'utf8')).toBe(`${miner.pid}\n`);
    const trainerPid = (await miner.waitForLog(/^trainer ready$/))['trainer_pid'] as number;
    await miner.waitForLog((l) => l.msg === 'task pool up');

    const url = statusUrl(dir);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, state: 'running', ready: true, trainer: 'running' });

    // Progress flows from the trainer over IPC into /status and /metrics.
    type Status = { trainer: { pid: number; state: string; backend: string; progress: { loss: number } | null } };
    let status: Status | undefined;
    await until(() => status?.trainer.progress != null, 30_000, 'progress in /status', async () => {
      status = (await (await fetch(`${url}/status`)).json()) as Status;
    });
    expect(status!.trainer).toMatchObject({ pid: trainerPid, state: 'running', backend: 'cpu' });
    expect(status!.trainer.progress!.loss).toBeGreaterThan(0);

    const metrics = await (await fetch(`${url}/metrics`)).text();
    for (const name of [
      'miner_training_loss',
      'miner_learning_rate',
      'miner_local_step_rate',
      'miner_total_tokens',
      'subnet_current_block',
      'subnet_current_phase_index',
      'subnet_blocks_remaining_in_phase',
      'chain_rpc_errors_total',
      'chain_commit_latency_seconds',
      'miner_trainer_restarts_total',
    ]) {
      expect(metrics, name).toMatch(new RegExp(`^# TYPE ${name} (gauge|counter|histogram)$`, 'm'));
    }
    expect(metrics).toMatch(/^miner_training_loss\{expert_group="exp_math"\} [\d.]+$/m);
    expect(metrics).toMatch(/^miner_learning_rate 0\.00001$/m);

    // `status` reads the same through the CLI.
    const st = await runCli(['status', '--path', dir]);
    expect(st.code).toBe(0);
    expect(st.stdout).toContain(`pid ${miner.pid}`);
    expect(st.stdout).toContain(`running pid ${trainerPid} on cpu`);

    // A second start on the same directory is refused, naming the running pid.
    const second = await runCli(['start', '--path', dir]);
    expect(second.code).toBe(1);
    expect(second.stdout).toContain(`already runs for this directory (pid ${miner.pid}`);

    miner.child.kill('SIGTERM');
    const exit = await miner.exit();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(readMarker(dir, `stop-${trainerPid}`)).toMatch(/^(stop:received SIGTERM|SIGTERM)\n$/);
    expect(markers(dir, `final-${trainerPid}`)).toHaveLength(1);
    expect(existsSync(join(dir, 'miner.pid'))).toBe(false);
    expect(existsSync(join(dir, 'supervisor.json'))).toBe(false);
    expect(miner.lines.some((l) => l.msg === 'received SIGTERM')).toBe(true);
    expect(miner.lines.some((l) => l.msg === 'trainer final save done')).toBe(true);
  });

  it('restarts a crashing trainer with backoff, logs an outside SIGKILL as a likely OOM kill', async () => {
    // A backoff cap far above any child's uptime here, so a slow start on a loaded machine cannot
    // count as a healthy run and reset the backoff.
    const dir = await makeRunDir({ trainer: { restart: { backoff_max_sec: 60 } } });
    const miner = MinerProcess.start(['start', '--path', dir], { FAKE_TRAINER_CRASH_TIMES: '2' });
    await miner.waitForLog(READY);
    const restarts = miner.lines.filter((l) => /^restarting trainer in /.test(l.msg));
    expect(restarts.map((l) => l['delay_ms'])).toEqual([200, 400]);
    expect(restarts.map((l) => l['reason'])).toEqual(['crash', 'crash']);
    expect(miner.count(/^trainer exited unexpectedly: exit code 1$/)).toBe(2);
    expect(markers(dir, 'start-')).toHaveLength(3);

    const victim = (await miner.waitForLog(/^trainer ready$/))['trainer_pid'] as number;
    process.kill(victim, 'SIGKILL');
    const oom = await miner.waitForLog(/^trainer killed: SIGKILL not sent by the supervisor: likely OOM kill/);
    expect(oom).toMatchObject({ trainer_pid: victim, signal: 'SIGKILL', reason: 'oom' });
    await miner.waitForLog((l) => l.msg === 'trainer ready' && l['trainer_pid'] !== victim);

    const metrics = await (await fetch(`${statusUrl(dir)}/metrics`)).text();
    expect(metrics).toMatch(/^miner_trainer_restarts_total\{reason="crash"\} 2$/m);
    expect(metrics).toMatch(/^miner_trainer_restarts_total\{reason="oom"\} 1$/m);

    miner.child.kill('SIGINT');
    expect(await miner.exit()).toEqual({ code: 0, signal: null });
  });

  it('gives up after too many crashes: non-zero exit with the reason, pid file removed', async () => {
    const dir = await makeRunDir({ trainer: { restart: { max_restarts: 2 } } });
    const miner = MinerProcess.start(['start', '--path', dir], { FAKE_TRAINER_CRASH_TIMES: '1000', FAKE_TRAINER_FATAL: '1' });
    const exit = await miner.exit();
    expect(exit.code).toBe(1);
    const gaveUp = miner.lines.find((l) => l.msg.startsWith('giving up: '));
    expect(gaveUp?.msg).toMatch(/trainer crashed 3 times within 120 s \(limit 2\); last: fatal: non-finite parameters \(fake\)/);
    expect(miner.count(/^restarting trainer in /)).toBe(2);
    expect(markers(dir, 'start-')).toHaveLength(3);
    expect(existsSync(join(dir, 'miner.pid'))).toBe(false);
  });

  it('a trainer that ignores SIGTERM is killed when its stop budget ends; `stop` waits and reports', async () => {
    const dir = await makeRunDir({ trainer: { stop_timeout_sec: 2 } });
    const miner = MinerProcess.start(['start', '--path', dir], { FAKE_TRAINER_IGNORE_SIGTERM: '1' });
    await miner.waitForLog(READY);
    const trainerPid = (await miner.waitForLog(/^trainer ready$/))['trainer_pid'] as number;
    const stop = await runCli(['stop', '--path', dir, '--timeout', '90']);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain(`sent SIGTERM to connito-miner (pid ${miner.pid})`);
    expect(stop.stdout).toMatch(/stopped after [\d.]+ s/);
    const exit = await miner.exit();
    expect(exit.code).toBe(1); // the final save was lost: not a clean stop
    expect(miner.lines.some((l) => l.msg === 'trainer did not stop within its budget: SIGKILL')).toBe(true);
    expect(readMarker(dir, `ignored-${trainerPid}`)).toMatch(/SIGTERM|stop:/);
    expect(markers(dir, `final-`)).toHaveLength(0);
    expect(existsSync(join(dir, 'miner.pid'))).toBe(false);
  });

  it('a second signal escalates at once', async () => {
    const dir = await makeRunDir({ trainer: { stop_timeout_sec: 600 } });
    const miner = MinerProcess.start(['start', '--path', dir], { FAKE_TRAINER_IGNORE_SIGTERM: '1' });
    await miner.waitForLog(READY);
    miner.child.kill('SIGTERM');
    await miner.waitForLog(/^stopping trainer/);
    miner.child.kill('SIGTERM');
    await miner.waitForLog(/^escalating shutdown/);
    const exit = await miner.exit();
    expect(exit.code).toBe(1);
    expect(existsSync(join(dir, 'miner.pid'))).toBe(false);
  });

  it('a hung trainer (no heartbeats) is killed and restarted', async () => {
    const dir = await makeRunDir({ trainer: { heartbeat_timeout_sec: 1, stop_timeout_sec: 1 } });
    const miner = MinerProcess.start(['start', '--path', dir], { FAKE_TRAINER_HANG_AFTER_READY: '1' });
    await miner.waitForLog(/^trainer unresponsive: no heartbeat; killing it$/);
    const restart = await miner.waitForLog(/^restarting trainer in /);
    expect(restart['reason']).toBe('hung');
    expect(miner.lines.some((l) => l.msg.startsWith('trainer killed:'))).toBe(false); // our own SIGKILL is not an OOM
    miner.child.kill('SIGTERM');
    await miner.exit();
    expect(existsSync(join(dir, 'miner.pid'))).toBe(false);
  });

  it('the trainer exits when the supervisor dies; the next start takes the stale pid file over', async () => {
    const dir = await makeRunDir();
    const first = MinerProcess.start(['start', '--path', dir]);
    await first.waitForLog(READY);
    const trainerPid = (await first.waitForLog(/^trainer ready$/))['trainer_pid'] as number;
    first.child.kill('SIGKILL');
    await first.exit();
    await until(() => markers(dir, `orphaned-${trainerPid}`).length === 1, 30_000, 'the orphaned trainer to exit');
    expect(readFileSync(join(dir, 'miner.pid'), 'utf8')).toBe(`${first.pid}\n`);

    const st = await runCli(['status', '--path', dir]);
    expect(st.code).toBe(3);
    expect(st.stdout).toContain(`stale pid file: pid ${first.pid} is not running`);

    const second = MinerProcess.start(['start', '--path', dir]);
    const takeover = await second.waitForLog(/^stale pid file taken over/);
    expect(takeover['stale_pid']).toBe(first.pid);
    await second.waitForLog(READY);
    const stop = await runCli(['stop', '--path', dir]);
    expect(stop.code).toBe(0);
    expect((await second.exit()).code).toBe(0);
  });

  it('a status port in use fails the start with a message naming status.port; nothing is left behind', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const dir = await makeRunDir({ status: { port } });
      const miner = MinerProcess.start(['start', '--path', join(dir, 'config.yaml')]);
      const exit = await miner.exit();
      expect(exit.code).toBe(1);
      const failed = miner.lines.find((l) => l.msg === 'supervisor failed to start');
      expect(failed?.['err']).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} .*EADDRINUSE.*set another status\\.port`));
      expect(markers(dir, 'start-')).toHaveLength(0);
      expect(existsSync(join(dir, 'miner.pid'))).toBe(false);
    } finally {
      blocker.close();
    }
  });

  it('`stop` and `status` with nothing running', async () => {
    const dir = await makeRunDir();
    const stop = await runCli(['stop', '--path', dir]);
    expect(stop.code).toBe(1);
    expect(stop.stderr).toContain(`connito-miner is not running in ${dir} (no pid file at ${join(dir, 'miner.pid')}); nothing to stop`);
    const st = await runCli(['status', '--path', dir]);
    expect(st.code).toBe(3);
    expect(st.stdout).toContain('not running');
    writeFileSync(join(dir, 'miner.pid'), '4194000\n');
    const stale = await runCli(['stop', '--path', dir]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('stale pid file');
  });
});

