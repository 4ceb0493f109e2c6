// Shared by the chain tests: dev keys, a log capture, polling.
import { Writable } from 'node:stream';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { createLogger, type Logger } from '../../src/telemetry/logger.js';

export const FIXTURE_WALLETS = new URL('../fixtures/chain/wallets', import.meta.url).pathname;

export async function devPair(uri: string): Promise<KeyringPair> {
  await cryptoWaitReady();
  return new Keyring({ type: 'sr25519', ss58Format: 42 }).addFromUri(uri);
}

export interface Captured {
  logger: Logger;
  lines(): Array<Record<string, unknown>>;
}

/** A JSON logger whose lines the test can read back. */
export function captureLogs(level = 'debug'): Captured {
  const chunks: string[] = [];
  const dest = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c.toString());
      cb();
    },
  });
  const logger = createLogger({ proc: 'test', json: true, destination: dest, level });
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export async function waitFor<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 10_000, stepMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Resolve to the rejection of `p` (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; reason?: string }> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x))}`);
    },
    (e: unknown) => e as Error & { code?: string; reason?: string },
  );
}
