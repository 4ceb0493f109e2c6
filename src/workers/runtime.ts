// What every phase-duty task needs, per worker thread: the run's config, the logger, the wallet,
// the expert group, the schedule of the payload — and one chain client kept across tasks (a warm
// worker thread reuses its connection; DESIGN "Each worker keeps its chain connection").
import { dirname } from 'node:path';
import { ChainClient } from '../chain/client.js';
import type { ChainMetricsSink } from '../chain/types.js';
import { loadWallet, type Wallet } from '../chain/wallet.js';
import { loadConfig, resolveNetworkUrl, type MinerConfig } from '../config/index.js';
import { scheduleFromPhases, type PhaseSchedule } from '../protocol/phases.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { WorkerError } from './errors.js';
import { readExpertGroup, type WorkerExpertGroup } from './expert-group.js';
import type { DutyName, DutyPayload, DutyTelemetry } from './task-protocol.js';

export interface TaskRuntime {
  duty: DutyName;
  configFile: string;
  runDir: string;
  config: MinerConfig;
  log: Logger;
  wallet: Wallet;
  chain: ChainClient;
  group: WorkerExpertGroup;
  schedule: PhaseSchedule;
  blockTimeMs: number;
  /** What this task reports to the supervisor's metrics. */
  telemetry(): DutyTelemetry;
}

interface ThreadState {
  logger: Logger | null;
  loggerKey: string;
  chain: ChainClient | null;
  chainKey: string;
  wallet: Wallet | null;
  walletKey: string;
}

const thread: ThreadState = { logger: null, loggerKey: '', chain: null, chainKey: '', wallet: null, walletKey: '' };

// One task runs per thread at a time; the chain client reports into the current task's counters.
let counters: { rpcErrors: number; commitLatencies: number[] } = { rpcErrors: 0, commitLatencies: [] };
const sink: ChainMetricsSink = {
  rpcError: () => {
    counters.rpcErrors += 1;
  },
  commitLatency: (seconds) => {
    counters.commitLatencies.push(seconds);
  },
};

function threadLogger(config: MinerConfig): Logger {
  const key = `${config.log.level}|${config.log.format}`;
  if (thread.logger === null || thread.loggerKey !== key) {
    thread.logger = createLogger({
      proc: 'worker',
      level: process.env.CONNITO_LOG_LEVEL ?? config.log.level,
      ...(config.log.format === 'auto' ? {} : { json: config.log.format === 'json' }),
    });
    thread.loggerKey = key;
  }
  return thread.logger;
}

/** The chain client options that suit a block time: calls and reconnects scale with it. */
export function chainTimings(blockTimeMs: number): { callTimeoutMs: number; reconnectDelayMs: number; maxReconnectDelayMs: number } {
  return {
    callTimeoutMs: Math.min(30_000, Math.max(5_000, 20 * blockTimeMs)),
    reconnectDelayMs: Math.min(1_000, Math.max(100, blockTimeMs)),
    maxReconnectDelayMs: Math.min(30_000, Math.max(1_000, 20 * blockTimeMs)),
  };
}

/** Loads everything a task needs; throws WorkerError/ConfigError/WalletError with what to fix. */
export async function openRuntime(duty: DutyName, payload: DutyPayload): Promise<TaskRuntime> {
  counters = { rpcErrors: 0, commitLatencies: [] };
  const mine = counters;
  if (typeof payload?.configFile !== 'string') throw new WorkerError('CNM_ERR_TASK_CONFIG', `${duty} task: the payload has no configFile`);
  const loaded = await loadConfig(payload.configFile);
  const config = loaded.config;
  const log = threadLogger(config).child({ task: duty, cycle: payload.cycleIndex });
  const schedule = scheduleFromPhases(payload.schedule);
  const walletKey = `${config.chain.wallet_path}|${config.chain.coldkey_name}|${config.chain.hotkey_name}`;
  if (thread.wallet === null || thread.walletKey !== walletKey) {
    thread.wallet = await loadWallet({ path: config.chain.wallet_path, name: config.chain.coldkey_name, hotkey: config.chain.hotkey_name });
    thread.walletKey = walletKey;
  }
  const wallet = thread.wallet;
  const url = resolveNetworkUrl(config.chain.network);
  const chainKey = `${url}|${config.chain.netuid}|${wallet.hotkeyAddress}`;
  if (thread.chain === null || thread.chainKey !== chainKey) {
    if (thread.chain !== null) await thread.chain.close().catch(() => undefined);
    thread.chain = new ChainClient({
      url,
      netuid: config.chain.netuid,
      wallet,
      logger: threadLogger(config).child({ component: 'chain' }),
      metrics: sink,
      blockTimeMs: payload.blockTimeMs,
      ...chainTimings(payload.blockTimeMs),
    });
    thread.chainKey = chainKey;
  }
  const group = await readExpertGroup(config.task.path);
  return {
    duty,
    configFile: loaded.configFile,
    runDir: loaded.runDir ?? dirname(loaded.configFile),
    config,
    log,
    wallet,
    chain: thread.chain,
    group,
    schedule,
    blockTimeMs: payload.blockTimeMs,
    telemetry: () => ({ chainRpcErrors: mine.rpcErrors, chainCommitLatencySeconds: [...mine.commitLatencies] }),
  };
}

/** A logger for failures that happen before the runtime exists (no config yet). */
export function fallbackLogger(duty: DutyName): Logger {
  return (thread.logger ?? createLogger({ proc: 'worker' })).child({ task: duty });
}

/** Closes the thread's chain client (tests; the pool closes threads at shutdown). */
export async function closeRuntime(): Promise<void> {
  const c = thread.chain;
  thread.chain = null;
  thread.chainKey = '';
  if (c !== null) await c.close();
}
