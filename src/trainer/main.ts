// Entry of the trainer child (forked by the supervisor as dist/trainer/main.js; see ipc.ts for the
// contract). Runs standalone too: `node dist/trainer/main.js --path DIR` (no IPC, logs only).
//
// Exit codes: 0 after a clean stop (final save written), 2 for configuration errors, 1 for any
// other fatal error (a `fatal` message precedes it). Signals and `stop` only set a flag: the loop
// reaches a safe point, saves DIR/final and returns.
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { describeError } from './errors.js';
import { IPC_PROTOCOL_VERSION, parseParentMessage, type ChildMessage } from './ipc.js';
import { StopRequest } from './stop.js';
import { runTrainer } from './trainer.js';

const CONFIG_CODES = new Set(['CNM_ERR_TRAINER_CONFIG', 'CNM_ERR_MODEL_CONFIG', 'CNM_ERR_EXPERT_ASSIGNMENT', 'CNM_ERR_TOKENIZER']);

function send(msg: ChildMessage): void {
  if (typeof process.send === 'function' && process.connected) {
    try {
      process.send(msg);
    } catch {
      // The channel closed between the check and the send: the disconnect handler takes over.
    }
  }
}

/**
 * libgomp threads spin after every parallel region by default; on a machine with few cores that
 * starves the data worker thread (measured on 2 cores: the loop ran at 0.57 of the engine alone,
 * 1.0 with passive waiting). Must be set before the addon (and so libgomp) is loaded; an operator's
 * own setting wins.
 */
export function setOpenMpWaitPolicy(env: NodeJS.ProcessEnv = process.env): void {
  if (env.OMP_WAIT_POLICY === undefined && env.GOMP_SPINCOUNT === undefined) env.OMP_WAIT_POLICY = 'PASSIVE';
}

export async function main(argv: string[]): Promise<number> {
  setOpenMpWaitPolicy();
  const stop = new StopRequest();
  // Flags only: no I/O in signal handlers.
  const onSignal = (sig: NodeJS.Signals): void => stop.request(sig);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('disconnect', () => stop.request('ipc-disconnect'));
  process.on('message', (raw: unknown) => {
    const parsed = parseParentMessage(raw);
    if (parsed.ok && parsed.message.type === 'stop') stop.request(`stop: ${parsed.message.reason}`);
  });

  let activity = 'starting';
  const hbEnv = Number(process.env.CONNITO_HEARTBEAT_MS);
  const heartbeat = setInterval(() => send({ type: 'heartbeat', state: activity }), Number.isFinite(hbEnv) && hbEnv > 0 ? hbEnv : 5000);
  heartbeat.unref();

  let log: Logger = createLogger({ proc: 'trainer' });
  try {
    const { values } = parseArgs({ args: argv, options: { path: { type: 'string' }, help: { type: 'boolean' } }, allowPositionals: false });
    if (values.help || values.path === undefined) {
      process.stdout.write('usage: node dist/trainer/main.js --path DIR|DIR/config.yaml\n  The training child of `connito-miner start`; normally started by the supervisor.\n');
      return values.help ? 0 : 2;
    }
    const loaded = await loadConfig(values.path);
    log = createLogger({ proc: 'trainer', level: process.env.CONNITO_LOG_LEVEL ?? loaded.config.log.level, ...(loaded.config.log.format === 'auto' ? {} : { json: loaded.config.log.format === 'json' }) });
    const result = await runTrainer(loaded.config, loaded.runDir, {
      log,
      stop,
      send,
      setActivity: (s) => {
        activity = s;
      },
      onReady: (backend, detail) => send({ type: 'ready', protocol: IPC_PROTOCOL_VERSION, backend, detail }),
    });
    send({ type: 'final', path: result.finalPath });
    return 0;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const reason = describeError(e);
    // Coded errors carry their explanation; a stack only helps with the unexpected ones.
    log.error(typeof code === 'string' ? { code } : { err: e }, reason);
    send({ type: 'fatal', reason, ...(typeof code === 'string' ? { code } : {}) });
    return typeof code === 'string' && (CONFIG_CODES.has(code) || code.startsWith('CNM_ERR_CONFIG') || code.startsWith('ERR_PARSE_ARGS')) ? 2 : 1;
  } finally {
    clearInterval(heartbeat);
  }
}

// Run when executed as the entry module (not when imported by a test).
function isEntry(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(arg)).href;
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv.slice(2)).then(
    (code) => {
      // pino's async destination flushes on exit; give the IPC channel a moment to drain too.
      process.exitCode = code;
      if (process.connected) process.disconnect();
      // Nothing should be left running; if a handle lingers, do not hang the supervisor's stop.
      setTimeout(() => process.exit(code), 3000).unref();
    },
    (e) => {
      process.stderr.write(`trainer: ${describeError(e)}\n`);
      process.exitCode = 1;
    },
  );
}
