// Waiting on the chain inside a task: the head subscription does the work, a slow poll covers the
// gaps (a reconnect re-subscribes; a missed notification must not leave a task waiting forever).
import type { ChainClient } from '../chain/client.js';

export interface WaitOptions {
  signal?: AbortSignal;
  /** Epoch ms: give up then. */
  until: number;
  /** Poll period of the fallback (default 1 s). */
  pollMs?: number;
}

export class WaitAbortedError extends Error {
  override readonly name = 'WaitAbortedError';
}

/** Resolves with the head once it is ≥ `block`; rejects at `until` or when `signal` aborts. */
export function waitForBlock(chain: ChainClient, block: number, o: WaitOptions): Promise<number> {
  const last = chain.lastHead();
  if (last !== null && last.number >= block) return Promise.resolve(last.number);
  return new Promise<number>((resolve, reject) => {
    let done = false;
    let poll: NodeJS.Timeout | undefined;
    const finish = (f: () => void): void => {
      if (done) return;
      done = true;
      off();
      clearTimeout(timer);
      clearTimeout(poll);
      o.signal?.removeEventListener('abort', onAbort);
      f();
    };
    const off = chain.onHead((h) => {
      if (h.number >= block) finish(() => resolve(h.number));
    });
    const onAbort = (): void => finish(() => reject(new WaitAbortedError(`stopped waiting for block ${block}: ${String((o.signal?.reason as Error | undefined)?.message ?? o.signal?.reason)}`)));
    const timer = setTimeout(() => finish(() => reject(new WaitAbortedError(`block ${block} did not arrive in time`))), Math.max(0, o.until - Date.now()));
    const tick = (): void => {
      poll = setTimeout(() => {
        chain.currentBlock().then(
          (n) => {
            if (n >= block) finish(() => resolve(n));
            else if (!done) tick();
          },
          () => {
            if (!done) tick();
          },
        );
      }, o.pollMs ?? 1_000);
    };
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener('abort', onAbort);
    tick();
  });
}

/** Sleeps `ms`, or less when `signal` aborts (resolves either way). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', done);
      resolve();
    }, ms);
    const done = (): void => {
      clearTimeout(t);
      resolve();
    };
    signal?.addEventListener('abort', done, { once: true });
  });
}
