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

/** The native engine's codes (native/addon sets them on the errors it throws). */
const ENGINE_ERROR_CODES = [
  'CNM_ERR_ENGINE_INPUT',
  'CNM_ERR_ENGINE_CONFIG',
  'CNM_ERR_ENGINE_BACKEND',
  'CNM_ERR_ENGINE_DISPOSED',
  'CNM_ERR_ENGINE_OOM',
  'CNM_ERR_ENGINE_INTERNAL',
] as const;

export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[number];

export function isEngineErrorCode(code: unknown): code is EngineErrorCode {
  return (ENGINE_ERROR_CODES as readonly unknown[]).includes(code);
}

/** A rejected engine call (src/trainer/engine.ts): the message names the tensor or argument. */
export class EngineError extends Error {
  override readonly name = 'EngineError';
  readonly code: EngineErrorCode;

  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** The native addon could not be loaded (src/trainer/native.ts); `tried` lists the candidates. */
export class NativeAddonError extends Error {
  override readonly name = 'NativeAddonError';
  readonly code = 'CNM_ERR_NATIVE_LOAD' as const;
  readonly tried: readonly string[];

  constructor(message: string, tried: readonly string[], options?: { cause?: unknown }) {
    super(message, options);
    this.tried = tried;
  }
}

/** A message for logs and the `fatal` IPC message: the code when there is one, then the text. */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && code.length > 0 ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}
