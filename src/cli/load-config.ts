// `--path` → the loaded config, for the commands that need one: a config error is the operator's
// to fix, so it is printed and becomes exit code 2 (a usage/config error) instead of a stack trace.
import { ConfigError, loadConfig, type LoadedConfig } from '../config/index.js';
import { fail } from './args.js';

/** loadConfig(path), or the exit code after printing a ConfigError as `connito-miner <command>: …`. */
export async function loadConfigOrFail(command: string, path: string): Promise<LoadedConfig | number> {
  try {
    return await loadConfig(path);
  } catch (err) {
    if (err instanceof ConfigError) return fail(command, err.message, 2);
    throw err;
  }
}
