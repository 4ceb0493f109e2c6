// The small system addon (connito_sys): sd_notify and flock. The supervisor loads only this
// addon, never the training engine, so a GPU or engine fault cannot take the supervisor down.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SupervisorError } from './errors.js';

export interface SysAddon {
  version: string;
  /** 1 sent, 0 not under systemd (no socket); throws on failure. */
  sdNotify(state: string, socketPath?: string): number;
  /** true when acquired; false when held elsewhere and `wait` is false. */
  flock(fd: number, exclusive: boolean, wait: boolean): boolean;
  funlock(fd: number): void;
}

let cached: SysAddon | undefined;

export function loadSysAddon(): SysAddon {
  if (cached !== undefined) return cached;
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const candidates = [
    process.env.CONNITO_SYS_ADDON,
    join(root, 'build', 'Release', 'connito_sys.node'),
    join(root, 'build', 'Debug', 'connito_sys.node'),
  ].filter((p): p is string => p !== undefined && p !== '');
  const require = createRequire(import.meta.url);
  const errors: string[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) {
      errors.push(`${path}: not found`);
      continue;
    }
    try {
      cached = require(path) as SysAddon;
      return cached;
    } catch (err) {
      errors.push(`${path}: ${(err as Error).message}`);
    }
  }
  throw new SupervisorError(
    'CNM_ERR_SYS_ADDON',
    `the system addon connito_sys.node could not be loaded:\n  ${errors.join('\n  ')}\n` +
      'Possible solutions:\n  - build it: npm run build:addon\n  - install a C++17 compiler and cmake: apt-get install -y build-essential cmake',
  );
}
