// The supervisor as a process: pid file and lock, signals, the run-state file, and the exit
// code. `connito-miner start` calls runSupervisor after it has validated config and wallet.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadedConfig } from '../config/index.js';
import type { Logger } from '../telemetry/logger.js';
import { AlreadyRunningError } from './errors.js';
import { systemdUnit } from './oom.js';
import { acquirePidLock, removeRunState, writeRunState, type PidLock } from './pidfile.js';
import { Notifier } from './sdnotify.js';
import { Supervisor, type SupervisorPlugin } from './supervisor.js';
import type { TaskMap } from './task-pool.js';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The phase duties and the modules that implement them (src/workers). */
export const DEFAULT_TASK_MODULES = {
  download: join(DIST, 'workers', 'download.js'),
  commit: join(DIST, 'workers', 'commit.js'),
  submit: join(DIST, 'workers', 'submit.js'),
} as const;

export const DEFAULT_POOL_ENTRY = join(DIST, 'workers', 'pool-entry.js');
export const DEFAULT_TRAINER_ENTRY = join(DIST, 'trainer', 'main.js');

/** trainer.entry from the config, else the bundled trainer. */
export function trainerEntryOf(loaded: LoadedConfig): string {
  return loaded.config.trainer.entry ?? DEFAULT_TRAINER_ENTRY;
}

export interface RunSupervisorOptions<M extends TaskMap = TaskMap> {
  loaded: LoadedConfig;
  logger: Logger;
  trainerEntry?: string;
  poolEntry?: string;
  taskModules?: { [K in keyof M]: string };
  plugins?: SupervisorPlugin<M>[];
}

const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** Run until stopped; resolves with the process exit code. */
export async function runSupervisor<M extends TaskMap = TaskMap>(opts: RunSupervisorOptions<M>): Promise<number> {
  const { loaded, logger: log } = opts;
  const { runDir, configFile, config } = loaded;
  const trainerEntry = opts.trainerEntry ?? trainerEntryOf(loaded);
  const poolEntry = opts.poolEntry ?? DEFAULT_POOL_ENTRY;
  if (!existsSync(poolEntry)) {
    log.error({ pool_entry: poolEntry }, 'task pool entry not found: run `npm run build`');
    return 1;
  }

  let lock: PidLock;
  try {
    lock = acquirePidLock(runDir);
  } catch (err) {
    if (err instanceof AlreadyRunningError) {
      log.error({ running_pid: err.pid, run_dir: runDir }, err.message);
      return 1;
    }
    throw err;
  }
  if (lock.stalePid !== null) {
    log.warn({ stale_pid: lock.stalePid, pid_file: lock.path }, `stale pid file taken over: pid ${lock.stalePid} is not running (the previous supervisor died without cleaning up)`);
  }

  const notifier = new Notifier({ logger: log });
  const sup = new Supervisor<M>({
    config,
    runDir,
    configFile,
    logger: log,
    notifier,
    trainerEntry,
    poolEntry,
    taskModules: (opts.taskModules ?? DEFAULT_TASK_MODULES) as { [K in keyof M]: string },
    ...(opts.plugins !== undefined ? { plugins: opts.plugins } : {}),
  });

  const unit = systemdUnit();
  const writeState = (statusUrl: string | null): void => {
    try {
      writeRunState(runDir, { pid: process.pid, startedAt: new Date().toISOString(), statusUrl, systemdUnit: unit });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot write supervisor.json (status/stop will still work through the pid file)');
    }
  };
  writeState(null);
  sup.on('listening', (url) => writeState(url));
  // pm2 (`wait_ready: true`) waits for a 'ready' message over its IPC channel, as systemd waits for READY=1.
  if (process.env.pm_id !== undefined && typeof process.send === 'function') {
    sup.once('ready', () => process.send?.('ready'));
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    log.info({ signal, count: signals }, `received ${signal}`);
    if (signals === 1) void sup.stop(`received ${signal}`);
    else void sup.escalate(`received ${signal} again`);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  const onFatal = (err: unknown): void => {
    log.fatal({ err: err instanceof Error ? (err.stack ?? err.message) : String(err) }, 'uncaught error in the supervisor');
    void sup.stop('uncaught error', 1);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);

  log.info(
    { run_dir: runDir, config: configFile, trainer_entry: trainerEntry, systemd_unit: unit, notify: notifier.enabled },
    'supervisor starting',
  );
  try {
    await sup.start();
  } catch (err) {
    log.error({ err: (err as Error).message }, 'supervisor failed to start');
    void sup.stop(`start failed: ${(err as Error).message}`, 1);
  }
  const result = await sup.done;
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off('uncaughtException', onFatal);
  process.off('unhandledRejection', onFatal);
  removeRunState(runDir);
  lock.release();
  log.info({ code: result.code, reason: result.reason }, 'supervisor exiting');
  return result.code;
}
