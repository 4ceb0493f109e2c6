// sd_notify through the real addon to a real AF_UNIX datagram socket (a python receiver stands in
// for systemd), and the whole supervisor's notification sequence.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Notifier } from '../../src/supervisor/sdnotify.js';
import { loadSysAddon } from '../../src/supervisor/sys.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { cleanupRunDirs, FIXTURES, makeRunDir, MinerProcess } from './helpers.js';

afterAll(cleanupRunDirs);

class Receiver {
  readonly messages: string[] = [];
  private waiters: { pred: (all: string[]) => boolean; resolve: () => void }[] = [];
  private constructor(readonly proc: ChildProcess) {}

  static async bind(name: string): Promise<Receiver> {
    const proc = spawn('/usr/bin/python3', [join(FIXTURES, 'notify-receiver.py'), name], { stdio: ['ignore', 'pipe', 'inherit'] });
    const r = new Receiver(proc);
    let buf = '';
    let bound!: () => void;
    const isBound = new Promise<void>((res) => (bound = res));
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'bound') bound();
        else r.messages.push(JSON.parse(line) as string);
      }
      r.waiters = r.waiters.filter((w) => (w.pred(r.messages) ? (w.resolve(), false) : true));
    });
    await isBound;
    return r;
  }

  /** Resolves once some datagram contains `text` (as a whole line). */
  waitFor(text: string, timeoutMs = 45_000): Promise<void> {
    const pred = (all: string[]): boolean => all.some((m) => m.split('\n').includes(text));
    if (pred(this.messages)) return Promise.resolve();
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no ${text} within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`)), timeoutMs);
      this.waiters.push({ pred, resolve: () => (clearTimeout(t), res()) });
    });
  }

  /** Index of the first datagram containing the line `text`. */
  indexOf(text: string): number {
    return this.messages.findIndex((m) => m.split('\n').includes(text));
  }
}

const receivers: Receiver[] = [];
afterEach(() => {
  for (const r of receivers.splice(0)) r.proc.kill();
});

async function receiver(name: string): Promise<Receiver> {
  const r = await Receiver.bind(name);
  receivers.push(r);
  return r;
}

const logger = createLogger({ proc: 'test', level: 'silent', destination: process.stderr });

describe('sdNotify (connito_sys addon)', () => {
  it('sends to a filesystem socket and to the abstract namespace; no socket is a no-op; a dead socket throws', async () => {
    const sys = loadSysAddon();
    const path = join(mkdtempSync(join(tmpdir(), 'cnm-notify-')), 'notify.sock');
    const fsRecv = await receiver(path);
    expect(sys.sdNotify('READY=1\nSTATUS=hello', path)).toBe(1);
    await fsRecv.waitFor('STATUS=hello');
    expect(fsRecv.messages).toEqual(['READY=1\nSTATUS=hello']);

    const abstract = `@cnm-test-${process.pid}-${Date.now()}`;
    const absRecv = await receiver(abstract);
    expect(sys.sdNotify('WATCHDOG=1', abstract)).toBe(1);
    await absRecv.waitFor('WATCHDOG=1');

    expect(sys.sdNotify('READY=1', '')).toBe(0);
    expect(() => sys.sdNotify('READY=1', join(tmpdir(), 'no-such-socket-here'))).toThrow(/sd_notify to .* failed: No such file or directory/);
  });

  it('the watchdog pings only while the health check passes', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'cnm-notify-')), 'notify.sock');
    const r = await receiver(path);
    const n = new Notifier({ logger, socket: path, watchdogUsec: 100_000 });
    let healthy = false;
    let checks = 0;
    let checked!: () => void;
    const threeChecks = new Promise<void>((res) => (checked = res));
    n.startWatchdog(() => {
      checks += 1;
      if (checks === 3) checked();
      return healthy;
    });
    await threeChecks; // three watchdog periods with an unhealthy trainer...
    n.status('mark');
    await r.waitFor('STATUS=mark');
    healthy = true;
    await r.waitFor('WATCHDOG=1');
    n.stopping();
    await r.waitFor('STOPPING=1');
    // ...sent nothing before the mark; pings followed once healthy; none after STOPPING.
    expect(r.indexOf('STATUS=mark')).toBe(0);
    expect(r.indexOf('WATCHDOG=1')).toBeGreaterThan(0);
    expect(r.messages.slice(r.indexOf('STOPPING=1') + 1)).not.toContain('WATCHDOG=1');
  });
});

describe('supervisor notifications', () => {
  it('READY=1, then WATCHDOG=1, then STOPPING=1 (and EXTEND_TIMEOUT_USEC while the final save runs)', async () => {
    const dir = await makeRunDir({ trainer: { stop_timeout_sec: 30 } });
    const path = join(dir, 'notify.sock');
    const r = await receiver(path);
    const miner = MinerProcess.start(['start', '--path', dir], { NOTIFY_SOCKET: path, WATCHDOG_USEC: '400000', FAKE_TRAINER_SLOW_STOP_MS: '1500' });
    await r.waitFor('READY=1');
    await r.waitFor('WATCHDOG=1');
    miner.child.kill('SIGTERM');
    await r.waitFor('STOPPING=1');
    expect(await miner.exit()).toEqual({ code: 0, signal: null });
    const ready = r.indexOf('READY=1');
    const watchdog = r.indexOf('WATCHDOG=1');
    const stopping = r.indexOf('STOPPING=1');
    expect(ready).toBeGreaterThanOrEqual(0);
    expect(watchdog).toBeGreaterThan(ready);
    expect(stopping).toBeGreaterThan(watchdog);
    const before = r.messages.slice(0, ready);
    expect(before.some((m) => m.startsWith('STATUS=waiting for the trainer'))).toBe(true);
    const after = r.messages.slice(stopping + 1);
    expect(after.some((m) => /^EXTEND_TIMEOUT_USEC=\d+$/.test(m))).toBe(true);
    expect(after).not.toContain('WATCHDOG=1');
    expect(miner.lines.find((l) => l.msg === 'supervisor starting')?.['notify']).toBe(true);
  });
});
