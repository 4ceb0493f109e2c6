// The trainer child: fork, typed IPC, heartbeats, restarts with backoff, and a bounded stop.
// The supervisor knows the trainer only as a module path; everything it learns arrives as
// validated IPC messages (src/trainer/ipc.ts).
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Logger } from '../telemetry/logger.js';
import {
  HEARTBEAT_ENV,
  parseChildMessage,
  type CheckpointMessage,
  type ChildMessage,
  type ProgressMessage,
  type ReadyMessage,
  type StopMessage,
} from '../trainer/ipc.js';
import { readOomKills } from './oom.js';
import { RestartPolicy, type RestartPolicyOptions } from './restart-policy.js';

export type TrainerState = 'idle' | 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped' | 'failed';

/** Why the child ended. `oom` = SIGKILL that the supervisor did not send. */
export type ExitReason = 'stopped' | 'killed' | 'oom' | 'crash' | 'fatal' | 'hung' | 'exited';

export interface TrainerExit {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  reason: ExitReason;
  detail: string;
  uptimeMs: number;
}

export interface TrainerOptions {
  /** Absolute path of the trainer entry module. */
  entry: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  restart: RestartPolicyOptions;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** cgroup v2 memory.events of the supervisor's cgroup (oom evidence), or null. */
  memoryEvents: string | null;
  now?: () => number;
}

export interface TrainerEvents {
  spawn: [pid: number];
  ready: [msg: ReadyMessage];
  message: [msg: ChildMessage];
  exit: [exit: TrainerExit];
  restarting: [info: { delayMs: number; attempt: number; reason: ExitReason }];
  'gave-up': [info: { reason: string; last: TrainerExit }];
}

export class TrainerProcess extends EventEmitter<TrainerEvents> {
  state: TrainerState = 'idle';
  restarts = 0;
  lastHeartbeatAt = 0;
  lastProgress: (ProgressMessage & { at: number }) | null = null;
  lastCheckpoint: (CheckpointMessage & { at: number }) | null = null;
  lastExit: TrainerExit | null = null;
  backend: string | null = null;

  private child: ChildProcess | null = null;
  private startedAt = 0;
  private fatalReason: string | null = null;
  private killedBySupervisor: 'hung' | 'stop' | null = null;
  private oomBefore: number | null = null;
  private restartTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private exited: Promise<TrainerExit> | null = null;
  private readonly policy: RestartPolicy;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly opts: TrainerOptions) {
    super();
    this.policy = new RestartPolicy(opts.restart);
    this.now = opts.now ?? Date.now;
    this.log = opts.logger;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Heartbeats arrive in time (or the supervisor is deliberately waiting out a backoff). */
  healthy(): boolean {
    if (this.state === 'backoff') return true;
    if (this.state !== 'running' && this.state !== 'starting') return false;
    return this.now() - this.lastHeartbeatAt <= this.opts.heartbeatTimeoutMs;
  }

  start(): void {
    if (this.state === 'stopping' || this.state === 'stopped' || this.state === 'failed') return;
    this.spawn();
    if (this.heartbeatTimer === undefined) {
      this.heartbeatTimer = setInterval(() => this.checkHeartbeat(), Math.max(50, Math.min(this.opts.heartbeatIntervalMs, this.opts.heartbeatTimeoutMs / 4)));
      this.heartbeatTimer.unref();
    }
  }

  private spawn(): void {
    this.fatalReason = null;
    this.killedBySupervisor = null;
    this.oomBefore = readOomKills(this.opts.memoryEvents);
    const child = fork(this.opts.entry, this.opts.args, {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...this.opts.env, [HEARTBEAT_ENV]: String(this.opts.heartbeatIntervalMs) },
      serialization: 'json',
    });
    this.child = child;
    this.state = 'starting';
    this.startedAt = this.now();
    this.lastHeartbeatAt = this.startedAt;
    const pid = child.pid ?? -1;
    this.log.info({ trainer_pid: pid, entry: this.opts.entry, restarts: this.restarts }, 'trainer started');
    this.emit('spawn', pid);

    child.on('message', (raw: unknown) => this.onMessage(raw));
    child.on('error', (err) => this.log.error({ err: err.message, trainer_pid: pid }, 'trainer process error'));
    this.exited = new Promise<TrainerExit>((resolve) => {
      child.once('exit', (code, signal) => {
        const exit = this.classify(pid, code, signal);
        this.child = null;
        this.lastExit = exit;
        resolve(exit);
        this.onExit(exit);
      });
    });
  }

  private onMessage(raw: unknown): void {
    const parsed = parseChildMessage(raw);
    if (!parsed.ok) {
      this.log.warn({ error: parsed.error }, 'invalid IPC message from the trainer ignored');
      return;
    }
    const msg = parsed.message;
    const at = this.now();
    this.lastHeartbeatAt = at; // any message proves the child's event loop runs
    switch (msg.type) {
      case 'ready':
        if (this.state === 'starting') this.state = 'running';
        this.backend = msg.backend ?? null;
        this.log.info({ trainer_pid: this.pid, backend: msg.backend, detail: msg.detail }, 'trainer ready');
        this.emit('ready', msg);
        break;
      case 'progress':
        this.lastProgress = { ...msg, at };
        break;
      case 'checkpoint':
        this.lastCheckpoint = { ...msg, at };
        break;
      case 'fatal':
        this.fatalReason = msg.reason;
        this.log.error({ trainer_pid: this.pid, reason: msg.reason, code: msg.code }, 'trainer reported a fatal error');
        break;
      case 'log':
        this.log[msg.level]({ ...msg.fields, from: 'trainer' }, msg.msg);
        break;
      case 'final':
        this.log.info({ trainer_pid: this.pid, path: msg.path }, 'trainer final save done');
        break;
      case 'heartbeat':
        break;
    }
    this.emit('message', msg);
  }

  private classify(pid: number, code: number | null, signal: NodeJS.Signals | null): TrainerExit {
    const uptimeMs = this.now() - this.startedAt;
    const base = { pid, code, signal, uptimeMs };
    if (this.killedBySupervisor === 'stop') return { ...base, reason: 'killed', detail: 'killed by the supervisor: the stop budget ran out' };
    if (this.state === 'stopping') {
      return code === 0 ? { ...base, reason: 'stopped', detail: 'stopped on request' } : { ...base, reason: 'crash', detail: `exit ${code ?? signal} while stopping` };
    }
    if (this.killedBySupervisor === 'hung') return { ...base, reason: 'hung', detail: 'killed by the supervisor: no heartbeat' };
    if (this.fatalReason !== null) return { ...base, reason: 'fatal', detail: `fatal: ${this.fatalReason}` };
    if (signal === 'SIGKILL') {
      const after = readOomKills(this.opts.memoryEvents);
      const evidence =
        this.oomBefore !== null && after !== null
          ? after > this.oomBefore
            ? ` (confirmed: cgroup memory.events oom_kill ${this.oomBefore} -> ${after})`
            : ` (cgroup memory.events oom_kill unchanged at ${after}: maybe killed by hand or by a global OOM killer)`
          : ' (no cgroup v2 memory.events to confirm; check `journalctl -k | grep -i oom`)';
      return { ...base, reason: 'oom', detail: `SIGKILL not sent by the supervisor: likely OOM kill${evidence}` };
    }
    if (signal !== null) return { ...base, reason: 'crash', detail: `killed by ${signal}` };
    if (code !== 0) return { ...base, reason: 'crash', detail: `exit code ${code}` };
    return { ...base, reason: 'exited', detail: 'exited with code 0 without being asked to stop' };
  }

  private onExit(exit: TrainerExit): void {
    this.emit('exit', exit);
    if (this.state === 'stopping') {
      this.state = 'stopped';
      return;
    }
    const fields = { trainer_pid: exit.pid, code: exit.code, signal: exit.signal, reason: exit.reason, uptime_s: Math.round(exit.uptimeMs / 1000) };
    if (exit.reason === 'oom') this.log.error(fields, `trainer killed: ${exit.detail}`);
    else this.log.error(fields, `trainer exited unexpectedly: ${exit.detail}`);
    const decision = this.policy.onCrash(this.now(), exit.uptimeMs);
    if (!decision.restart) {
      this.state = 'failed';
      const reason = `trainer crashed ${decision.crashesInWindow} times within ${Math.round(this.opts.restart.windowMs / 1000)} s (limit ${this.opts.restart.maxRestarts}); last: ${exit.detail}`;
      this.log.fatal({ crashes: decision.crashesInWindow, reason: exit.reason }, `giving up: ${reason}`);
      this.emit('gave-up', { reason, last: exit });
      return;
    }
    this.state = 'backoff';
    this.restarts += 1;
    this.log.warn(
      { delay_ms: Math.round(decision.delayMs), attempt: decision.attempt, crashes_in_window: decision.crashesInWindow, reason: exit.reason },
      `restarting trainer in ${(decision.delayMs / 1000).toFixed(1)} s (backoff)`,
    );
    this.emit('restarting', { delayMs: decision.delayMs, attempt: decision.attempt, reason: exit.reason });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.state === 'backoff') this.spawn();
    }, decision.delayMs);
  }

  private checkHeartbeat(): void {
    if ((this.state !== 'running' && this.state !== 'starting') || this.child === null) return;
    const silentMs = this.now() - this.lastHeartbeatAt;
    if (silentMs <= this.opts.heartbeatTimeoutMs) return;
    this.log.error({ trainer_pid: this.pid, silent_s: Math.round(silentMs / 1000) }, 'trainer unresponsive: no heartbeat; killing it');
    this.killedBySupervisor = 'hung';
    this.child.kill('SIGKILL');
  }

  /**
   * Stop the child: `stop` over IPC and SIGTERM, then wait up to `budgetMs` for its final save;
   * SIGKILL after that. Resolves 'clean' (exit 0), 'unclean' (other exit), 'killed' or
   * 'not_running'. `onWait` is called about every second while waiting (systemd timeouts).
   */
  async stop(reason: string, budgetMs: number, onWait?: (elapsedMs: number) => void): Promise<'clean' | 'unclean' | 'killed' | 'not_running'> {
    this.clearTimers();
    const child = this.child;
    const exited = this.exited;
    if (this.state === 'failed') return 'not_running';
    this.state = 'stopping';
    if (child === null || exited === null) {
      this.state = 'stopped';
      return 'not_running';
    }
    const stop: StopMessage = { type: 'stop', reason, budgetMs: Math.max(0, Math.floor(budgetMs)) };
    this.log.info({ trainer_pid: child.pid, budget_s: Math.round(budgetMs / 1000) }, 'stopping trainer (waiting for its final save)');
    if (child.connected) child.send(stop, (err) => err && this.log.debug({ err: err.message }, 'stop message not delivered'));
    child.kill('SIGTERM');
    const start = this.now();
    const ticker = setInterval(() => onWait?.(this.now() - start), 1000);
    try {
      const first = await Promise.race([exited, delay(budgetMs)]);
      if (first !== undefined) return first.code === 0 ? 'clean' : 'unclean';
      this.log.error({ trainer_pid: child.pid, budget_s: Math.round(budgetMs / 1000) }, 'trainer did not stop within its budget: SIGKILL');
      this.killedBySupervisor = 'stop';
      child.kill('SIGKILL');
      await exited;
      return 'killed';
    } finally {
      clearInterval(ticker);
    }
  }

  private clearTimers(): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  /** Escalation: SIGKILL now, wait for the exit. */
  async kill(): Promise<void> {
    this.clearTimers();
    const child = this.child;
    const exited = this.exited;
    this.state = 'stopping';
    if (child === null || exited === null) return;
    this.killedBySupervisor = 'stop';
    child.kill('SIGKILL');
    await exited;
  }
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => {
    setTimeout(() => resolve(undefined), ms).unref();
  });
}
