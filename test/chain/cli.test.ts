// `connito-miner devnet-chain` and `connito-miner wallet` as operators run them: real processes from dist/.
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChainClient } from '../../src/chain/index.js';
import { FIXTURE_WALLETS } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'connito-miner.js');
const HOTKEY = '5G1cC14dQ98GYctcygAewqKP112QBYnqNeGuRR16hHurPqyy';
const tmp = mkdtempSync(join(tmpdir(), 'cnm-chain-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, CONNITO_LOG_FORMAT: 'json', ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => res({ code, stdout, stderr }));
  });
}

function wallets(): string {
  const dir = mkdtempSync(join(tmp, 'w-'));
  cpSync(FIXTURE_WALLETS, dir, { recursive: true });
  chmodSync(join(dir, 'testcold/hotkeys/testhot'), 0o600);
  return dir;
}

describe('connito-miner devnet-chain', () => {
  it('prints its URL first, serves the chain to the production client, and exits 0 on SIGTERM', async () => {
    const genesis = join(tmp, 'genesis.json');
    writeFileSync(genesis, JSON.stringify({ neurons: [{ hotkey: HOTKEY, validatorPermit: true }, { hotkey: '//Bob' }] }));
    const p = spawn(process.execPath, [BIN, 'devnet-chain', '--port', '0', '--block-ms', '100', '--genesis', genesis], {
      env: { ...process.env, CONNITO_LOG_FORMAT: 'json' },
    });
    const exited = new Promise<number | null>((r) => p.on('close', r));
    const url = await new Promise<string>((res, rej) => {
      let out = '';
      p.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const first = out.split('\n')[0]!;
        if (out.includes('\n')) res(first);
      });
      setTimeout(() => rej(new Error(`no URL printed: ${out}`)), 20_000);
    });
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    const c = await ChainClient.connect({ url });
    try {
      const mg = await c.metagraph();
      expect(mg.neurons.map((n) => n.hotkey)[0]).toBe(HOTKEY);
      const b0 = await c.currentBlock();
      await new Promise((r) => setTimeout(r, 400));
      expect(await c.currentBlock()).toBeGreaterThan(b0);
    } finally {
      await c.close();
    }
    p.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('a bad genesis is a usage error naming the field (exit 2); --print-genesis prints the default', async () => {
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ neurons: [{ hotkey: '//Alice', stake: 'lots' }] }));
    const r = await runCli(['devnet-chain', '--port', '0', '--genesis', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/neurons\.0\.stake/);
    const p = await runCli(['devnet-chain', '--print-genesis']);
    expect(p.code).toBe(0);
    expect(JSON.parse(p.stdout)).toMatchObject({ netuid: 102, neurons: [{ hotkey: '//Alice' }, { hotkey: '//Bob' }, { hotkey: '//Charlie' }] });
    expect((await runCli(['devnet-chain', '--block-ms', 'fast'])).code).toBe(2);
  });
});

describe('connito-miner wallet', () => {
  it('shows the addresses from flags, and from a run directory config.yaml', async () => {
    const dir = wallets();
    const r = await runCli(['wallet', '--wallet-path', dir, '--wallet', 'testcold', '--hotkey', 'testhot']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`hotkey   testhot  ${HOTKEY}`);
    expect(r.stdout).toContain(`coldkey  ${HOTKEY}`);
    expect(r.stdout).not.toContain('warning');

    const run = join(tmp, 'run');
    const init = await runCli(['init', '--path', run, '--wallet', 'testcold', '--hotkey', 'testhot', '--wallet-path', dir]);
    expect(init.code, init.stderr).toBe(0);
    const j = await runCli(['wallet', '--path', run, '--json']);
    expect(j.code, j.stderr).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ name: 'testcold', hotkeyName: 'testhot', hotkey: HOTKEY, coldkey: HOTKEY, warnings: [] });
    // Nothing secret is printed.
    expect(j.stdout + r.stdout).not.toMatch(/secret|privateKey|0x7fcd17/);
  });

  it('a missing wallet exits 2 with the btcli command; a world-readable hotkey warns', async () => {
    const dir = wallets();
    const r = await runCli(['wallet', '--wallet-path', dir, '--wallet', 'nope', '--hotkey', 'testhot']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('btcli wallet create --wallet.name nope --wallet.hotkey testhot');
    chmodSync(join(dir, 'testcold/hotkeys/testhot'), 0o644);
    const w = await runCli(['wallet', '--wallet-path', dir, '--wallet', 'testcold', '--hotkey', 'testhot']);
    expect(w.code).toBe(0);
    expect(w.stdout).toMatch(/warning: .*chmod 600/);
  });
});
