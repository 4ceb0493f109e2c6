// The piscina worker entry: runs one phase task per call in a warm worker thread. A task module
// (src/workers/download.ts, commit.ts, submit.ts) exports
//   run(payload, ctx: TaskContext): Promise<result>
// and must stop acting at ctx.deadline: ctx.signal aborts at the deadline or when the supervisor
// cancels (shutdown). Module state (e.g. a chain connection) survives between tasks because the
// pool keeps its threads (atomics 'disabled', minThreads warm).
import { pathToFileURL } from 'node:url';
import type { MessagePort } from 'node:worker_threads';

/** What the supervisor sends (src/supervisor/task-pool.ts builds it; keep both in step). */
export interface TaskRequest {
  /** Task name, for logs. */
  task: string;
  /** Absolute path of the task module. */
  module: string;
  payload: unknown;
  /** Epoch ms after which the task must not act. */
  deadline: number;
  /** Chain block at which the window ends, when the task belongs to a phase window. */
  deadlineBlock: number | null;
  /** The supervisor posts 'cancel' here on shutdown. */
  cancelPort: MessagePort;
}

export interface TaskContext {
  task: string;
  deadline: number;
  deadlineBlock: number | null;
  /** Aborts at the deadline or on cancellation; `signal.reason` says which. */
  signal: AbortSignal;
  /** Milliseconds left before the deadline (negative when past). */
  timeLeft(): number;
}

export interface TaskModule {
  run(payload: unknown, ctx: TaskContext): Promise<unknown>;
}

const modules = new Map<string, Promise<TaskModule>>();

function load(path: string): Promise<TaskModule> {
  let mod = modules.get(path);
  if (mod === undefined) {
    mod = import(pathToFileURL(path).href) as Promise<TaskModule>;
    modules.set(path, mod);
  }
  return mod;
}

/** Task name of the supervisor's start-up probe: proves a worker thread loads this entry. */
export const PING_TASK = '__ping';

export default async function runTask(req: TaskRequest): Promise<unknown> {
  if (req.task === PING_TASK) {
    req.cancelPort.close();
    return 'pong';
  }
  const controller = new AbortController();
  const untilDeadline = req.deadline - Date.now();
  const timer = setTimeout(() => controller.abort(new Error(`deadline of task ${req.task} reached`)), Math.max(0, untilDeadline));
  req.cancelPort.on('message', (m: unknown) => {
    if (m === 'cancel') controller.abort(new Error(`task ${req.task} cancelled: the supervisor is stopping`));
  });
  try {
    const mod = await load(req.module);
    if (typeof mod.run !== 'function') throw new TypeError(`task module ${req.module} does not export run(payload, ctx)`);
    return await mod.run(req.payload, {
      task: req.task,
      deadline: req.deadline,
      deadlineBlock: req.deadlineBlock,
      signal: controller.signal,
      timeLeft: () => req.deadline - Date.now(),
    });
  } finally {
    clearTimeout(timer);
    req.cancelPort.close();
  }
}
