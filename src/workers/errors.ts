// Errors of the phase-duty tasks: a stable code each and a message that says what happened and
// what to do. Tasks catch everything and turn it into a logged outcome; these classes give the
// log lines their `code`.
export type WorkerErrorCode =
  | 'CNM_ERR_TASK_CONFIG'
  | 'CNM_ERR_EXPERT_GROUP'
  | 'CNM_ERR_NO_CHECKPOINT'
  | 'CNM_ERR_CHECKPOINT_VERSION'
  | 'CNM_ERR_WINDOW_OVER'
  | 'CNM_ERR_COMMIT_LATE'
  | 'CNM_ERR_DOWNLOAD'
  | 'CNM_ERR_DOWNLOAD_VERIFY'
  | 'CNM_ERR_SUBMIT'
  | 'CNM_ERR_SUBMIT_REJECTED'
  | 'CNM_ERR_COMMITTED_STATE'
  | 'CNM_ERR_TRANSPORT';

export class WorkerError extends Error {
  override readonly name = 'WorkerError';
  readonly code: WorkerErrorCode;
  constructor(code: WorkerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** `code` of any error that has one, else undefined. */
export function errorCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/** A one-line description of any thrown value (never a stack). */
export function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
