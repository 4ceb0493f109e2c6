// sd_notify(3) for Type=notify units: READY, STATUS, WATCHDOG, STOPPING, EXTEND_TIMEOUT_USEC.
// Outside systemd (no $NOTIFY_SOCKET) every call is a no-op. A failed send is logged once per
// kind and never fatal: systemd being unreachable must not stop the miner.
import type { Logger } from '../telemetry/logger.js';
import { loadSysAddon } from './sys.js';

export interface NotifierOptions {
  logger: Logger;
  /** Defaults to $NOTIFY_SOCKET. */
  socket?: string | undefined;
  /** Defaults to $WATCHDOG_USEC (when $WATCHDOG_PID is unset or ours). */
  watchdogUsec?: number | undefined;
}

export class Notifier {
  readonly socket: string | undefined;
  /** Watchdog interval requested by systemd, in microseconds (undefined: no watchdog). */
  readonly watchdogUsec: number | undefined;
  private readonly logger: Logger;
  private readonly failed = new Set<string>();
  private watchdogTimer: NodeJS.Timeout | undefined;
  private lastStatus = '';

  constructor(opts: NotifierOptions) {
    this.logger = opts.logger;
    this.socket = opts.socket ?? (process.env.NOTIFY_SOCKET || undefined);
    this.watchdogUsec = opts.watchdogUsec ?? watchdogFromEnv();
  }

  get enabled(): boolean {
    return this.socket !== undefined;
  }

  send(state: string): boolean {
    if (this.socket === undefined) return false;
    try {
      return loadSysAddon().sdNotify(state, this.socket) === 1;
    } catch (err) {
      const kind = state.split('=')[0] ?? state;
      if (!this.failed.has(kind)) {
        this.failed.add(kind);
        this.logger.warn({ err: (err as Error).message, socket: this.socket, state: kind }, 'sd_notify failed');
      }
      return false;
    }
  }

  ready(status?: string): void {
    this.send(status === undefined ? 'READY=1' : `READY=1\nSTATUS=${oneLine(status)}`);
  }

  status(text: string): void {
    const line = oneLine(text);
    if (line === this.lastStatus) return;
    this.lastStatus = line;
    this.send(`STATUS=${line}`);
  }

  stopping(status?: string): void {
    this.stopWatchdog();
    this.send(status === undefined ? 'STOPPING=1' : `STOPPING=1\nSTATUS=${oneLine(status)}`);
  }

  /** Ask systemd for `ms` more before it gives up on a start or stop in progress. */
  extendTimeout(ms: number): void {
    this.send(`EXTEND_TIMEOUT_USEC=${Math.ceil(ms * 1000)}`);
  }

  /**
   * Ping WATCHDOG=1 every half watchdog interval, but only while `healthy()` says so: a stuck
   * trainer then lets systemd's watchdog restart the unit.
   */
  startWatchdog(healthy: () => boolean): void {
    if (this.watchdogUsec === undefined || this.socket === undefined || this.watchdogTimer !== undefined) return;
    const periodMs = Math.max(50, Math.floor(this.watchdogUsec / 2000));
    const tick = (): void => {
      if (healthy()) this.send('WATCHDOG=1');
    };
    tick();
    this.watchdogTimer = setInterval(tick, periodMs);
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    if (this.watchdogTimer !== undefined) clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
  }
}

function watchdogFromEnv(): number | undefined {
  const usec = Number(process.env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  const pid = process.env.WATCHDOG_PID;
  if (pid !== undefined && pid !== '' && Number(pid) !== process.pid) return undefined;
  return usec;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ');
}
