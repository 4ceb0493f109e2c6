// Typed errors of the protocol layer (pure functions: the message names the offending value).

export type ProtocolErrorCode =
  /** A chain commit payload exceeds the 128-byte Raw limit or has a field of the wrong shape. */
  | 'CNM_ERR_COMMIT_ENCODE'
  /** A chain commit payload could not be decoded (not JSON, wrong types). */
  | 'CNM_ERR_COMMIT_DECODE'
  /** An SS58 address is malformed or its checksum is wrong. */
  | 'CNM_ERR_SS58'
  /** Hex / base64url text is malformed. */
  | 'CNM_ERR_ENCODING'
  /** A phase schedule or owner-API response is malformed. */
  | 'CNM_ERR_PHASE_SCHEDULE'
  /** An expert-group assignment file is malformed. */
  | 'CNM_ERR_EXPERT_ASSIGNMENT'
  /** Bad argument (negative block, wrong hash length, ...). */
  | 'CNM_ERR_PROTOCOL_ARG';

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

export function isProtocolError(e: unknown, code?: ProtocolErrorCode): e is ProtocolError {
  return e instanceof ProtocolError && (code === undefined || e.code === code);
}
