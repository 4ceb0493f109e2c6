// The contract between the phase clock (src/supervisor/phase-clock.ts) and the phase-duty task
// modules (download.ts, commit.ts, submit.ts). A leaf module, like src/trainer/ipc.ts: it imports
// nothing of ours, so the supervisor can use it without knowing the workers.
//
// A payload is plain data (structured-clone safe). The schedule travels with every task so a task
// computes exactly the phases the clock computed, whatever the owner service answers meanwhile.

/** The three phase duties of the miner (PROTOCOL.md §1.7). */
export type DutyName = 'download' | 'commit' | 'submit';

export const DUTY_NAMES: readonly DutyName[] = ['download', 'commit', 'submit'];

/** One phase of the schedule in cycle order (the owner service's `/` answer). */
export interface WirePhase {
  name: string;
  length: number;
}

/**
 * The blocks of one duty's window in one cycle (all inclusive):
 * the task starts acting at `start`, must not start its first action after `startBy`, may act until
 * `actUntil`, and must have finished by `deadline`.
 */
export interface DutyWindow {
  start: number;
  startBy: number;
  actUntil: number;
  deadline: number;
}

export interface DutyPayload {
  /** Absolute path of the run's config.yaml. */
  configFile: string;
  /** The phase schedule in effect, in cycle order. */
  schedule: WirePhase[];
  /** Where the schedule came from: the owner phase service, or the config's locked lengths. */
  scheduleSource: 'owner' | 'config';
  /** The owner service's validator whitelist; null when unknown (validator permits stand in). */
  whitelist: string[] | null;
  /** The head block when the clock dispatched the task. */
  head: number;
  /** Cycle index (floor(block / cycle length)) of the window. */
  cycleIndex: number;
  window: DutyWindow;
  /** Expected block time (ms) for wall-clock estimates. */
  blockTimeMs: number;
}

/** Counters a task reports back (src/telemetry/metrics.ts TaskTelemetry). */
export interface DutyTelemetry {
  chainRpcErrors?: number;
  chainCommitLatencySeconds?: number[];
}

export interface DutyResult {
  duty: DutyName;
  /** true when the duty did what it is for (a skip that is correct behaviour is ok: false). */
  ok: boolean;
  /** true when nothing was attempted (nothing to do, window over, not assigned …). */
  skipped: boolean;
  /** One line for /status and the logs. */
  detail: string;
  cycleIndex: number;
  telemetry?: DutyTelemetry;
  [key: string]: unknown;
}
