// JSON-RPC errors of the devnode, with the codes and texts a Substrate node uses so the client sees
// what it would see on finney (`1010: Invalid Transaction: Transaction has a bad signature`).

export class RpcError extends Error {
  readonly code: number;
  readonly rpcMessage: string;
  readonly data: string | undefined;
  constructor(code: number, message: string, data?: string) {
    super(data === undefined ? message : `${message}: ${data}`);
    this.name = 'RpcError';
    this.code = code;
    this.rpcMessage = message;
    this.data = data;
  }

  toJSON(): { code: number; message: string; data?: string } {
    return this.data === undefined
      ? { code: this.code, message: this.rpcMessage }
      : { code: this.code, message: this.rpcMessage, data: this.data };
  }
}

/** Transaction-pool rejections (sp_runtime InvalidTransaction → author RPC error 1010). */
export const invalidTx = (data: string): RpcError => new RpcError(1010, 'Invalid Transaction', data);

export const INVALID = {
  badSignature: () => invalidTx('Transaction has a bad signature'),
  stale: () => invalidTx('Transaction is outdated'),
  ancientBirth: () => invalidTx('Transaction has an ancient birth block'),
  call: () => invalidTx('Transaction call is not expected'),
  badSigner: () => invalidTx('Invalid signing address'),
  payment: () => invalidTx('Inability to pay some fees (e.g. account balance too low)'),
  custom: (n: number) => invalidTx(`Custom error: ${n}`),
} as const;

/** Custom validity codes of subtensor's SubtensorTransactionExtension (common/src/transaction_error.rs). */
export const SUBTENSOR_CUSTOM = {
  RateLimitExceeded: 6,
  HotKeyNotRegisteredInNetwork: 10,
  InvalidIpAddress: 11,
  ServingRateLimitExceeded: 12,
  InvalidPort: 13,
  BadRequest: 255,
} as const;

export const priorityTooLow = (nonce: number): RpcError =>
  new RpcError(
    1014,
    `Priority is too low: (0 vs 0)`,
    `The transaction has too low priority to replace another transaction already in the pool (nonce ${nonce}).`,
  );

export const alreadyImported = (): RpcError =>
  new RpcError(1013, 'Transaction Already Imported', 'The transaction is already in the pool.');

export const stateDiscarded = (hash: string): RpcError =>
  new RpcError(4003, 'Client error', `State already discarded for ${hash}`);

export const unknownBlock = (hash: string): RpcError =>
  new RpcError(4003, 'Client error', `UnknownBlock: Header was not found in the database: ${hash}`);

/** A devnode genesis that does not validate; the message names the field. */
export class GenesisError extends Error {
  readonly code = 'CNM_ERR_DEVNET_GENESIS';
  constructor(message: string) {
    super(message);
    this.name = 'GenesisError';
  }
}
