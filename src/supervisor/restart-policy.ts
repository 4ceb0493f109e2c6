// When to restart a crashed trainer, and when to give up. Pure: the caller passes the clock.
export interface RestartPolicyOptions {
  /** Crashes tolerated within `windowMs`; one more and we give up. */
  maxRestarts: number;
  windowMs: number;
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
}

export type RestartDecision =
  | { restart: true; delayMs: number; attempt: number; crashesInWindow: number }
  | { restart: false; crashesInWindow: number };

export class RestartPolicy {
  private crashes: number[] = [];
  private consecutive = 0;

  constructor(private readonly opts: RestartPolicyOptions) {}

  /**
   * Record a crash at `now` of a child that had been up for `uptimeMs`. A child that stayed up
   * longer than the backoff cap was healthy: its crash starts the backoff over.
   */
  onCrash(now: number, uptimeMs: number): RestartDecision {
    this.crashes = this.crashes.filter((t) => now - t < this.opts.windowMs);
    this.crashes.push(now);
    if (uptimeMs >= this.opts.maxDelayMs) this.consecutive = 0;
    this.consecutive += 1;
    const crashesInWindow = this.crashes.length;
    if (crashesInWindow > this.opts.maxRestarts) return { restart: false, crashesInWindow };
    const delayMs = Math.min(this.opts.maxDelayMs, this.opts.initialDelayMs * this.opts.factor ** (this.consecutive - 1));
    return { restart: true, delayMs, attempt: this.consecutive, crashesInWindow };
  }
}
