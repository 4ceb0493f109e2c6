// connito-miner wallet: which coldkey/hotkey the miner signs with, read from the Bittensor wallet on disk.
import { isChainError, loadWallet, type WalletSpec } from '../../chain/index.js';
import { fail, parseCommandArgs } from '../args.js';
import { loadConfigOrFail } from '../load-config.js';

export const usage = `Usage: connito-miner wallet [--path DIR] [--wallet-path DIR] [--wallet NAME] [--hotkey NAME] [--json]

Show the coldkey and hotkey addresses the miner uses, and check that the hotkey file loads
(unencrypted, valid, owner-only permissions). The wallet comes from DIR/config.yaml
(chain.wallet_path, chain.coldkey_name, chain.hotkey_name); the flags override it. Without --path the
flags apply to btcli's defaults: $BT_WALLET_PATH or ~/.bittensor/wallets, wallet "default", hotkey "default".
Exit codes: 0 the wallet loads, 2 it does not (the message says which btcli command fixes it).

Options:
  --path DIR          run directory (or its config.yaml)
  --wallet-path DIR   directory holding the wallets
  --wallet NAME       wallet (coldkey) name, as btcli --wallet.name
  --hotkey NAME       hotkey name, as btcli --wallet.hotkey
  --json              print a JSON object
  -h, --help          show this help
`;

const options = {
  path: { type: 'string' },
  'wallet-path': { type: 'string' },
  wallet: { type: 'string' },
  hotkey: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs(argv, options, usage);
  if (typeof v === 'number') return v;
  let spec: WalletSpec = { name: process.env.BT_WALLET_NAME ?? 'default', hotkey: process.env.BT_WALLET_HOTKEY ?? 'default' };
  let expected: { hotkey: string; coldkey: string } | null = null;
  if (v.path !== undefined) {
    const loaded = await loadConfigOrFail('wallet', v.path);
    if (typeof loaded === 'number') return loaded;
    const { config } = loaded;
    spec = { path: config.chain.wallet_path, name: config.chain.coldkey_name, hotkey: config.chain.hotkey_name };
    expected = { hotkey: config.chain.hotkey_ss58, coldkey: config.chain.coldkey_ss58 };
  }
  if (v['wallet-path'] !== undefined) spec = { ...spec, path: v['wallet-path'] };
  if (v.wallet !== undefined) spec = { ...spec, name: v.wallet };
  if (v.hotkey !== undefined) spec = { ...spec, hotkey: v.hotkey };

  let w;
  try {
    w = await loadWallet(spec);
  } catch (e) {
    if (isChainError(e)) return fail('wallet', e.message, 2);
    throw e;
  }
  const warnings = [...w.warnings];
  // config.yaml may pin the addresses; a mismatch means the config points at another wallet than intended.
  if (expected !== null && expected.hotkey !== '' && expected.hotkey !== w.hotkeyAddress) {
    warnings.push(`config chain.hotkey_ss58 is ${expected.hotkey} but the hotkey file holds ${w.hotkeyAddress}`);
  }
  if (expected !== null && expected.coldkey !== '' && w.coldkeyAddress !== null && expected.coldkey !== w.coldkeyAddress) {
    warnings.push(`config chain.coldkey_ss58 is ${expected.coldkey} but coldkeypub.txt holds ${w.coldkeyAddress}`);
  }
  if (v.json) {
    process.stdout.write(`${JSON.stringify({ ...w.toJSON(), walletDir: w.files.walletDir, warnings })}\n`);
    return 0;
  }
  const lines = [
    `wallet   ${w.name}  (${w.files.walletDir})`,
    `coldkey  ${w.coldkeyAddress ?? '(unknown: coldkeypub.txt missing)'}`,
    `hotkey   ${w.hotkeyName}  ${w.hotkeyAddress}  (${w.files.hotkeyFile})`,
    ...warnings.map((x) => `warning: ${x}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
