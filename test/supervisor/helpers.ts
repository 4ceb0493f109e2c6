// Helpers for tests that run the real CLI and supervisor as processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConfigFile, type ConfigPatch } from '../../src/config/index.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'connito-miner.js');
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'supervisor');
export const FAKE_TRAINER = join(FIXTURES, 'fake-trainer.mjs');
export const FAKE_TASK = join(FIXTURES, 'fake-task.mjs');

/** A fresh run directory with a copy of the test wallet and a config pointing at the fake trainer. */
const made: string[] = [];

/** Remove the run directories this test file made (call from afterAll). */
export function cleanupRunDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

export async function makeRunDir(patch: ConfigPatch = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'cnm-run-'));
  made.push(dir);
  const wallets = join(dir, 'wallets');
  cpSync(join(FIXTURES, 'wallets'), wallets, { recursive: true });
  chmodSync(join(wallets, 'testcold', 'hotkeys', 'testhot'), 0o600);
  const base: ConfigPatch = {
    chain: { coldkey_name: 'testcold', hotkey_name: 'testhot', wallet_path: wallets },
    status: { port: 0 },
    trainer: {
      entry: FAKE_TRAINER,
      heartbeat_interval_sec: 0.2,
      heartbeat_timeout_sec: 15,
      stop_timeout_sec: 20,
      restart: { max_restarts: 5, window_sec: 120, backoff_initial_sec: 0.2, backoff_max_sec: 1, backoff_factor: 2 },
    },
    supervisor: { shutdown_timeout_sec: 40, task_stop_timeout_sec: 2, pool_min_threads: 1, pool_max_threads: 1 },
  };
  await createConfigFile(dir, merge(base, patch));
  return dir;
}

function merge<T extends object>(a: T, b: object): T {
  const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && cur !== null && typeof cur === 'object' ? merge(cur as object, v) : v;
  }
  return out as T;
}

export interface LogLine {
  level: number;
  msg: string;
  proc?: string;
  [k: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A real `connito-miner start` process whose JSON log lines can be awaited. */
export class MinerProcess {
  readonly lines: LogLine[] = [];
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  private constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!text.startsWith('{')) continue;
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          continue;
        }
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => {
          if (!w.pred(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  }

  static start(args: string[], env: NodeJS.ProcessEnv = {}): MinerProcess {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, CONNITO_LOG_FORMAT: 'json', CONNITO_LOG_LEVEL: 'debug', NOTIFY_SOCKET: '', WATCHDOG_USEC: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new MinerProcess(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolve with the first log line (already seen or future) matching `pred`. */
  waitForLog(pred: ((l: LogLine) => boolean) | RegExp, timeoutMs = 45_000): Promise<LogLine> {
    const p = pred instanceof RegExp ? (l: LogLine) => pred.test(l.msg) : pred;
    const seen = this.lines.find(p);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        rej(new Error(`timed out after ${timeoutMs} ms waiting for a log line ${String(pred)}\n--- log:\n${this.lines.map((l) => l.msg).join('\n')}\n--- stderr:\n${this.stderr}`));
      }, timeoutMs);
      const exitWatch = this.exited.then((e) => {
        rej(new Error(`miner exited (${e.code ?? e.signal}) before log line ${String(pred)}\n--- log:\n${this.lines.map((l) => l.msg).join('\n')}\n--- stderr:\n${this.stderr}`));
      });
      void exitWatch;
      this.waiters.push({
        pred: p,
        resolve: (l) => {
          clearTimeout(timer);
          res(l);
        },
      });
    });
  }

  count(pred: RegExp): number {
    return this.lines.filter((l) => pred.test(l.msg)).length;
  }

  /** Wait for the exit, killing the process if it takes longer than `timeoutMs`. */
  async exit(timeoutMs = 60_000): Promise<Exit> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run one CLI command to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, CONNITO_LOG_FORMAT: 'json', NOTIFY_SOCKET: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`connito-miner ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

/** Marker files the fake trainer wrote. */
export function markers(runDir: string, prefix: string): string[] {
  try {
    return readdirSync(join(runDir, 'fake-trainer')).filter((f) => f.startsWith(prefix));
  } catch {
    return [];
  }
}

export function readMarker(runDir: string, name: string): string {
  return readFileSync(join(runDir, 'fake-trainer', name), 'utf8');
}

/** Poll `check` until it returns true (for state that no event announces, e.g. a file removed). */
export async function until(check: () => boolean, timeoutMs = 30_000, what = 'condition', refresh?: () => Promise<void>): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (refresh !== undefined) await refresh();
    if (check()) return;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
