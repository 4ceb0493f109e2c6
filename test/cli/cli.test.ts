// The CLI as operators run it: bin/connito-miner.js → dist, real processes, exit codes and messages.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupRunDirs, makeRunDir, ROOT, runCli } from '../supervisor/helpers.js';

afterAll(cleanupRunDirs);

const tmp = (): string => mkdtempSync(join(tmpdir(), 'cnm-cli-'));

describe('connito-miner', () => {
  it('--help lists the commands; every command has --help; unknown options are usage errors', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const c of ['init', 'start', 'stop', 'status', 'systemd']) expect(help.stdout).toMatch(new RegExp(`connito-miner ${c} `));
    for (const c of ['init', 'start', 'stop', 'status', 'systemd']) {
      const r = await runCli([c, '--help']);
      expect(r.code, c).toBe(0);
      expect(r.stdout).toContain(`Usage: connito-miner ${c}`);
    }
    const bad = await runCli(['stop', '--frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Unknown option '--frobnicate'/);
    expect((await runCli(['start'])).code).toBe(2);
  });
});

describe('init', () => {
  it('writes a commented config with the given wallet, refuses to overwrite, --force replaces', async () => {
    const dir = join(tmp(), 'run');
    const r = await runCli(['init', '--path', dir, '--wallet', 'ck', '--hotkey', 'hk', '--netuid', '102', '--status-port', '8123']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`wrote ${join(dir, 'config.yaml')}`);
    const text = readFileSync(join(dir, 'config.yaml'), 'utf8');
    expect(text).toMatch(/^# connito-miner configuration/);
    const y = parseYaml(text) as { chain: Record<string, unknown>; status: Record<string, unknown> };
    expect(y.chain).toMatchObject({ coldkey_name: 'ck', hotkey_name: 'hk', netuid: 102, network: 'archive' });
    expect(y.status['port']).toBe(8123);

    const again = await runCli(['init', '--path', dir, '--wallet', 'other']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${join(dir, 'config.yaml')} already exists; not overwriting it`);
    expect(readFileSync(join(dir, 'config.yaml'), 'utf8')).toBe(text);

    const forced = await runCli(['init', '--path', join(dir, 'config.yaml'), '--wallet', 'other', '--force']);
    expect(forced.code).toBe(0);
    expect((parseYaml(readFileSync(join(dir, 'config.yaml'), 'utf8')) as { chain: { coldkey_name: string } }).chain.coldkey_name).toBe('other');
  });

  it('bad option values exit 2 naming the field; nothing is written', async () => {
    const dir = join(tmp(), 'run');
    const r = await runCli(['init', '--path', dir, '--netuid', 'abc', '--network', 'mainnet']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('chain.netuid: expected a number (got "abc")');
    expect(r.stderr).toMatch(/chain\.network: expected a known network .* \(got "mainnet"\)/);
    expect(existsSync(join(dir, 'config.yaml'))).toBe(false);
  });

  it('a locked field changed from the command line is reported', async () => {
    const r = await runCli(['init', '--path', tmp(), '--network', 'ws://127.0.0.1:9944']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning: locked field chain.network is "ws://127.0.0.1:9944"');
  });
});

describe('start validates before it starts anything', () => {
  async function startWith(edit: (text: string) => string): Promise<{ code: number | null; stderr: string; dir: string }> {
    const dir = await makeRunDir();
    const file = join(dir, 'config.yaml');
    writeFileSync(file, edit(readFileSync(file, 'utf8')));
    const r = await runCli(['start', '--path', dir]);
    expect(existsSync(join(dir, 'miner.pid'))).toBe(false);
    return { ...r, dir };
  }

  it('wrong type → exit 2 naming file and field', async () => {
    const r = await startWith((t) => t.replace('netuid: 102', 'netuid: "one hundred two"'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`invalid config ${join(r.dir, 'config.yaml')}`);
    expect(r.stderr).toContain('chain.netuid: expected a number (got "one hundred two")');
  });

  it('unknown network → exit 2 naming the field', async () => {
    const r = await startWith((t) => t.replace('network: archive', 'network: mainnet'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/chain\.network: expected a known network \(finney \| archive \| test \| local\) or a ws:\/\/ \/ wss:\/\/ URL \(got "mainnet"\)/);
  });

  it('negative lengths → exit 2 naming each field', async () => {
    const r = await startWith((t) => t.replace('train_period: 300', 'train_period: -300').replace('sequence_length: 4096', 'sequence_length: -1'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cycle.train_period: expected a number > 0 (got -300)');
    expect(r.stderr).toContain('data.sequence_length: expected a number > 0 (got -1)');
  });

  it('no config → exit 2 saying which command creates it', async () => {
    const dir = tmp();
    const r = await runCli(['start', '--path', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`no config at ${join(dir, 'config.yaml')}: create one with \`connito-miner init --path ${dir}\``);
  });

  it('missing hotkey → exit 2 naming the path and the btcli command', async () => {
    const r = await startWith((t) => t.replace('hotkey_name: testhot', 'hotkey_name: nosuchhot'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(join(r.dir, 'wallets', 'testcold', 'hotkeys', 'nosuchhot'));
    expect(r.stderr).toContain('btcli wallet new-hotkey --wallet.name testcold --wallet.hotkey nosuchhot');
  });

  it('missing trainer entry → exit 2 naming trainer.entry', async () => {
    const r = await startWith((t) => t.replace(/entry: .*fake-trainer\.mjs/, 'entry: /nonexistent/trainer.js'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('trainer entry /nonexistent/trainer.js not found: fix trainer.entry in');
  });
});

describe('systemd', () => {
  it('prints a unit with every directive the miner relies on', async () => {
    const dir = await makeRunDir();
    const r = await runCli(['systemd', '--path', dir]);
    expect(r.code).toBe(0);
    const unit = r.stdout;
    for (const d of [
      'Type=notify',
      'NotifyAccess=main',
      'KillMode=mixed',
      'KillSignal=SIGTERM',
      'TimeoutStopSec=100', // supervisor.shutdown_timeout_sec (40) + 60
      'Restart=on-failure',
      'RestartSec=30',
      'StartLimitIntervalSec=1800',
      'StartLimitBurst=5',
      'WatchdogSec=60',
      'OOMPolicy=continue',
    ]) {
      expect(unit).toMatch(new RegExp(`^${d}$`, 'm'));
    }
    expect(unit).toContain(`ExecStart=${process.execPath} ${join(ROOT, 'bin', 'connito-miner.js')} start --path ${dir}\n`);
    expect(unit).toMatch(/^\[Unit\]$[\s\S]*^\[Service\]$[\s\S]*^\[Install\]$/m);
  });

  it('--install --user writes the unit and refuses to overwrite it without --force', async () => {
    const dir = await makeRunDir();
    const xdg = tmp();
    const r = await runCli(['systemd', '--path', dir, '--user', '--install', '--name', 'cm-test'], { XDG_CONFIG_HOME: xdg });
    expect(r.code).toBe(0);
    const file = join(xdg, 'systemd', 'user', 'cm-test.service');
    expect(readFileSync(file, 'utf8')).toContain('WantedBy=default.target');
    expect(r.stdout).toContain('systemctl --user enable --now cm-test');
    const again = await runCli(['systemd', '--path', dir, '--user', '--install', '--name', 'cm-test'], { XDG_CONFIG_HOME: xdg });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists');
  });
});
