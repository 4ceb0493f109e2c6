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

interface ChainEntry {
  client: ChainClient;
  /** The counters of the task that uses this client now (one task per thread at a time). */
  counters: { rpcErrors: number; commitLatencies: number[] };
}

interface ThreadState {
  logger: Logger | null;
  loggerKey: string;
  /** By endpoint and hotkey: a thread normally holds one; tests run several miners in one process. */
  chains: Map<string, ChainEntry>;
  wallets: Map<string, Wallet>;
}

const thread: ThreadState = { logger: null, loggerKey: '', chains: new Map(), wallets: new Map() };

// Test hook: where task loggers write (default stdout, as every process of the tree).
let logDestination: NodeJS.WritableStream | null = null;

/** Tests: send the task logs of this thread to `dest` (null: back to stdout). */
export function setWorkerLogDestination(dest: NodeJS.WritableStream | null): void {
  logDestination = dest;
  thread.logger = null;
}

function threadLogger(config: MinerConfig): Logger {
  const key = `${config.log.level}|${config.log.format}`;
  if (thread.logger === null || thread.loggerKey !== key) {
    thread.logger = createLogger({
      proc: 'worker',
      level: process.env.CONNITO_LOG_LEVEL ?? config.log.level,
      ...(config.log.format === 'auto' ? {} : { json: config.log.format === 'json' }),
      ...(logDestination !== null ? { destination: logDestination } : {}),
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
  if (typeof payload?.configFile !== 'string') throw new WorkerError('CNM_ERR_TASK_CONFIG', `${duty} task: the payload has no configFile`);
  const loaded = await loadConfig(payload.configFile);
  const config = loaded.config;
  const log = threadLogger(config).child({ task: duty, cycle: payload.cycleIndex });
  const schedule = scheduleFromPhases(payload.schedule);
  const walletKey = `${config.chain.wallet_path}|${config.chain.coldkey_name}|${config.chain.hotkey_name}`;
  let wallet = thread.wallets.get(walletKey);
  if (wallet === undefined) {
    wallet = await loadWallet({ path: config.chain.wallet_path, name: config.chain.coldkey_name, hotkey: config.chain.hotkey_name });
    thread.wallets.set(walletKey, wallet);
  }
  const url = resolveNetworkUrl(config.chain.network);
  const chainKey = `${url}|${config.chain.netuid}|${wallet.hotkeyAddress}`;
  let entry = thread.chains.get(chainKey);
  if (entry === undefined) {
    const e: ChainEntry = { client: null as unknown as ChainClient, counters: { rpcErrors: 0, commitLatencies: [] } };
    const sink: ChainMetricsSink = {
      rpcError: () => {
        e.counters.rpcErrors += 1;
      },
      commitLatency: (seconds) => {
        e.counters.commitLatencies.push(seconds);
      },
    };
    e.client = new ChainClient({
      url,
      netuid: config.chain.netuid,
      wallet,
      logger: threadLogger(config).child({ component: 'chain' }),
      metrics: sink,
      blockTimeMs: payload.blockTimeMs,
      ...chainTimings(payload.blockTimeMs),
    });
    thread.chains.set(chainKey, e);
    entry = e;
  }
  entry.counters = { rpcErrors: 0, commitLatencies: [] };
  const mine = entry.counters;
  const group = await readExpertGroup(config.task.path);
  return {
    duty,
    configFile: loaded.configFile,
    runDir: loaded.runDir ?? dirname(loaded.configFile),
    config,
    log,
    wallet,
    chain: entry.client,
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

/** Closes the thread's chain clients (tests; the pool closes threads at shutdown). */
export async function closeRuntime(): Promise<void> {
  const all = [...thread.chains.values()];
  thread.chains.clear();
  thread.wallets.clear();
  await Promise.all(all.map((e) => e.client.close()));
}
