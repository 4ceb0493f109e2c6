// A devnet miner: the real `connito-miner start --path DIR` as a child process (supervisor, task
// pool, trainer child — nothing stubbed). Its JSON log lines go to DIR/miner.log; the lines the
// orchestrator narrates are parsed on the way. It runs in its own process group so one Ctrl-C at
// the terminal does not reach it twice (the orchestrator sends exactly one SIGTERM).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { readRunState } from '../supervisor/pidfile.js';

export interface MinerProcessOptions {
  name: string;
  /** The miner's run directory (config.yaml inside). */
  dir: string;
  /** bin/connito-miner.js */
  bin: string;
  /** Substrings that make a log line worth parsing for `onLine`. */
  markers: readonly string[];
  onLine?: (line: Record<string, unknown>) => void;
  env?: NodeJS.ProcessEnv;
}

export interface MinerStatus {
  ready?: boolean;
  phase?: { name: string; block: number } | null;
  trainer?: { pid: number | null; state: string; restarts: number; progress?: { loss: number; innerOptStep?: number; globalVer?: number } | null };
  duties?: Record<string, { ok: boolean; detail?: string }>;
}

export class MinerProcess {
  child: ChildProcess | null = null;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({ code: null, signal: null });
  readonly logFile: string;
  private log: WriteStream | null = null;
  private exited = false;

  constructor(private readonly o: MinerProcessOptions) {
    this.logFile = join(o.dir, 'miner.log');
  }

  get name(): string {
    return this.o.name;
  }

  get running(): boolean {
    return this.child !== null && !this.exited;
  }

  start(): void {
    this.log = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [this.o.bin, 'start', '--path', this.o.dir], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CONNITO_LOG_FORMAT: 'json', ...this.o.env },
    });
    this.child = child;
    this.exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = true;
        resolve({ code, signal });
      });
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      const rl = createInterface({ input: stream, crlfDelay: Infinity });
      rl.on('line', (line) => this.onLine(line));
    }
  }

  private onLine(line: string): void {
    this.log?.write(line + '\n');
    if (!this.o.onLine || !this.o.markers.some((m) => line.includes(m))) return;
    try {
      const j = JSON.parse(line) as unknown;
      if (j !== null && typeof j === 'object') this.o.onLine(j as Record<string, unknown>);
    } catch {
      /* not a JSON line (a native library printing): it is in the log file */
    }
  }

  /** The supervisor's /status, or null while it is not up. */
  async status(): Promise<MinerStatus | null> {
    const st = readRunState(this.o.dir);
    if (st === null || st.statusUrl === null) return null;
    try {
      const res = await fetch(`${st.statusUrl}/status`, { signal: AbortSignal.timeout(2_000) });
      return res.ok ? ((await res.json()) as MinerStatus) : null;
    } catch {
      return null;
    }
  }

  /** One SIGTERM (graceful: final save, clean exit); SIGKILL of the whole group past `timeoutMs`. */
  async stop(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.child;
    if (child === null) return { code: null, signal: null };
    if (!this.exited) {
      try {
        child.kill('SIGTERM');
      } catch {
        /* already gone */
      }
      const timer = setTimeout(() => this.kill(), timeoutMs);
      const r = await this.exit;
      clearTimeout(timer);
      await this.closeLog();
      return r;
    }
    await this.closeLog();
    return this.exit;
  }

  /** SIGKILL the miner's process group (supervisor and trainer). */
  kill(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }

  private closeLog(): Promise<void> {
    const l = this.log;
    this.log = null;
    return new Promise((resolve) => (l ? l.end(() => resolve()) : resolve()));
  }
}
