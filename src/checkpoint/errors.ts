// Typed errors of the checkpoint layer. Every error has a stable `code` and says which file is at
// fault; readers never throw anything else for bad input (a bug may still throw a plain Error).

export type CheckpointErrorCode =
  /** The file is not a well-formed archive: bad zip structure, truncated, offsets past the end. */
  | 'CNM_ERR_PT_FORMAT'
  /** The pickle uses an opcode or global outside the weights-only allow-list. */
  | 'CNM_ERR_PICKLE_FORBIDDEN'
  /** The pickle is malformed (stack underflow, bad memo reference, wrong argument types). */
  | 'CNM_ERR_PICKLE_FORMAT'
  /** A tensor's storage reference, offset, size or stride points outside its storage. */
  | 'CNM_ERR_PT_BOUNDS'
  /** A safety limit was exceeded (pickle size, nesting, memo, tensor count, total bytes). */
  | 'CNM_ERR_LIMIT'
  /** A record's CRC-32 does not match its bytes. */
  | 'CNM_ERR_PT_CRC'
  /** Malformed `.safetensors` (header, offsets, dtype × shape). */
  | 'CNM_ERR_SAFETENSORS'
  /** The object in the file is not a state dict of tensors. */
  | 'CNM_ERR_NOT_STATE_DICT'
  /** A checkpoint directory or its manifest is missing, incomplete or inconsistent. */
  | 'CNM_ERR_CKPT_DIR'
  /** The file could not be opened, read or written (missing, permissions, disk full). */
  | 'CNM_ERR_CKPT_IO'
  /** Bad argument from our own code (unsupported dtype, duplicate key, ...). */
  | 'CNM_ERR_CKPT_ARG';

export class CheckpointError extends Error {
  readonly code: CheckpointErrorCode;
  /** The file or directory concerned, when known. */
  readonly path: string | undefined;

  constructor(code: CheckpointErrorCode, message: string, path?: string, options?: { cause?: unknown }) {
    super(path ? `${message} (${path})` : message, options);
    this.name = 'CheckpointError';
    this.code = code;
    this.path = path;
  }
}

/** Opens a file, turning an fs failure into CNM_ERR_CKPT_IO that names the path and the reason. */
export async function openOrThrow<T>(path: string, what: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new CheckpointError('CNM_ERR_CKPT_IO', `cannot ${what} (${code}: ${(e as Error).message})`, path, { cause: e });
  }
}

export function isCheckpointError(e: unknown, code?: CheckpointErrorCode): e is CheckpointError {
  return e instanceof CheckpointError && (code === undefined || e.code === code);
}
