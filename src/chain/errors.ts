// Typed errors of the chain layer. Every message says what to do next (which file, which command).

export type ChainErrorCode =
  /** The wallet directory or hotkey file does not exist. */
  | 'CNM_ERR_WALLET_MISSING'
  /** The hotkey file is encrypted; the miner needs it in plaintext (btcli's default for hotkeys). */
  | 'CNM_ERR_WALLET_ENCRYPTED'
  /** A wallet file is not the JSON btwallet writes, or a field is malformed. */
  | 'CNM_ERR_WALLET_BAD_JSON'
  /** The secret in the hotkey file does not produce the public key written beside it. */
  | 'CNM_ERR_WALLET_KEY_MISMATCH'
  /** Could not connect to the chain endpoint before the deadline. */
  | 'CNM_ERR_CHAIN_CONNECT'
  /** A chain call did not answer within its timeout. */
  | 'CNM_ERR_CHAIN_TIMEOUT'
  /** A chain call failed (RPC error, disconnect, decoding). */
  | 'CNM_ERR_CHAIN_RPC'
  /** A historical read asked for a block the node does not know or has pruned. */
  | 'CNM_ERR_CHAIN_BLOCK_UNAVAILABLE'
  /** The client was closed. */
  | 'CNM_ERR_CHAIN_CLOSED'
  /** A write needs the hotkey but the client was created without a wallet. */
  | 'CNM_ERR_CHAIN_NO_WALLET'
  /** Bad argument to a chain call (commit too large, bad IP, ...). */
  | 'CNM_ERR_CHAIN_ARG'
  /** An extrinsic failed; `reason` says how (see TxFailureReason). */
  | 'CNM_ERR_TX_BAD_SIGNATURE'
  | 'CNM_ERR_TX_STALE_NONCE'
  | 'CNM_ERR_TX_NONCE_IN_USE'
  | 'CNM_ERR_TX_NOT_REGISTERED'
  | 'CNM_ERR_TX_RATE_LIMITED'
  | 'CNM_ERR_TX_INVALID'
  | 'CNM_ERR_TX_DISPATCH'
  | 'CNM_ERR_TX_DROPPED'
  | 'CNM_ERR_TX_TIMEOUT';

export class ChainError extends Error {
  readonly code: ChainErrorCode;
  constructor(code: ChainErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChainError';
    this.code = code;
  }
}

/** Wallet problems: `path` is the file or directory at fault. */
export class WalletError extends ChainError {
  readonly path: string;
  constructor(code: ChainErrorCode, path: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'WalletError';
    this.path = path;
  }
}

/**
 * Why an extrinsic did not land:
 * - `bad_signature`: the node rejected the signature (key material does not match the address, or another
 *   chain/runtime than the one it was signed for);
 * - `stale_nonce`: the nonce was already used on chain (another process signs with the same hotkey?);
 * - `nonce_in_use`: another transaction with the same nonce waits in the pool;
 * - `not_registered`: the hotkey is not registered on the subnet (pool custom error 10, or
 *   Commitments.AccountNotAllowedCommit at dispatch);
 * - `rate_limited`: serving rate limit, commitment space budget, or another rate limit of the chain;
 * - `invalid`: any other pool rejection (details in `detail`);
 * - `dispatch`: included in a block but failed (`module` names the pallet error);
 * - `dropped`: the pool dropped/usurped it or it became invalid after submission;
 * - `timeout`: not in a block before the deadline (it may still land later).
 */
export type TxFailureReason =
  | 'bad_signature'
  | 'stale_nonce'
  | 'nonce_in_use'
  | 'not_registered'
  | 'rate_limited'
  | 'invalid'
  | 'dispatch'
  | 'dropped'
  | 'timeout';

const TX_CODE: Record<TxFailureReason, ChainErrorCode> = {
  bad_signature: 'CNM_ERR_TX_BAD_SIGNATURE',
  stale_nonce: 'CNM_ERR_TX_STALE_NONCE',
  nonce_in_use: 'CNM_ERR_TX_NONCE_IN_USE',
  not_registered: 'CNM_ERR_TX_NOT_REGISTERED',
  rate_limited: 'CNM_ERR_TX_RATE_LIMITED',
  invalid: 'CNM_ERR_TX_INVALID',
  dispatch: 'CNM_ERR_TX_DISPATCH',
  dropped: 'CNM_ERR_TX_DROPPED',
  timeout: 'CNM_ERR_TX_TIMEOUT',
};

export interface TxErrorDetails {
  /** Which call: `commitments.setCommitment`, `subtensorModule.serveAxon`, ... */
  call: string;
  /** Signer SS58. */
  signer: string;
  nonce?: number;
  /** The node's words (RPC error text or pallet error docs). */
  detail?: string;
  /** `Pallet.Error` for dispatch errors. */
  module?: string;
  /** Block in which it failed (dispatch errors). */
  blockHash?: string;
  blockNumber?: number;
}

export class ChainTxError extends ChainError {
  readonly reason: TxFailureReason;
  readonly details: TxErrorDetails;
  constructor(reason: TxFailureReason, message: string, details: TxErrorDetails, options?: { cause?: unknown }) {
    super(TX_CODE[reason], message, options);
    this.name = 'ChainTxError';
    this.reason = reason;
    this.details = details;
  }
}

export function isChainError(e: unknown, code?: ChainErrorCode): e is ChainError {
  return e instanceof ChainError && (code === undefined || e.code === code);
}
