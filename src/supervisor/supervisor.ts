// The supervisor: owns the trainer child, the task pool, the status server and systemd
// readiness, and shuts them down in order. Process-level concerns (pid file, signals, exit) live
// in run.ts so this class stays usable in tests and by the devnet.
//
// Plug-ins (the phase clock) get a context with `dispatch(task, payload, { deadline })`,
// `setPhase(...)`, `recordOutcome(...)` and an AbortSignal that fires when stopping.
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { MinerConfig } from '../config/index.js';
import type { Logger } from '../telemetry/logger.js';
import { applyTaskTelemetry, createMetrics, type MinerMetrics, type TaskTelemetry } from '../telemetry/metrics.js';
import type { ChildMessage } from '../trainer/ipc.js';
import { memoryEventsPath } from './oom.js';
import type { Notifier } from './sdnotify.js';
import { buildStatusServer, type Health } from './status-server.js';
import { TaskPool, type DispatchOptions, type TaskMap, type TaskOutcome } from './task-pool.js';
import { TrainerProcess, type TrainerExit } from './trainer-process.js';

export type SupervisorState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface PhaseInfo {
  name: string;
  index: number;
  block: number;
  blocksRemaining: number;
}

export interface DutyOutcome {
  ok: boolean;
  detail?: string;
  [key: string]: unknown;
}

export interface PluginContext<M extends TaskMap = TaskMap> {
  config: MinerConfig;
  runDir: string;
  logger: Logger;
  metrics: MinerMetrics;
  dispatch<K extends keyof M & string>(task: K, payload: M[K]['payload'], opts: DispatchOptions): Promise<M[K]['result']>;
  setPhase(phase: PhaseInfo): void;
  recordOutcome(duty: string, outcome: DutyOutcome): void;
  /** Aborts when the supervisor starts stopping: stop scheduling. */
  signal: AbortSignal;
}

export interface SupervisorPlugin<M extends TaskMap = TaskMap> {
  name: string;
  start(ctx: PluginContext<M>): void | Promise<void>;
  stop?(): void | Promise<void>;
}

export interface SupervisorOptions<M extends TaskMap = TaskMap> {
  config: MinerConfig;
  runDir: string;
  configFile: string;
  logger: Logger;
  notifier: Notifier;
  /** Absolute path of the trainer entry module. */
  trainerEntry: string;
  /** Absolute path of the pool worker entry (dist/workers/pool-entry.js). */
  poolEntry: string;
  /** Task name → absolute module path. */
  taskModules: { [K in keyof M]: string };
  metrics?: MinerMetrics;
  plugins?: SupervisorPlugin<M>[];
}

export interface SupervisorResult {
  code: number;
  reason: string;
}

export interface SupervisorEvents {
  ready: [];
  listening: [url: string];
  stopping: [reason: string];
  done: [result: SupervisorResult];
}

export class Supervisor<M extends TaskMap = TaskMap> extends EventEmitter<SupervisorEvents> {
  state: SupervisorState = 'idle';
  readonly metrics: MinerMetrics;
  readonly trainer: TrainerProcess;
  readonly pool: TaskPool<M>;
  /** Resolves once the supervisor has stopped, with the exit code and why. */
  readonly done: Promise<SupervisorResult>;
  statusUrl: string | null = null;

  private readonly startedAt = Date.now();
  private readonly log: Logger;
  private readonly stopController = new AbortController();
  private server: FastifyInstance | null = null;
  private readySent = false;
  private phase: (PhaseInfo & { at: string }) | null = null;
  private readonly duties: Record<string, DutyOutcome & { at: string }> = {};
  private stopPromise: Promise<SupervisorResult> | null = null;
  private escalated = false;
  private resolveDone!: (r: SupervisorResult) => void;
  private lastStepSample: { step: number; at: number } | null = null;

  constructor(private readonly opts: SupervisorOptions<M>) {
    super();
    this.log = opts.logger;
    this.metrics = opts.metrics ?? createMetrics();
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    const c = opts.config;
    this.trainer = new TrainerProcess({
      entry: opts.trainerEntry,
      args: ['--path', opts.configFile],
      logger: opts.logger,
      restart: {
        maxRestarts: c.trainer.restart.max_restarts,
        windowMs: c.trainer.restart.window_sec * 1000,
        initialDelayMs: c.trainer.restart.backoff_initial_sec * 1000,
        maxDelayMs: c.trainer.restart.backoff_max_sec * 1000,
        factor: c.trainer.restart.backoff_factor,
      },
      heartbeatIntervalMs: c.trainer.heartbeat_interval_sec * 1000,
      heartbeatTimeoutMs: c.trainer.heartbeat_timeout_sec * 1000,
      memoryEvents: memoryEventsPath(),
    });
    this.pool = new TaskPool<M>({
      entry: opts.poolEntry,
      modules: opts.taskModules,
      minThreads: c.supervisor.pool_min_threads,
      maxThreads: c.supervisor.pool_max_threads,
      graceMs: c.supervisor.task_stop_timeout_sec * 1000,
      logger: opts.logger,
    });
    this.wire();
  }

  private wire(): void {
    const m = this.metrics;
    this.trainer.on('ready', () => {
      m.trainerUp.set(1);
      this.maybeReady();
    });
    this.trainer.on('message', (msg) => this.onTrainerMessage(msg));
    this.trainer.on('exit', (_exit: TrainerExit) => {
      m.trainerUp.set(0);
    });
    this.trainer.on('restarting', ({ reason, delayMs }) => {
      m.trainerRestarts.inc({ reason });
      this.opts.notifier.status(`trainer ${reason}: restarting in ${Math.round(delayMs / 1000)} s`);
    });
    this.trainer.on('gave-up', ({ reason }) => {
      void this.stop(reason, 1);
    });
    this.pool.on('end', (o: TaskOutcome) => {
      m.tasks.inc({ task: o.task, outcome: o.ok ? 'ok' : (o.code ?? 'error') });
      m.taskDuration.observe({ task: o.task }, (o.endedAt - o.startedAt) / 1000);
    });
  }

  private onTrainerMessage(msg: ChildMessage): void {
    const m = this.metrics;
    if (msg.type === 'progress') {
      if (Number.isFinite(msg.loss)) m.trainingLoss.set({ expert_group: msg.expertGroup ?? this.opts.config.task.expert_group_name }, msg.loss);
      m.learningRate.set(msg.lr);
      m.tokensPerSec.set(msg.tokensPerSec);
      if (msg.totalTokens !== undefined) m.totalTokens.set(msg.totalTokens);
      const step = msg.innerOptStep ?? msg.step;
      m.innerOptStep.set(step);
      const now = Date.now();
      if (this.lastStepSample !== null && now > this.lastStepSample.at && step >= this.lastStepSample.step) {
        m.localStepRate.set(((step - this.lastStepSample.step) * 1000) / (now - this.lastStepSample.at));
      }
      this.lastStepSample = { step, at: now };
      this.updateStatusLine();
    } else if (msg.type === 'checkpoint') {
      m.checkpointsSaved.inc();
    }
  }

  private maybeReady(): void {
    // state 'running' means the status server and the pool are up.
    if (this.readySent || this.trainer.state !== 'running' || this.state !== 'running') return;
    this.readySent = true;
    this.opts.notifier.ready(this.statusLine());
    this.opts.notifier.startWatchdog(() => this.trainer.healthy() && this.state === 'running');
    this.log.info({ status_url: this.statusUrl, trainer_pid: this.trainer.pid }, 'supervisor ready');
    this.emit('ready');
  }

  /** Start the status server, the pool, the trainer and the plug-ins. */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`supervisor already ${this.state}`);
    this.state = 'starting';
    const c = this.opts.config;
    this.opts.notifier.status('starting');
    if (c.status.enabled) {
      this.server = buildStatusServer({ source: this, registry: this.metrics.registry, logger: this.log });
      try {
        await this.server.listen({ host: c.status.host, port: c.status.port });
      } catch (err) {
        throw new Error(
          `the status server cannot listen on ${c.status.host}:${c.status.port} (${(err as Error).message}); ` +
            `set another status.port in ${this.opts.configFile} (0 = any free port)`,
          { cause: err },
        );
      }
      const addr = this.server.server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      this.statusUrl = `http://${host}:${addr.port}`;
      this.log.info({ url: this.statusUrl }, 'status server listening');
      this.emit('listening', this.statusUrl);
    }
    await this.pool.start();
    this.log.info({ threads: this.pool.threads }, 'task pool up');
    this.state = 'running';
    this.trainer.on('message', (msg) => {
      // While starting, every sign of life buys time from systemd's start timeout.
      if (!this.readySent && msg.type === 'heartbeat') this.opts.notifier.extendTimeout(c.trainer.heartbeat_timeout_sec * 2000);
    });
    this.trainer.start();
    this.opts.notifier.status(`waiting for the trainer (pid ${this.trainer.pid})`);
    const ctx = this.pluginContext();
    for (const p of this.opts.plugins ?? []) {
      await p.start(ctx);
      this.log.info({ plugin: p.name }, 'plug-in started');
    }
  }

  private pluginContext(): PluginContext<M> {
    return {
      config: this.opts.config,
      runDir: this.opts.runDir,
      logger: this.log,
      metrics: this.metrics,
      dispatch: (task, payload, opts) => this.dispatch(task, payload, opts),
      setPhase: (p) => this.setPhase(p),
      recordOutcome: (duty, o) => this.recordOutcome(duty, o),
      signal: this.stopController.signal,
    };
  }

  /** Run a phase task in the pool. Its result's `telemetry` field, if any, feeds the metrics. */
  async dispatch<K extends keyof M & string>(task: K, payload: M[K]['payload'], opts: DispatchOptions): Promise<M[K]['result']> {
    const result = await this.pool.dispatch(task, payload, opts);
    if (typeof result === 'object' && result !== null && 'telemetry' in result) {
      applyTaskTelemetry(this.metrics, (result as { telemetry?: TaskTelemetry }).telemetry);
    }
    return result;
  }

  setPhase(p: PhaseInfo): void {
    this.phase = { ...p, at: new Date().toISOString() };
    this.metrics.currentBlock.set(p.block);
    this.metrics.phaseIndex.set(p.index);
    this.metrics.blocksRemainingInPhase.set(p.blocksRemaining);
    this.updateStatusLine();
  }

  recordOutcome(duty: string, outcome: DutyOutcome): void {
    this.duties[duty] = { ...outcome, at: new Date().toISOString() };
  }

  private statusLine(): string {
    const parts: string[] = [];
    if (this.phase !== null) parts.push(`phase ${this.phase.name} block ${this.phase.block}`);
    const p = this.trainer.lastProgress;
    parts.push(`trainer ${this.trainer.state}`);
    if (p !== null) parts.push(`step ${p.innerOptStep ?? p.step} loss ${Number.isFinite(p.loss) ? p.loss.toFixed(4) : String(p.loss)}`);
    return parts.join(', ');
  }

  private updateStatusLine(): void {
    if (this.state === 'running') this.opts.notifier.status(this.statusLine());
  }

  /** Ready was reported (to systemd) and the supervisor is not stopping. */
  private get ready(): boolean {
    return this.readySent && this.state === 'running';
  }

  health(): Health {
    return { state: this.state, ready: this.ready, trainer: this.trainer.state };
  }

  snapshot(): Record<string, unknown> {
    const t = this.trainer;
    const now = Date.now();
    return {
      state: this.state,
      ready: this.ready,
      pid: process.pid,
      runDir: this.opts.runDir,
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeSec: Math.round((now - this.startedAt) / 1000),
      phase: this.phase,
      trainer: {
        state: t.state,
        pid: t.pid,
        backend: t.backend,
        restarts: t.restarts,
        healthy: t.healthy(),
        lastHeartbeatAgoSec: t.lastHeartbeatAt === 0 ? null : Math.round((now - t.lastHeartbeatAt) / 100) / 10,
        progress: t.lastProgress === null ? null : { ...t.lastProgress, at: new Date(t.lastProgress.at).toISOString() },
        lastCheckpoint: t.lastCheckpoint === null ? null : { ...t.lastCheckpoint, at: new Date(t.lastCheckpoint.at).toISOString() },
        lastExit: t.lastExit,
      },
      tasks: { threads: this.pool.threads, running: this.pool.running() },
      duties: this.duties,
    };
  }

  /**
   * Stop everything in order: plug-ins (no new tasks), running tasks (cancel, bounded wait), the
   * trainer (stop + SIGTERM, final save, SIGKILL past its budget), the pool, the status server.
   * A second call escalates: SIGKILL the trainer and terminate the pool now. Exit code 0 only
   * for a clean stop.
   */
  stop(reason: string, code = 0): Promise<SupervisorResult> {
    if (this.stopPromise !== null) {
      if (!this.escalated) void this.escalate(`${reason} (second stop request)`);
      return this.stopPromise;
    }
    this.stopPromise = this.runStop(reason, code);
    return this.stopPromise;
  }

  /** Kill what is left now; the running stop sequence then finishes with a non-zero code. */
  async escalate(reason: string): Promise<void> {
    if (this.escalated) return;
    this.escalated = true;
    this.log.error({ reason }, 'escalating shutdown: killing the trainer and the task threads');
    await Promise.all([this.trainer.kill(), this.pool.destroy()]);
  }

  private async runStop(reason: string, requestedCode: number): Promise<SupervisorResult> {
    const c = this.opts.config;
    const notifier = this.opts.notifier;
    this.state = 'stopping';
    this.metrics.trainerUp.set(0);
    this.log.info({ reason }, 'supervisor stopping');
    notifier.stopping(`stopping: ${reason}`);
    this.emit('stopping', reason);
    this.stopController.abort(new Error(reason));
    const overall = setTimeout(() => {
      void this.escalate(`shutdown took longer than supervisor.shutdown_timeout_sec (${c.supervisor.shutdown_timeout_sec} s)`);
    }, c.supervisor.shutdown_timeout_sec * 1000);
    overall.unref();
    let code = requestedCode;
    try {
      for (const p of [...(this.opts.plugins ?? [])].reverse()) {
        try {
          await p.stop?.();
        } catch (err) {
          this.log.error({ plugin: p.name, err: (err as Error).message }, 'plug-in stop failed');
        }
      }
      const budgetMs = c.trainer.stop_timeout_sec * 1000;
      notifier.extendTimeout(budgetMs + c.supervisor.task_stop_timeout_sec * 1000 + 30_000);
      const [, trainerResult] = await Promise.all([
        this.pool.close(c.supervisor.task_stop_timeout_sec * 1000),
        this.trainer.stop(reason, budgetMs, (elapsed) => {
          notifier.extendTimeout(Math.max(10_000, budgetMs - elapsed + 30_000));
          notifier.status(`stopping: waiting for the trainer's final save (${Math.round(elapsed / 1000)} s)`);
        }),
      ]);
      if (trainerResult === 'killed' || trainerResult === 'unclean') code = code || 1;
      this.log.info({ trainer: trainerResult }, 'trainer stopped');
      if (this.server !== null) await this.server.close();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'error during shutdown');
      code = code || 1;
    } finally {
      clearTimeout(overall);
    }
    if (this.escalated) code = code || 1;
    this.state = 'stopped';
    const result = { code, reason };
    this.log.info({ code, reason }, code === 0 ? 'supervisor stopped cleanly' : 'supervisor stopped with errors');
    this.emit('done', result);
    this.resolveDone(result);
    return result;
  }
}
