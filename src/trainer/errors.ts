// Errors of the trainer child. Each has a stable `code` and a message that tells the operator what
// to do: which file, which config field, which command. The trainer reports them to the supervisor
// in a `fatal` IPC message, so they must make sense without a stack trace.

export type TrainerErrorCode =
  | 'CNM_ERR_DATA_SOURCE_MISSING'
  | 'CNM_ERR_DATA_SOURCE_EMPTY'
  | 'CNM_ERR_DATA_FORMAT'
  | 'CNM_ERR_DATA_STATE'
  | 'CNM_ERR_DATA_WORKER'
  | 'CNM_ERR_TOKENIZER'
  | 'CNM_ERR_MODEL_CONFIG'
  | 'CNM_ERR_EXPERT_ASSIGNMENT'
  | 'CNM_ERR_WEIGHTS'
  | 'CNM_ERR_NON_FINITE'
  | 'CNM_ERR_TRAINER_CONFIG'
  | 'CNM_ERR_TRAINER_STATE';

export class TrainerError extends Error {
  readonly code: TrainerErrorCode;

  constructor(code: TrainerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TrainerError';
    this.code = code;
  }
}

export function isTrainerError(e: unknown): e is TrainerError {
  return e instanceof TrainerError;
}

/** A message for logs and the `fatal` IPC message: the code when there is one, then the text. */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && code.length > 0 ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}
