// The wallet check of `start`: the hotkey must load before anything starts, with an error that
// names the file and the btcli command that creates it. Uses the chain layer's loader.
import type { MinerConfig } from '../config/index.js';
import type { Logger } from '../telemetry/logger.js';

export type WalletCheck = { ok: true; hotkey: string; coldkey: string | null } | { ok: false; path: string; message: string };

export async function checkWallet(config: MinerConfig, logger: Logger): Promise<WalletCheck> {
  const { loadWallet } = await import('../chain/wallet.js');
  const { WalletError } = await import('../chain/errors.js');
  try {
    const w = await loadWallet({ path: config.chain.wallet_path, name: config.chain.coldkey_name, hotkey: config.chain.hotkey_name }, { logger });
    logger.info({ wallet: w.name, hotkey_name: w.hotkeyName, hotkey: w.hotkeyAddress, coldkey: w.coldkeyAddress }, 'wallet loaded');
    return { ok: true, hotkey: w.hotkeyAddress, coldkey: w.coldkeyAddress };
  } catch (err) {
    if (err instanceof WalletError) return { ok: false, path: err.path, message: `${err.message} (chain.coldkey_name / chain.hotkey_name / chain.wallet_path in config.yaml)` };
    throw err;
  }
}
