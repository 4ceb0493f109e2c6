// Block production for a devnet: a steady block time, a fast-forward (the bootstrap cycle before
// the miners join is not worth waiting for), and a hold (the chain stops at a block until everyone
// is ready, so the first real cycle starts with every miner in place).
import type { Devnode } from './chain/index.js';

export class BlockClock {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private fastUntil = -1;
  private fastMs = 10;
  private holdAt: number | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly node: Devnode,
    readonly blockMs: number,
  ) {}

  get head(): number {
    return this.node.head().number;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Produce blocks every `ms` until the head is `block`, then go back to the steady rate. */
  fastForward(block: number, ms = 10): void {
    this.fastUntil = block;
    this.fastMs = ms;
    this.kick();
  }

  /** Stop producing once the head reaches `block` (null releases). */
  hold(block: number | null): void {
    this.holdAt = block;
    this.kick();
  }

  /** Resolves when the head is ≥ `block` (rejects on `signal`). */
  waitFor(block: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.head >= block) {
          this.listeners.delete(check);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }
      };
      const onAbort = (): void => {
        this.listeners.delete(check);
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.listeners.add(check);
      check();
    });
  }

  private kick(): void {
    if (!this.running) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.schedule(0);
  }

  private schedule(delay?: number): void {
    const head = this.head;
    const ms = delay ?? (head < this.fastUntil ? this.fastMs : this.blockMs);
    this.timer = setTimeout(() => this.tick(), ms);
  }

  private tick(): void {
    this.timer = null;
    if (!this.running) return;
    if (this.holdAt === null || this.head < this.holdAt) {
      this.node.produceBlock();
      for (const l of [...this.listeners]) l();
    }
    this.schedule();
  }
}
