import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  createConfigFile,
  defaultConfig,
  defaultRawConfig,
  LOCKED_FIELDS,
  loadConfig,
  parseConfig,
  renderDefaultConfig,
  resolveNetworkUrl,
  resolveRunDir,
  SECTION_ORDER,
  writeConfig,
} from '../../src/config/index.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'cnm-config-'));
const loc = { runDir: '/srv/miner', configFile: '/srv/miner/config.yaml' };

function issuesOf(fn: () => unknown): { field: string; expected: string; received?: string }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CNM_ERR_CONFIG_INVALID');
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected a ConfigError');
}

function leafPaths(obj: unknown, prefix: string[] = []): string[][] {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return [prefix];
  return Object.entries(obj).flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
}

describe('defaults (PROTOCOL.md §10.4)', () => {
  it('carries the reference defaults and locked values', () => {
    const c = defaultConfig();
    expect(c.chain.netuid).toBe(102);
    expect(c.chain.network).toBe('archive');
    expect(c.model.model_path).toBe('deepseek-ai/DeepSeek-V2-Lite');
    expect([c.moe.num_experts, c.moe.num_experts_per_tok, c.moe.partial_topk, c.moe.full_topk, c.moe.num_worker_groups]).toEqual([8, 2, 1, 2, 2]);
    expect([c.cycle.cycle_length, c.cycle.distribute_period, c.cycle.train_period, c.cycle.commit_period, c.cycle.submission_period, c.cycle.validate_period, c.cycle.merge_period]).toEqual([
      448, 20, 300, 8, 20, 50, 50,
    ]);
    expect(c.cycle.owner_url).toBe('https://cycle-api.connito.ai:443');
    expect([c.cycle.max_miners_per_validator, c.cycle.version_range_cycles, c.cycle.api_timeout_sec, c.cycle.api_retries, c.cycle.api_backoff_sec]).toEqual([10, 3, 10, 3, 2]);
    expect([c.sched.warmup_steps, c.sched.total_steps]).toEqual([0, 88000]);
    expect([c.opt.lr, c.opt.outer_lr, c.opt.outer_momentum]).toEqual([1e-5, 0.7, 0.9]);
    expect([c.ckpt.checkpoint_interval, c.ckpt.checkpoint_topk, c.log.metric_interval]).toEqual([20, 2, 20]);
    expect(c.local_par).toEqual({ gradient_accumulation_steps: 4, global_opt_interval: 100, world_size: 1, port: 29500, ip_address: '127.0.0.1' });
    expect(c.task.expert_group_name).toBe('exp_math');
    expect(c.role).toBe('miner');
    expect(c.status).toEqual({ enabled: true, host: '127.0.0.1', port: 8100 });
    expect(c.chain.wallet_path).toBe('~/.bittensor/wallets');
    expect(c.trainer.backend).toBe('auto');
    // derived fields
    expect(c.log.metric_path).toBe('metrics/foundation.csv');
    expect(c.task.path).toBe('expert_groups/exp_math');
  });

  it('renders every default with a comment, in the reference section order, and reads back equal', () => {
    const text = renderDefaultConfig();
    expect(parseYaml(text)).toEqual(defaultRawConfig());
    expect(parseConfig(parseYaml(text), loc).config).toEqual(parseConfig({}, loc).config);
    const topKeys = text.split('\n').filter((l) => /^[a-z_]+:/.test(l)).map((l) => l.split(':')[0]);
    expect(topKeys).toEqual([...SECTION_ORDER]);
    expect(topKeys.slice(0, 13)).toEqual(['run', 'chain', 'model', 'moe', 'ckpt', 'sched', 'log', 'opt', 'cycle', 'task', 'dataloader', 'role', 'local_par']);
    // Each field line is preceded by a comment line (its description).
    const lines = text.split('\n');
    for (const path of leafPaths(defaultRawConfig())) {
      const key = path[path.length - 1]!;
      const indent = '  '.repeat(path.length - 1);
      const sectionAt = lines.findIndex((l) => l.startsWith(`${path[0]}:`));
      const idx = path.length === 1 ? sectionAt : lines.findIndex((l, i) => i > sectionAt && l.startsWith(`${indent}${key}:`));
      expect(idx, `field ${path.join('.')} missing from the rendered YAML`).toBeGreaterThan(0);
      expect(lines[idx - 1]!.trim().startsWith('#'), `field ${path.join('.')} has no comment`).toBe(true);
    }
    for (const f of LOCKED_FIELDS) {
      const [section, key] = f.split('.');
      const sectionAt = lines.indexOf(`${section}:`);
      const idx = lines.findIndex((l, i) => i > sectionAt && l.startsWith(`  ${key}:`));
      expect(lines[idx - 1], `${f} not marked locked`).toMatch(/LOCKED/);
    }
  });
});

describe('validation errors name file, field and expected value', () => {
  it('wrong types, unknown network, negative and zero lengths', () => {
    const issues = issuesOf(() =>
      parseConfig(
        {
          chain: { netuid: 'one hundred two', network: 'mainnet' },
          cycle: { train_period: -3, commit_period: 0 },
          data: { sequence_length: -1, sources: [{ type: 'csv', path: 'x' }] },
          trainer: { backend: 'tpu' },
          status: { port: 70000 },
        },
        loc,
      ),
    );
    const by = Object.fromEntries(issues.map((i) => [i.field, i]));
    expect(by['chain.netuid']).toMatchObject({ expected: 'a number', received: '"one hundred two"' });
    expect(by['chain.network']!.expected).toMatch(/finney \| archive \| test \| local.*ws:\/\//);
    expect(by['chain.network']!.received).toBe('"mainnet"');
    expect(by['cycle.train_period']).toMatchObject({ expected: 'a number > 0', received: '-3' });
    expect(by['cycle.commit_period']).toMatchObject({ expected: 'a number > 0', received: '0' });
    expect(by['data.sequence_length']).toMatchObject({ received: '-1' });
    expect(by['data.sources.0.type']!.expected).toMatch(/"text" \| "jsonl" \| "parquet"/);
    expect(by['trainer.backend']!.expected).toBe('one of "auto" | "cpu" | "cuda"');
    expect(by['status.port']!.expected).toBe('a number <= 65535');
  });

  it('the message names the file and every field', () => {
    try {
      parseConfig({ chain: { netuid: -1 } }, loc);
      throw new Error('unreachable');
    } catch (err) {
      expect((err as Error).message).toContain('/srv/miner/config.yaml');
      expect((err as Error).message).toContain('chain.netuid: expected a number >= 0 (got -1)');
    }
  });

  it('cross-field rules', () => {
    const issues = issuesOf(() => parseConfig({ data: { rank: 3, world_size: 2 }, supervisor: { pool_min_threads: 3, pool_max_threads: 2 } }, loc));
    expect(issues.map((i) => i.field).sort()).toEqual(['data.rank', 'supervisor.pool_max_threads']);
  });

  it('a section that is not a mapping, and a top level that is not a mapping', () => {
    expect(issuesOf(() => parseConfig({ chain: 'finney' }, loc))[0]).toMatchObject({ field: 'chain', received: '"finney"' });
    expect(issuesOf(() => parseConfig(['a'], loc))[0]).toMatchObject({ field: '(top level)', received: 'a list' });
  });

  it('network names resolve to endpoints; URLs pass through', () => {
    expect(resolveNetworkUrl('finney')).toBe('wss://entrypoint-finney.opentensor.ai:443');
    expect(resolveNetworkUrl('ws://127.0.0.1:9944')).toBe('ws://127.0.0.1:9944');
    expect(() => resolveNetworkUrl('mainnet')).toThrow(/unknown network "mainnet"/);
    expect(parseConfig({ chain: { network: 'wss://node.example:443/rpc' } }, loc).config.chain.network).toBe('wss://node.example:443/rpc');
  });
});

describe('warnings', () => {
  it('names unknown keys, at any depth, including inside data sources', () => {
    const { warnings } = parseConfig({ chian: {}, chain: { hotkey: 'x' }, data: { sources: [{ type: 'jsonl', path: 'a.jsonl', colum: 'text' }] } }, loc);
    expect(warnings.filter((w) => w.kind === 'unknown_key').map((w) => w.field)).toEqual(['chian', 'chain.hotkey', 'data.sources.0.colum']);
  });

  it('reports changed locked fields, except in a devnet run directory', () => {
    const changed = { chain: { network: 'local' }, cycle: { train_period: 30 } };
    const { warnings } = parseConfig(changed, loc);
    expect(warnings.filter((w) => w.kind === 'locked_changed').map((w) => w.field)).toEqual(['chain.network', 'cycle.train_period']);
    expect(warnings[0]!.message).toMatch(/"local", not the subnet's "archive"/);
    expect(parseConfig({ ...changed, devnet: { enabled: true } }, loc).warnings).toEqual([]);
    expect(parseConfig({}, loc).warnings).toEqual([]);
  });
});

describe('paths', () => {
  it('--path may be the directory or the config file', () => {
    expect(resolveRunDir('/srv/miner')).toEqual(loc);
    expect(resolveRunDir('/srv/miner/config.yaml')).toEqual(loc);
    expect(resolveRunDir('/srv/miner/other.yml')).toEqual({ runDir: '/srv/miner', configFile: '/srv/miner/other.yml' });
  });

  it('relative paths resolve against the run directory; ~ expands; absolute paths stay', () => {
    const { config } = parseConfig(
      { ckpt: { base_checkpoint_path: 'ck' }, model: { base_path: '/models/dsv2' }, data: { sources: [{ type: 'text', path: 'corpus/' }, { type: 'synthetic' }] } },
      loc,
    );
    expect(config.run.root_path).toBe('/srv/miner');
    expect(config.ckpt.checkpoint_path).toBe('/srv/miner/ck/checkpoints');
    expect(config.ckpt.validator_checkpoint_path).toBe('/srv/miner/ck/validator_checkpoint');
    expect(config.ckpt.final_path).toBe('/srv/miner/ck/final');
    expect(config.log.metric_path).toBe('/srv/miner/metrics/foundation.csv');
    expect(config.task.path).toBe('/srv/miner/expert_groups/exp_math');
    expect(config.model.base_path).toBe('/models/dsv2');
    expect(config.chain.wallet_path).toBe(join(homedir(), '.bittensor/wallets'));
    expect(config.data.sources[0]).toMatchObject({ type: 'text', path: '/srv/miner/corpus', weight: 1 });
    expect(config.data.sources[1]).toEqual({ type: 'synthetic', weight: 1, seed: 0 });
    expect(config.trainer.entry).toBeNull();
  });
});

describe('files', () => {
  it('loads a reference-style config.yaml (as shared/config.py writes it) and accepts both --path forms', async () => {
    const dir = tmp();
    // The shape `MinerConfig.write()` produces at cbf3c65: absolute paths, every section.
    writeFileSync(
      join(dir, 'config.yaml'),
      `run:\n  run_name: foundation\n  root_path: /home/op/connito\nchain:\n  netuid: 102\n  uid: 17\n  hotkey_ss58: 5Fhot\n  coldkey_ss58: 5Fcold\n  ip: 0.0.0.0\n  port: 8000\n  coldkey_name: ck\n  hotkey_name: hk\n  network: archive\n` +
        `model:\n  model_path: deepseek-ai/DeepSeek-V2-Lite\n  base_arch_model: deepseek-ai/DeepSeek-V2-Lite\n  foundation: true\n  torch_compile: false\n  attn_implementation: sdpa\n  precision: fp16-mixed\n  device: cuda\n` +
        `ckpt:\n  resume_from_ckpt: true\n  strict_sharding: false\n  base_checkpoint_path: /home/op/connito/checkpoints/miner\n  checkpoint_path: /home/op/connito/checkpoints/miner/ck/hk/foundation\n  checkpoint_interval: 20\n  full_validation_interval: 20\n  checkpoint_topk: 2\n  validator_checkpoint_path: /home/op/connito/checkpoints/miner/validator_checkpoint\n` +
        `sched:\n  warmup_steps: 0\n  total_steps: 88000\nlog:\n  log_wandb: false\n  wandb_project_name: test-moe\n  wandb_resume: false\n  wandb_full_id: ''\n  wandb_partial_id: []\n  base_metric_path: /home/op/connito/metrics\n  metric_path: /home/op/connito/metrics/foundation.csv\n  metric_interval: 20\n` +
        `opt:\n  lr: 1.0e-05\n  outer_lr: 0.7\n  outer_momentum: 0.9\ncycle:\n  cycle_length: 448\n  distribute_period: 20\n  train_period: 300\n  commit_period: 8\n  submission_period: 20\n  validate_period: 50\n  merge_period: 50\n  owner_url: https://cycle-api.connito.ai:443\n  max_miners_per_validator: 10\n  version_range_cycles: 3\n  api_timeout_sec: 10\n  api_retries: 3\n  api_backoff_sec: 2\n` +
        `task:\n  expert_group_name: exp_math\n  load_all_expert_groups: false\n  base_path: /home/op/connito/expert_groups\n  path: /home/op/connito/expert_groups/exp_math\ndataloader:\n  world_size: 10\nrole: miner\nlocal_par:\n  gradient_accumulation_steps: 4\n  global_opt_interval: 100\n  world_size: 1\n  port: 29500\n  ip_address: 127.0.0.1\n`,
    );
    const a = await loadConfig(dir);
    const b = await loadConfig(join(dir, 'config.yaml'));
    expect(a).toEqual(b);
    expect(a.warnings).toEqual([]);
    expect(a.config.chain).toMatchObject({ uid: 17, coldkey_name: 'ck', hotkey_name: 'hk' });
    expect(a.config.opt.lr).toBe(1e-5);
    expect(a.config.ckpt.checkpoint_path).toBe('/home/op/connito/checkpoints/miner/ck/hk/foundation');
  });

  it('a missing file says which command creates it; bad YAML says where', async () => {
    const dir = tmp();
    await expect(loadConfig(dir)).rejects.toMatchObject({ code: 'CNM_ERR_CONFIG_NOT_FOUND', message: expect.stringContaining(`connito-miner init --path ${dir}`) });
    writeFileSync(join(dir, 'config.yaml'), 'chain:\n  netuid: 102\n   network: [unclosed\n');
    await expect(loadConfig(dir)).rejects.toMatchObject({ code: 'CNM_ERR_CONFIG_PARSE', message: expect.stringMatching(/config\.yaml: not valid YAML at line \d+, column \d+/) });
    writeFileSync(join(dir, 'config.yaml'), 'chain:\n  netuid: 102\nchain:\n  netuid: 3\n');
    await expect(loadConfig(dir)).rejects.toMatchObject({ code: 'CNM_ERR_CONFIG_PARSE' });
  });

  it('createConfigFile refuses to overwrite unless forced', async () => {
    const dir = tmp();
    await createConfigFile(dir, { chain: { coldkey_name: 'ck' } });
    const before = readFileSync(join(dir, 'config.yaml'), 'utf8');
    await expect(createConfigFile(dir, { chain: { coldkey_name: 'other' } })).rejects.toMatchObject({ code: 'CNM_ERR_CONFIG_EXISTS' });
    expect(readFileSync(join(dir, 'config.yaml'), 'utf8')).toBe(before);
    const forced = await createConfigFile(dir, { chain: { coldkey_name: 'other' } }, { force: true });
    expect(forced.config.chain.coldkey_name).toBe('other');
  });

  it('writeConfig keeps comments and order, changes only what it is given, and refuses invalid values', async () => {
    const dir = tmp();
    const file = join(dir, 'config.yaml');
    writeFileSync(file, '# my miner\nchain:\n  coldkey_name: ck # the wallet\n  # keep me\n  hotkey_name: hk\nstatus:\n  port: 8100\n');
    const out = await writeConfig(dir, { chain: { uid: 42, hotkey_ss58: '5Fabc' }, status: { port: 8200 } });
    expect(out.config.chain.uid).toBe(42);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# my miner');
    expect(text).toContain('coldkey_name: ck # the wallet');
    expect(text).toContain('# keep me\n  hotkey_name: hk');
    expect(text).toContain('port: 8200');
    expect(text.indexOf('coldkey_name')).toBeLessThan(text.indexOf('uid: 42'));
    await expect(writeConfig(dir, { status: { port: -5 } })).rejects.toMatchObject({ code: 'CNM_ERR_CONFIG_INVALID' });
    expect(readFileSync(file, 'utf8')).toBe(text);
  });
});
