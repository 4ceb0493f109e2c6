// The Prometheus registry. Only the supervisor owns one (the trainer and the workers send
// snapshots and outcomes to it). Names follow the reference dashboard (PROTOCOL.md §11.1) where
// they overlap, so existing dashboards keep working.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MinerMetrics {
  registry: Registry;
  trainingLoss: Gauge<'expert_group'>;
  learningRate: Gauge;
  localStepRate: Gauge;
  tokensPerSec: Gauge;
  totalTokens: Gauge;
  innerOptStep: Gauge;
  currentBlock: Gauge;
  phaseIndex: Gauge;
  blocksRemainingInPhase: Gauge;
  chainRpcErrors: Counter;
  chainCommitLatency: Histogram;
  trainerRestarts: Counter<'reason'>;
  trainerUp: Gauge;
  checkpointsSaved: Counter;
  tasks: Counter<'task' | 'outcome'>;
  taskDuration: Histogram<'task'>;
}

export interface MetricsOptions {
  /** process_* and nodejs_* collectors (default true). */
  defaultMetrics?: boolean;
  prefix?: string;
}

export function createMetrics(opts: MetricsOptions = {}): MinerMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    trainingLoss: new Gauge({ name: 'miner_training_loss', help: 'Mean micro-batch loss of the last optimizer step', labelNames: ['expert_group'], registers }),
    learningRate: new Gauge({ name: 'miner_learning_rate', help: 'Learning rate of the last optimizer step', registers }),
    localStepRate: new Gauge({ name: 'miner_local_step_rate', help: 'Optimizer steps per second, between the last two progress reports', registers }),
    tokensPerSec: new Gauge({ name: 'miner_tokens_per_sec', help: 'Training throughput reported by the trainer', registers }),
    totalTokens: new Gauge({ name: 'miner_total_tokens', help: 'Tokens trained since the trainer started', registers }),
    innerOptStep: new Gauge({ name: 'miner_inner_opt_step', help: 'Optimizer steps of the current run', registers }),
    currentBlock: new Gauge({ name: 'subnet_current_block', help: 'Chain head block', registers }),
    phaseIndex: new Gauge({ name: 'subnet_current_phase_index', help: 'Index of the current phase in the cycle', registers }),
    blocksRemainingInPhase: new Gauge({ name: 'subnet_blocks_remaining_in_phase', help: 'Blocks left in the current phase', registers }),
    chainRpcErrors: new Counter({ name: 'chain_rpc_errors_total', help: 'Failed chain RPC calls', registers }),
    chainCommitLatency: new Histogram({ name: 'chain_commit_latency_seconds', help: 'Time to get a commitment included', registers }),
    trainerRestarts: new Counter({ name: 'miner_trainer_restarts_total', help: 'Trainer restarts by the supervisor, by reason', labelNames: ['reason'], registers }),
    trainerUp: new Gauge({ name: 'miner_trainer_up', help: '1 while the trainer child runs and reported ready', registers }),
    checkpointsSaved: new Counter({ name: 'miner_checkpoints_saved_total', help: 'Checkpoints the trainer reported complete', registers }),
    tasks: new Counter({ name: 'miner_tasks_total', help: 'Phase tasks run, by task and outcome', labelNames: ['task', 'outcome'], registers }),
    taskDuration: new Histogram({ name: 'miner_task_duration_seconds', help: 'Duration of phase tasks', labelNames: ['task'], buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600], registers }),
  };
}

/** Counters and observations a worker task may return in its result's `telemetry` field. */
export interface TaskTelemetry {
  chainRpcErrors?: number;
  chainCommitLatencySeconds?: number[];
}

export function applyTaskTelemetry(m: MinerMetrics, t: TaskTelemetry | undefined): void {
  if (t === undefined || t === null || typeof t !== 'object') return;
  if (typeof t.chainRpcErrors === 'number' && t.chainRpcErrors > 0) m.chainRpcErrors.inc(t.chainRpcErrors);
  if (Array.isArray(t.chainCommitLatencySeconds)) {
    for (const s of t.chainCommitLatencySeconds) if (typeof s === 'number' && Number.isFinite(s)) m.chainCommitLatency.observe(s);
  }
}
