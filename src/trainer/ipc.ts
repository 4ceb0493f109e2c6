// The IPC protocol between the supervisor and the trainer child (child_process.fork, 'json'
// serialization). A leaf module: it imports nothing of ours, so both sides (and test doubles)
// can use it. Every message is validated on receipt: a malformed one is reported, never trusted.
//
// Contract for the trainer entry module (dist/trainer/main.js):
// - argv: `--path <DIR/config.yaml>`; env `CONNITO_HEARTBEAT_MS` = heartbeat period.
// - send `ready` once set up, `heartbeat` every CONNITO_HEARTBEAT_MS from a main-thread timer
//   (the addon works on its own threads, so the event loop stays free), `progress` after
//   optimizer steps, `checkpoint` after each complete checkpoint, `final` after the final save.
// - on `stop` or SIGTERM: set a flag (no I/O in the handler), save to DIR/final at a safe point,
//   send `final`, exit 0. On an unrecoverable error send `fatal` and exit non-zero.
// - exit when the IPC channel closes (`process.on('disconnect')`): the supervisor died.
// Messages are hints for logs and status; the checkpoint directory is the source of truth.

export const IPC_PROTOCOL_VERSION = 1;

/** Environment variable carrying the heartbeat period (ms) to the child. */
export const HEARTBEAT_ENV = 'CONNITO_HEARTBEAT_MS';

export interface ReadyMessage {
  type: 'ready';
  protocol: number;
  /** Backend the engine runs on, e.g. 'cpu' or 'cuda', and why when it fell back. */
  backend?: string;
  detail?: string;
}

export interface ProgressMessage {
  type: 'progress';
  /** Micro-step counter (the reference's `step`). */
  step: number;
  /** Optimizer steps (the reference's `inner_opt_step`). */
  innerOptStep?: number;
  loss: number;
  lr: number;
  tokensPerSec: number;
  totalTokens?: number;
  /** Global version of the baseline being trained. */
  globalVer?: number;
  /** Expert group name (label of miner_training_loss). */
  expertGroup?: string;
}

export interface CheckpointMessage {
  type: 'checkpoint';
  path: string;
  globalVer: number;
  innerOpt: number;
}

export interface HeartbeatMessage {
  type: 'heartbeat';
  /** What the trainer is doing, e.g. 'setup', 'training', 'saving', 'reloading'. */
  state?: string;
}

export interface FatalMessage {
  type: 'fatal';
  reason: string;
  code?: string;
}

export interface FinalMessage {
  type: 'final';
  /** DIR/final path, or null when there was nothing to save. */
  path: string | null;
}

export interface LogMessage {
  type: 'log';
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields?: Record<string, unknown>;
}

export type ChildMessage =
  | ReadyMessage
  | ProgressMessage
  | CheckpointMessage
  | HeartbeatMessage
  | FatalMessage
  | FinalMessage
  | LogMessage;

export interface StopMessage {
  type: 'stop';
  reason: string;
  /** Milliseconds the child has before it is sent SIGKILL. */
  budgetMs: number;
}

export type ParentMessage = StopMessage;

export type Parsed<T> = { ok: true; message: T } | { ok: false; error: string };

type Check = (v: unknown) => boolean;
const isNum: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const isNumOrNaN: Check = (v) => typeof v === 'number'; // a loss may legitimately be NaN/Inf: report it
const isInt: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const isStr: Check = (v) => typeof v === 'string';
const isObj: Check = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const opt = (c: Check): Check => (v) => v === undefined || c(v);
const oneOf = (...xs: string[]): Check => (v) => typeof v === 'string' && xs.includes(v);

const CHILD_SHAPES: Record<ChildMessage['type'], Record<string, Check>> = {
  ready: { protocol: isInt, backend: opt(isStr), detail: opt(isStr) },
  progress: {
    step: isInt,
    innerOptStep: opt(isInt),
    loss: isNumOrNaN,
    lr: isNum,
    tokensPerSec: isNum,
    totalTokens: opt(isInt),
    globalVer: opt(isInt),
    expertGroup: opt(isStr),
  },
  checkpoint: { path: isStr, globalVer: isInt, innerOpt: isInt },
  heartbeat: { state: opt(isStr) },
  fatal: { reason: isStr, code: opt(isStr) },
  final: { path: (v) => v === null || isStr(v) },
  log: { level: oneOf('debug', 'info', 'warn', 'error'), msg: isStr, fields: opt(isObj) },
};

const PARENT_SHAPES: Record<ParentMessage['type'], Record<string, Check>> = {
  stop: { reason: isStr, budgetMs: isInt },
};

function parse<T>(shapes: Record<string, Record<string, Check>>, raw: unknown): Parsed<T> {
  if (!isObj(raw)) return { ok: false, error: 'message is not an object' };
  const msg = raw as Record<string, unknown>;
  const type = msg['type'];
  if (typeof type !== 'string' || !Object.hasOwn(shapes, type)) {
    return { ok: false, error: `unknown message type ${JSON.stringify(type)}` };
  }
  const shape = shapes[type]!;
  for (const [field, check] of Object.entries(shape)) {
    if (!check(msg[field])) return { ok: false, error: `${type}.${field} is invalid: ${JSON.stringify(msg[field])}` };
  }
  return { ok: true, message: msg as T };
}

/** Validate a message received from the trainer child. */
export function parseChildMessage(raw: unknown): Parsed<ChildMessage> {
  return parse<ChildMessage>(CHILD_SHAPES, raw);
}

/** Validate a message received from the supervisor. */
export function parseParentMessage(raw: unknown): Parsed<ParentMessage> {
  return parse<ParentMessage>(PARENT_SHAPES, raw);
}
