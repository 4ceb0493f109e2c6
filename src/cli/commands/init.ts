// connito-miner init --path DIR: write DIR/config.yaml with every default spelled out.
import { ConfigError, createConfigFile, formatIssue, type ConfigPatch } from '../../config/index.js';
import { fail, numberOption, parseCommandArgs } from '../args.js';

export const usage = `Usage: connito-miner init --path DIR [options]

Write DIR/config.yaml with every field, its default and a comment. Refuses to replace an
existing file unless --force. Never prompts.

Options:
  --path DIR           run directory (or the config.yaml path inside it)       (required)
  --wallet NAME        wallet (coldkey) name              -> chain.coldkey_name
  --hotkey NAME        hotkey name                        -> chain.hotkey_name
  --wallet-path DIR    directory of Bittensor wallets     -> chain.wallet_path (default ~/.bittensor/wallets)
  --netuid N           subnet id                          -> chain.netuid (default 102, locked)
  --network NAME|URL   finney | archive | test | local | ws(s)://...  -> chain.network (default archive, locked)
  --run-name NAME      run name                           -> run.run_name
  --status-port N      status server port                 -> status.port (default 8100)
  --force              replace an existing config.yaml
  -h, --help           show this help
`;

const options = {
  path: { type: 'string' },
  wallet: { type: 'string' },
  hotkey: { type: 'string' },
  'wallet-path': { type: 'string' },
  netuid: { type: 'string' },
  network: { type: 'string' },
  'run-name': { type: 'string' },
  'status-port': { type: 'string' },
  force: { type: 'boolean' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs(argv, options, usage);
  if (typeof v === 'number') return v;
  if (v.path === undefined) return fail('init', `--path is required\n\n${usage}`, 2);
  const patch = {
    run: { run_name: v['run-name'] },
    chain: { coldkey_name: v.wallet, hotkey_name: v.hotkey, wallet_path: v['wallet-path'], netuid: numberOption(v.netuid), network: v.network },
    status: { port: numberOption(v['status-port']) },
  } as ConfigPatch;
  try {
    const loaded = await createConfigFile(v.path, patch, { force: v.force === true });
    for (const w of loaded.warnings) process.stderr.write(`warning: ${w.message}\n`);
    const c = loaded.config.chain;
    process.stdout.write(
      `wrote ${loaded.configFile}\n` +
        `  wallet ${c.coldkey_name}, hotkey ${c.hotkey_name} (${c.wallet_path}), network ${c.network}, netuid ${c.netuid}\n` +
        `next: review the file (data.sources, model.base_path), then \`connito-miner start --path ${loaded.runDir}\`\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      if (err.code === 'CNM_ERR_CONFIG_INVALID') {
        return fail('init', `invalid option value:\n${err.issues.map((i) => `  - ${formatIssue(i)}`).join('\n')}`, 2);
      }
      return fail('init', err.message, err.code === 'CNM_ERR_CONFIG_EXISTS' ? 1 : 2);
    }
    throw err;
  }
}
