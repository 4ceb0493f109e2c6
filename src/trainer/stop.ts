// The stop request of the trainer: set from a signal handler or an IPC message, read by the loop
// at safe points. Setting it does no I/O (signal handlers must not) — it flips a flag and aborts an
// AbortSignal so a wait for data ends at once.
export class StopRequest {
  private reasonText: string | null = null;
  private readonly ac = new AbortController();

  get requested(): boolean {
    return this.reasonText !== null;
  }

  get reason(): string | null {
    return this.reasonText;
  }

  /** Aborted when a stop is requested. */
  get signal(): AbortSignal {
    return this.ac.signal;
  }

  request(reason: string): void {
    if (this.reasonText !== null) return;
    this.reasonText = reason;
    this.ac.abort();
  }
}
