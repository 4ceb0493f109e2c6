// The task pool: piscina worker threads running the phase duties (src/workers/*). Each task
// carries its deadline and stops itself there (cooperative); piscina's abort signal — which
// terminates the thread — is only the hard stop, `graceMs` after the deadline or at shutdown.
import { EventEmitter } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Logger } from '../telemetry/logger.js';
import { SupervisorError } from './errors.js';

/** Task name → payload and result types: the typed face of `dispatch`. */
export type TaskMap = Record<string, { payload: unknown; result: unknown }>;

export interface DispatchOptions {
  /** Epoch ms after which the task must not act. */
  deadline: number;
  /** Chain block at which the window ends (logs and the task's own checks). */
  deadlineBlock?: number | null;
}

export interface RunningTask {
  id: number;
  task: string;
  startedAt: number;
  deadline: number;
  deadlineBlock: number | null;
}

export interface TaskOutcome extends RunningTask {
  endedAt: number;
  ok: boolean;
  error?: string;
  code?: string;
}

export interface TaskPoolOptions<M extends TaskMap> {
  /** Absolute path of the worker entry (dist/workers/pool-entry.js). */
  entry: string;
  /** Task name → absolute path of its module. */
  modules: { [K in keyof M]: string };
  minThreads: number;
  maxThreads: number;
  /** How long after its deadline (or after cancellation) a task is terminated. */
  graceMs: number;
  logger: Logger;
}

// Must match src/workers/pool-entry.ts (TaskRequest); the supervisor does not import workers.
const PING_TASK = '__ping';

export interface TaskPoolEvents {
  start: [task: RunningTask];
  end: [outcome: TaskOutcome];
}

export class TaskPool<M extends TaskMap = TaskMap> extends EventEmitter<TaskPoolEvents> {
  private pool: Piscina | null = null;
  private closing = false;
  private nextId = 1;
  private readonly inflight = new Map<number, { info: RunningTask; cancel: () => void; hardStop: AbortController; done: Promise<unknown> }>();

  constructor(private readonly opts: TaskPoolOptions<M>) {
    super();
  }

  /** Start the threads and prove one of them loads the entry. */
  async start(): Promise<void> {
    this.pool = new Piscina({
      filename: this.opts.entry,
      minThreads: this.opts.minThreads,
      maxThreads: this.opts.maxThreads,
      // Workers keep chain connections and timers between tasks: no atomics wait loop.
      atomics: 'disabled',
      idleTimeout: 10 * 60_000,
    });
    const { port1, port2 } = new MessageChannel();
    const pong = await this.pool.run(
      { task: PING_TASK, module: '', payload: null, deadline: Date.now() + 60_000, deadlineBlock: null, cancelPort: port2 },
      { transferList: [port2] },
    );
    port1.close();
    if (pong !== 'pong') throw new SupervisorError('CNM_ERR_POOL_CLOSED', `task pool entry ${this.opts.entry} answered ${JSON.stringify(pong)} to the start-up probe`);
  }

  running(): RunningTask[] {
    return [...this.inflight.values()].map((t) => t.info);
  }

  get threads(): number {
    return this.pool?.threads.length ?? 0;
  }

  /** Run `task` in a worker; rejects when it fails, misses its deadline or is cancelled. */
  async dispatch<K extends keyof M & string>(task: K, payload: M[K]['payload'], opts: DispatchOptions): Promise<M[K]['result']> {
    if (this.pool === null || this.closing) throw new SupervisorError('CNM_ERR_POOL_CLOSED', `task ${task} refused: the task pool is ${this.closing ? 'closing' : 'not started'}`);
    const module = this.opts.modules[task];
    if (module === undefined) throw new SupervisorError('CNM_ERR_TASK_UNKNOWN', `unknown task "${task}" (known: ${Object.keys(this.opts.modules).join(', ')})`);
    const info: RunningTask = { id: this.nextId++, task, startedAt: Date.now(), deadline: opts.deadline, deadlineBlock: opts.deadlineBlock ?? null };
    const { port1, port2 } = new MessageChannel();
    const hardStop = new AbortController();
    let cancelled = false;
    const hardTimer = setTimeout(() => hardStop.abort(), Math.max(0, opts.deadline - Date.now()) + this.opts.graceMs);
    const cancel = (): void => {
      if (cancelled) return;
      cancelled = true;
      port1.postMessage('cancel');
      clearTimeout(hardTimer);
      setTimeout(() => hardStop.abort(), this.opts.graceMs).unref();
    };
    this.emit('start', info);
    this.opts.logger.debug({ task, id: info.id, deadline: new Date(opts.deadline).toISOString(), deadline_block: info.deadlineBlock }, 'task dispatched');
    const run = this.pool.run(
      { task, module, payload, deadline: opts.deadline, deadlineBlock: info.deadlineBlock, cancelPort: port2 },
      { transferList: [port2], signal: hardStop.signal },
    );
    const entry = { info, cancel, hardStop, done: run.catch(() => undefined) };
    this.inflight.set(info.id, entry);
    try {
      const result = (await run) as M[K]['result'];
      this.finish(info, true);
      return result;
    } catch (err) {
      let error: SupervisorError | Error = err as Error;
      if (hardStop.signal.aborted) {
        error = cancelled
          ? new SupervisorError('CNM_ERR_TASK_CANCELLED', `task ${task} was cancelled (shutdown) and did not stop within ${this.opts.graceMs} ms: its thread was terminated`)
          : new SupervisorError('CNM_ERR_TASK_DEADLINE', `task ${task} ran ${this.opts.graceMs} ms past its deadline: its thread was terminated`);
      }
      this.finish(info, false, error);
      throw error;
    } finally {
      clearTimeout(hardTimer);
      port1.close();
      this.inflight.delete(info.id);
    }
  }

  private finish(info: RunningTask, ok: boolean, err?: Error): void {
    const outcome: TaskOutcome = { ...info, endedAt: Date.now(), ok };
    if (err !== undefined) {
      outcome.error = err.message;
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string') outcome.code = code;
    }
    this.emit('end', outcome);
  }

  /**
   * Refuse new tasks, cancel the running ones, wait for them up to `timeoutMs`, then terminate
   * what is left and close the threads.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    const pool = this.pool;
    if (pool === null) return;
    const tasks = [...this.inflight.values()];
    for (const t of tasks) t.cancel();
    if (tasks.length > 0) {
      this.opts.logger.info({ tasks: tasks.map((t) => t.info.task) }, 'cancelling running tasks');
      const all = Promise.all(tasks.map((t) => t.done));
      const timedOut = await Promise.race([all.then(() => false), sleep(timeoutMs).then(() => true)]);
      if (timedOut) {
        for (const t of this.inflight.values()) t.hardStop.abort();
        this.opts.logger.warn({ tasks: [...this.inflight.values()].map((t) => t.info.task) }, 'tasks did not stop in time: terminated');
      }
    }
    await Promise.race([pool.close(), sleep(timeoutMs)]);
    await pool.destroy().catch(() => undefined);
    this.pool = null;
  }

  /** Escalation: terminate everything now. */
  async destroy(): Promise<void> {
    this.closing = true;
    for (const t of this.inflight.values()) t.hardStop.abort();
    await this.pool?.destroy().catch(() => undefined);
    this.pool = null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });
}
