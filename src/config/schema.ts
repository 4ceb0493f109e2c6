// The schema of DIR/config.yaml. Section and field names follow the reference miner's
// `shared/config.py` (PROTOCOL.md §10.4) so an operator's reference config loads unchanged; the
// sections `status`, `trainer`, `supervisor`, `data` and `devnet` are ours. Field descriptions here
// are the comments `init` writes into config.yaml, so they are written for operators.
import * as z from 'zod';

/** Bittensor network names (as btcli/bittensor spell them) and their endpoints. */
export const KNOWN_NETWORKS: Readonly<Record<string, string>> = {
  finney: 'wss://entrypoint-finney.opentensor.ai:443',
  archive: 'wss://archive.chain.opentensor.ai:443',
  test: 'wss://test.finney.opentensor.ai:443',
  local: 'ws://127.0.0.1:9944',
};

const WS_URL = /^wss?:\/\/[^\s/:]+(:\d{1,5})?(\/\S*)?$/;

/** The WebSocket endpoint of a `chain.network` value (a known name or a ws:// / wss:// URL). */
export function resolveNetworkUrl(network: string): string {
  const known = KNOWN_NETWORKS[network];
  if (known !== undefined) return known;
  if (WS_URL.test(network)) return network;
  throw new Error(`unknown network "${network}": use one of ${Object.keys(KNOWN_NETWORKS).join(', ')} or a ws:// / wss:// URL`);
}

const int = () => z.number().int();
const posInt = () => z.number().int().positive();
const nonNegInt = () => z.number().int().nonnegative();
const port = () => z.number().int().min(1).max(65535);
const path = () => z.string().min(1);
const precision = () => z.enum(['fp16-mixed', 'bf16-mixed', 'fp32']);

const network = z
  .string()
  .refine((v) => KNOWN_NETWORKS[v] !== undefined || WS_URL.test(v), {
    message: `a known network (${Object.keys(KNOWN_NETWORKS).join(' | ')}) or a ws:// / wss:// URL`,
  });

const run = z
  .object({
    run_name: z.string().min(1).default('foundation').describe('Name of this run; names the metrics file.'),
    root_path: path()
      .default('.')
      .describe('Root of the run: relative paths below resolve against it. "." = the directory holding this config.yaml.'),
  })
  .describe('Run identity.');

const chain = z
  .object({
    netuid: nonNegInt().max(65535).default(102).describe('Subnet id. Connito is 102.'),
    uid: nonNegInt().max(65535).default(0).describe("This miner's uid on the subnet; filled from the metagraph."),
    hotkey_ss58: z.string().default('').describe('SS58 address of the hotkey; filled from the wallet when empty.'),
    coldkey_ss58: z.string().default('').describe('SS58 address of the coldkey; filled from the wallet when empty.'),
    ip: z.string().min(1).default('0.0.0.0').describe('IP announced in the axon record on chain.'),
    port: port().default(8000).describe('Port announced in the axon record on chain.'),
    coldkey_name: z.string().min(1).default('default').describe('Wallet (coldkey) name, as in `btcli --wallet.name`.'),
    hotkey_name: z.string().min(1).default('default').describe('Hotkey name, as in `btcli --wallet.hotkey`.'),
    wallet_path: path()
      .default('~/.bittensor/wallets')
      .describe('Directory of Bittensor wallets; the hotkey file is <wallet_path>/<coldkey_name>/hotkeys/<hotkey_name>.'),
    network: network
      .default('archive')
      .describe('Chain endpoint: finney | archive | test | local, or a ws:// / wss:// URL. Historical reads need an archive node.'),
  })
  .describe('Chain and wallet.');

const model = z
  .object({
    model_path: z.string().min(1).default('deepseek-ai/DeepSeek-V2-Lite').describe('Model id of the subnet.'),
    base_arch_model: z.string().min(1).default('deepseek-ai/DeepSeek-V2-Lite').describe('Architecture the expert groups are cut from.'),
    base_path: path()
      .nullable()
      .default(null)
      .describe(
        'Directory of the base model in Hugging Face format (config.json, *.safetensors, tokenizer.json): the frozen backbone weights. null = none (training continues with a loud warning).',
      ),
    foundation: z.boolean().default(true).describe('Reference field (foundation model run).'),
    torch_compile: z.boolean().default(false).describe('Reference field; unused by connito-miner.'),
    attn_implementation: z.string().min(1).default('sdpa').describe('Reference field; unused by connito-miner.'),
    precision: precision()
      .default('fp16-mixed')
      .describe('Reference field; connito-miner reads trainer.precision.'),
    device: z.string().min(1).default('cuda').describe('Reference field; connito-miner reads trainer.backend.'),
  })
  .describe('Model identity. Locked fields must match the subnet.');

const moe = z
  .object({
    my_expert_group_id: int().default(1).describe('Reference field; unused (the group comes from the task folder).'),
    interleave: z.boolean().default(true).describe('Interleave MoE layers.'),
    aux_load_balance: z.boolean().default(true).describe('Auxiliary load-balancing loss.'),
    router_aux_loss_coef: z.number().nonnegative().default(1.0).describe('Weight of the auxiliary loss.'),
    partial_moe: z.boolean().default(true).describe('Train a partial MoE (this expert group only).'),
    num_experts: posInt().default(8).describe('Experts per group.'),
    num_experts_per_tok: posInt().default(2).describe('Experts routed per token.'),
    partial_topk: posInt().default(1).describe('Top-k inside the partial model.'),
    full_topk: posInt().default(2).describe('Top-k inside the full model.'),
    num_worker_groups: posInt().default(2).describe('Number of expert groups of the subnet.'),
  })
  .describe('Mixture-of-experts layout.');

const ckpt = z
  .object({
    resume_from_ckpt: z.boolean().default(true).describe('Resume from the best own checkpoint at start-up.'),
    strict_sharding: z.boolean().default(false).describe('Reference field.'),
    base_checkpoint_path: path().default('.').describe('Base of the checkpoint paths below (relative to run.root_path).'),
    checkpoint_path: path().default('checkpoints').describe('Own checkpoints: globalver_<V>_inneropt_<N>/ directories.'),
    checkpoint_interval: posInt().default(20).describe('Save a checkpoint every N optimizer steps.'),
    full_validation_interval: posInt().default(20).describe('Reference field.'),
    checkpoint_topk: posInt().default(2).describe('Own checkpoints kept (never the one a task is reading).'),
    validator_checkpoint_path: path().default('validator_checkpoint').describe('Baselines downloaded from validators.'),
    final_path: path().default('final').describe('Final save written on shutdown.'),
  })
  .describe('Checkpoints. Relative paths resolve against ckpt.base_checkpoint_path.');

const sched = z
  .object({
    warmup_steps: nonNegInt().default(0).describe('Linear warm-up steps of the cosine LR schedule.'),
    total_steps: posInt().default(88000).describe('Length of the cosine LR schedule.'),
  })
  .describe('Learning-rate schedule (cosine with warm-up).');

const log = z
  .object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info').describe('Log level (env CONNITO_LOG_LEVEL wins).'),
    format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('auto = pretty on a terminal, JSON lines otherwise.'),
    log_wandb: z.boolean().default(false).describe('Reference field; Weights & Biases is not supported.'),
    wandb_project_name: z.string().default('test-moe').describe('Reference field.'),
    wandb_resume: z.boolean().default(false).describe('Reference field.'),
    wandb_full_id: z.string().default('').describe('Reference field.'),
    wandb_partial_id: z.array(z.string()).default([]).describe('Reference field.'),
    base_metric_path: path().default('metrics').describe('Directory of the metrics CSV.'),
    metric_path: path().nullable().default(null).describe('Metrics CSV; null = <base_metric_path>/<run.run_name>.csv.'),
    metric_interval: posInt().default(20).describe('Local evaluation every N optimizer steps.'),
  })
  .describe('Logs and metrics files.');

const opt = z
  .object({
    lr: z.number().positive().default(1e-5).describe('AdamW learning rate (peak of the schedule).'),
    weight_decay: z.number().nonnegative().default(0.1).describe('AdamW weight decay.'),
    beta1: z.number().min(0).lt(1).default(0.9).describe('AdamW beta1.'),
    beta2: z.number().min(0).lt(1).default(0.95).describe('AdamW beta2.'),
    eps: z.number().positive().default(1e-8).describe('AdamW epsilon.'),
    max_grad_norm: z.number().positive().default(1.0).describe('Gradient clipping norm.'),
    outer_lr: z.number().positive().default(0.7).describe('Reference field (validators only).'),
    outer_momentum: z.number().nonnegative().default(0.9).describe('Reference field (validators only).'),
  })
  .describe('Optimizer.');

const cycle = z
  .object({
    cycle_length: posInt().default(448).describe('Weight-freshness window in blocks (not the phase cycle length).'),
    distribute_period: posInt().default(20).describe('Blocks of the Distribute phase.'),
    train_period: posInt().default(300).describe('Blocks of the Train phase.'),
    commit_period: posInt().default(8).describe('Blocks of each commit phase.'),
    submission_period: posInt().default(20).describe('Blocks of the Submission phase.'),
    validate_period: posInt().default(50).describe('Blocks of the Validate phase.'),
    merge_period: posInt().default(50).describe('Blocks of the Merge phase.'),
    owner_url: z.url({ protocol: /^https?$/ }).default('https://cycle-api.connito.ai:443').describe('Owner phase service (the phase schedule).'),
    max_miners_per_validator: posInt().default(10).describe('Assignment cap per validator.'),
    version_range_cycles: posInt().default(3).describe('How many cycles back a baseline version stays acceptable.'),
    api_timeout_sec: z.number().positive().default(10).describe('Owner API request timeout.'),
    api_retries: nonNegInt().default(3).describe('Owner API retries.'),
    api_backoff_sec: z.number().positive().default(2).describe('Owner API backoff base (sleep base^attempt).'),
    block_time_sec: z.number().positive().default(12).describe('Expected block time, for wall-clock deadline estimates.'),
  })
  .describe('Phase cycle. The owner service is authoritative; these lengths are the fallback.');

const task = z
  .object({
    expert_group_name: z.string().min(1).default('exp_math').describe('Expert group this miner trains.'),
    load_all_expert_groups: z.boolean().default(false).describe('Reference field.'),
    base_path: path().default('expert_groups').describe('Directory of expert-group folders.'),
    path: path().nullable().default(null).describe('Folder of this group; null = <base_path>/<expert_group_name>.'),
  })
  .describe('Expert group.');

const dataloader = z
  .object({
    world_size: posInt().default(10).describe('Reference field; unused by the miner.'),
  })
  .describe('Reference section.');

const localPar = z
  .object({
    gradient_accumulation_steps: posInt().default(4).describe('Micro-batches per optimizer step.'),
    global_opt_interval: posInt().default(100).describe('Optimizer steps per global round (reference cadence).'),
    world_size: posInt().default(1).describe('Training processes on this machine.'),
    port: port().default(29500).describe('Rendezvous port between local training processes.'),
    ip_address: z.string().min(1).default('127.0.0.1').describe('Rendezvous address between local training processes.'),
  })
  .describe('Local training parallelism.');

const statusSection = z
  .object({
    enabled: z.boolean().default(true).describe('Serve /healthz, /status, /metrics and a status page.'),
    host: z.string().min(1).default('127.0.0.1').describe('Listen address. Keep it on loopback; put a reverse proxy in front if needed.'),
    port: z.number().int().min(0).max(65535).default(8100).describe('Listen port (0 = any free port; `status` finds it).'),
  })
  .describe('Status server of the supervisor (connito-miner).');

const restart = z
  .object({
    max_restarts: nonNegInt().default(5).describe('Give up after this many crashes within window_sec.'),
    window_sec: z.number().positive().default(600).describe('Window over which crashes are counted.'),
    backoff_initial_sec: z.number().positive().default(1).describe('Delay before the first restart.'),
    backoff_max_sec: z.number().positive().default(300).describe('Cap of the restart delay.'),
    backoff_factor: z.number().min(1).default(2).describe('Delay multiplier per consecutive crash.'),
  })
  .describe('Restart policy of the trainer child.');

const trainer = z
  .object({
    entry: path().nullable().default(null).describe('Trainer entry module; null = the bundled dist/trainer/main.js.'),
    backend: z.enum(['auto', 'cpu', 'cuda']).default('auto').describe('Training backend: auto = CUDA when available, else CPU.'),
    precision: precision().default('fp16-mixed').describe('Compute precision.'),
    threads: nonNegInt().default(0).describe('CPU threads of the engine; 0 = all cores.'),
    recompute: z.boolean().default(false).describe('Recompute each layer\'s activations in backward (gradient checkpointing): less memory, about a third more time.'),
    heartbeat_interval_sec: z.number().positive().default(5).describe('Trainer heartbeat period.'),
    heartbeat_timeout_sec: z.number().positive().default(60).describe('No heartbeat for this long = trainer unhealthy (no systemd watchdog ping).'),
    stop_timeout_sec: z.number().positive().default(240).describe('Budget of the final save on shutdown before SIGKILL.'),
    restart: restart.prefault({}),
  })
  .describe('The trainer child process (connito-miner).');

const supervisor = z
  .object({
    shutdown_timeout_sec: z.number().positive().default(300).describe('Whole shutdown budget; past it everything is killed and the exit is non-zero.'),
    task_stop_timeout_sec: z.number().positive().default(30).describe('How long running phase tasks get to finish after cancellation.'),
    pool_min_threads: posInt().default(1).describe('Warm worker threads of the task pool.'),
    pool_max_threads: posInt().default(2).describe('Maximum worker threads of the task pool.'),
  })
  .describe('Supervisor (connito-miner).');

const sourceCommon = {
  path: path().describe('File or directory (directories: every matching file inside, sorted).'),
  weight: z.number().positive().default(1).describe('Mixing weight (normalised over all sources).'),
};
const textColumn = () => z.string().min(1).default('text');
const dataSource = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), ...sourceCommon }),
  z.object({ type: z.literal('jsonl'), ...sourceCommon, text_column: textColumn() }),
  z.object({ type: z.literal('parquet'), ...sourceCommon, text_column: textColumn() }),
  z.object({ type: z.literal('synthetic'), weight: sourceCommon.weight, seed: nonNegInt().default(0) }),
]);

const data = z
  .object({
    sources: z
      .array(dataSource)
      .default([])
      .describe(
        'Training text. Each entry: {type: text|jsonl|parquet, path, weight, text_column (jsonl/parquet, default "text")} or {type: synthetic, weight, seed}. Example:\n  sources:\n    - { type: jsonl, path: /data/math.jsonl, text_column: text, weight: 0.5 }\n    - { type: parquet, path: /data/c4/, weight: 0.5 }',
      ),
    tokenizer_path: path().nullable().default(null).describe('tokenizer.json; null = <model.base_path>/tokenizer.json, else a byte-level tokenizer.'),
    sequence_length: posInt().default(4096).describe('Tokens per sequence (padded/truncated).'),
    batch_size: posInt().default(4).describe('Reference DataCfg.batch_size (used in the sample counters).'),
    per_device_train_batch_size: posInt().default(1).describe('Sequences per micro-batch.'),
    rank: nonNegInt().default(0).describe('Shard of the data this miner reads (0-based).'),
    world_size: posInt().default(1).describe('Number of shards the data is split into.'),
    seed: nonNegInt().default(42).describe('Seed of the source mixing.'),
  })
  .describe('Training data (connito-miner).');

const devnet = z
  .object({
    enabled: z.boolean().default(false).describe('This run directory belongs to a local rehearsal subnet (locked-field changes are expected).'),
    block_time_ms: posInt().default(1000).describe('Block time of the local chain node.'),
    validators: posInt().default(1).describe('Validators of the local subnet.'),
    miners: posInt().default(1).describe('Miners of the local subnet.'),
    cycles: nonNegInt().default(1).describe('Cycles to run; 0 = until stopped.'),
  })
  .describe('Local subnet (connito-miner devnet).');

const sections = {
  run: run.prefault({}),
  chain: chain.prefault({}),
  model: model.prefault({}),
  moe: moe.prefault({}),
  ckpt: ckpt.prefault({}),
  sched: sched.prefault({}),
  log: log.prefault({}),
  opt: opt.prefault({}),
  cycle: cycle.prefault({}),
  task: task.prefault({}),
  dataloader: dataloader.prefault({}),
  role: z.literal('miner').default('miner').describe('Role of this node.'),
  local_par: localPar.prefault({}),
  status: statusSection.prefault({}),
  trainer: trainer.prefault({}),
  supervisor: supervisor.prefault({}),
  data: data.prefault({}),
  devnet: devnet.prefault({}),
};

/** The schema before derived fields are filled in (what config.yaml may contain). */
export const RawConfigSchema = z.object(sections).superRefine((c, ctx) => {
  if (c.data.rank >= c.data.world_size) {
    ctx.addIssue({ code: 'custom', path: ['data', 'rank'], message: `an integer below data.world_size (${c.data.world_size})`, input: c.data.rank });
  }
  if (c.trainer.restart.backoff_max_sec < c.trainer.restart.backoff_initial_sec) {
    ctx.addIssue({
      code: 'custom',
      path: ['trainer', 'restart', 'backoff_max_sec'],
      message: `a number >= trainer.restart.backoff_initial_sec (${c.trainer.restart.backoff_initial_sec})`,
      input: c.trainer.restart.backoff_max_sec,
    });
  }
  if (c.supervisor.pool_max_threads < c.supervisor.pool_min_threads) {
    ctx.addIssue({
      code: 'custom',
      path: ['supervisor', 'pool_max_threads'],
      message: `an integer >= supervisor.pool_min_threads (${c.supervisor.pool_min_threads})`,
      input: c.supervisor.pool_max_threads,
    });
  }
});

/** The schema with derived fields filled in (relative paths are resolved later, by loadConfig). */
export const ConfigSchema = RawConfigSchema.transform((c) => ({
  ...c,
  log: { ...c.log, metric_path: c.log.metric_path ?? `${c.log.base_metric_path}/${c.run.run_name}.csv` },
  task: { ...c.task, path: c.task.path ?? `${c.task.base_path}/${c.task.expert_group_name}` },
}));

/** The whole miner configuration, as every process of the tree reads it. */
export type MinerConfig = z.output<typeof ConfigSchema>;
export type DataSource = MinerConfig['data']['sources'][number];
/** What config.yaml may contain (every field optional; defaults fill the rest). */
export type MinerConfigInput = z.input<typeof RawConfigSchema>;

/** Section order of config.yaml (the reference's, then ours). */
export const SECTION_ORDER = Object.keys(sections) as (keyof typeof sections)[];

/**
 * Fields the subnet fixes (PROTOCOL.md §10.5): changing one makes this miner incompatible with
 * the live subnet's validators. A change is reported, not refused — a local subnet needs them.
 */
export const LOCKED_FIELDS: readonly string[] = [
  'chain.netuid',
  'chain.network',
  'model.model_path',
  'model.base_arch_model',
  'moe.num_experts',
  'moe.num_experts_per_tok',
  'moe.partial_topk',
  'moe.full_topk',
  'moe.num_worker_groups',
  'sched.total_steps',
  'cycle.cycle_length',
  'cycle.distribute_period',
  'cycle.train_period',
  'cycle.commit_period',
  'cycle.submission_period',
  'cycle.validate_period',
  'cycle.merge_period',
  'cycle.owner_url',
  'cycle.max_miners_per_validator',
];

/** Path fields, resolved to absolute paths by loadConfig (dotted path → what it is relative to). */
export const PATH_FIELDS: ReadonlyArray<readonly [field: string, relativeTo: 'root' | 'ckpt_base']> = [
  ['ckpt.base_checkpoint_path', 'root'],
  ['ckpt.checkpoint_path', 'ckpt_base'],
  ['ckpt.validator_checkpoint_path', 'ckpt_base'],
  ['ckpt.final_path', 'ckpt_base'],
  ['log.base_metric_path', 'root'],
  ['log.metric_path', 'root'],
  ['task.base_path', 'root'],
  ['task.path', 'root'],
  ['model.base_path', 'root'],
  ['data.tokenizer_path', 'root'],
  ['chain.wallet_path', 'root'],
  ['trainer.entry', 'root'],
];
