// Supervisor errors: a stable code each, and a message that says what to do.
export type SupervisorErrorCode =
  | 'CNM_ERR_ALREADY_RUNNING'
  | 'CNM_ERR_PIDFILE'
  | 'CNM_ERR_SYS_ADDON'
  | 'CNM_ERR_TRAINER_GAVE_UP'
  | 'CNM_ERR_TRAINER_ENTRY'
  | 'CNM_ERR_TASK_DEADLINE'
  | 'CNM_ERR_TASK_CANCELLED'
  | 'CNM_ERR_TASK_UNKNOWN'
  | 'CNM_ERR_POOL_CLOSED'
  | 'CNM_ERR_WALLET';

export class SupervisorError extends Error {
  override readonly name = 'SupervisorError';
  readonly code: SupervisorErrorCode;
  constructor(code: SupervisorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** `start` on a run directory whose supervisor is alive. */
export class AlreadyRunningError extends SupervisorError {
  readonly pid: number | null;
  constructor(pidFile: string, pid: number | null) {
    super(
      'CNM_ERR_ALREADY_RUNNING',
      `a connito-miner supervisor already runs for this directory (pid ${pid ?? 'unknown'}, lock held on ${pidFile}); ` +
        'stop it first with `connito-miner stop --path <DIR>`, or use another --path',
    );
    this.pid = pid;
  }
}
