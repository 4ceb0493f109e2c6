// Turning what a Substrate node says about a rejected or failed extrinsic into ChainTxError reasons
// with messages an operator can act on. Pure functions: tested without a node.

import { ChainTxError, type TxErrorDetails, type TxFailureReason } from './errors.js';

/** Custom validity codes of subtensor's SubtensorTransactionExtension (`1010 … Custom error: N`). */
export const SUBTENSOR_CUSTOM_ERRORS: Readonly<Record<number, { name: string; reason: TxFailureReason }>> = {
  1: { name: 'ColdKeyInSwapSchedule', reason: 'invalid' },
  6: { name: 'RateLimitExceeded', reason: 'rate_limited' },
  10: { name: 'HotKeyNotRegisteredInNetwork', reason: 'not_registered' },
  11: { name: 'InvalidIpAddress', reason: 'invalid' },
  12: { name: 'ServingRateLimitExceeded', reason: 'rate_limited' },
  13: { name: 'InvalidPort', reason: 'invalid' },
  255: { name: 'BadRequest', reason: 'invalid' },
};

/** Pallet errors (dispatch failures) with a more specific reason than `dispatch`. */
const DISPATCH_REASONS: Readonly<Record<string, TxFailureReason>> = {
  'commitments.AccountNotAllowedCommit': 'not_registered',
  'commitments.SpaceLimitExceeded': 'rate_limited',
  'subtensorModule.HotKeyNotRegisteredInSubNet': 'not_registered',
  'subtensorModule.HotKeyNotRegisteredInNetwork': 'not_registered',
  'subtensorModule.ServingRateLimitExceeded': 'rate_limited',
  'subtensorModule.SettingWeightsTooFast': 'rate_limited',
  'subtensorModule.TxRateLimitExceeded': 'rate_limited',
};

function describe(d: TxErrorDetails): string {
  return `${d.call} signed by ${d.signer}${d.nonce === undefined ? '' : ` (nonce ${d.nonce})`}`;
}

function adviceFor(reason: TxFailureReason, d: TxErrorDetails, netuid: number): string {
  switch (reason) {
    case 'bad_signature':
      return 'the node rejected the signature: the hotkey file\'s secret does not match its address, or the node runs another chain or runtime than the one the transaction was signed for. Check the wallet with `connito-miner wallet` and chain.network.';
    case 'stale_nonce':
      return `nonce ${d.nonce ?? '?'} was already used on chain: another process is signing with this hotkey. Run one miner per hotkey.`;
    case 'nonce_in_use':
      return `another transaction with nonce ${d.nonce ?? '?'} from this hotkey waits in the pool: another process is signing with this hotkey. Run one miner per hotkey.`;
    case 'not_registered':
      return `hotkey ${d.signer} is not registered on netuid ${netuid}. Register it (\`btcli subnets register --netuid ${netuid}\`) and check chain.hotkey_name.`;
    case 'rate_limited':
      return 'a chain rate limit refused it (serving rate limit, commitment space per epoch, or transaction rate). It will pass in a later window; do not retry in a loop.';
    case 'dispatch':
      return 'it was included in a block but failed when executed.';
    case 'dropped':
      return 'the node dropped it from its pool before inclusion (it became invalid, or was replaced).';
    case 'timeout':
      return 'it was not seen in a block before the deadline; it may still be included later.';
    case 'invalid':
      return 'the node refused it.';
  }
}

export function txError(reason: TxFailureReason, d: TxErrorDetails, netuid: number, cause?: unknown): ChainTxError {
  const what = d.module ? ` [${d.module}]` : '';
  const detail = d.detail ? ` Node says: ${d.detail}.` : '';
  return new ChainTxError(
    reason,
    `${describe(d)} failed (${reason})${what}: ${adviceFor(reason, d, netuid)}${detail}`,
    d,
    cause === undefined ? undefined : { cause },
  );
}

/** The node's text of a JSON-RPC error as @polkadot/rpc-provider formats it (`1010: Invalid Transaction: …`). */
export function rpcErrorText(e: unknown): string {
  if (e instanceof Error) return e.message.split('\nFailed WS Request')[0]!.trim();
  return String(e);
}

/** True when a submission error means the transport failed (the transaction's fate is unknown). */
export function isTransportError(e: unknown): boolean {
  const t = rpcErrorText(e);
  return /WebSocket is not connected|disconnected from|No response received|Abnormal Closure|socket hang up/i.test(t);
}

/** Classify a pool rejection (`author_submit*` error). */
export function classifyPoolRejection(e: unknown): { reason: TxFailureReason; detail: string } {
  const text = rpcErrorText(e);
  const code = typeof (e as { code?: unknown })?.code === 'number' ? (e as { code: number }).code : Number(/^(-?\d+):/.exec(text)?.[1]);
  const custom = /Custom error:\s*(\d+)/i.exec(text);
  if (custom) {
    const n = Number(custom[1]);
    const known = SUBTENSOR_CUSTOM_ERRORS[n];
    return { reason: known?.reason ?? 'invalid', detail: known ? `${text} (${known.name})` : text };
  }
  if (/bad signature|BadProof/i.test(text)) return { reason: 'bad_signature', detail: text };
  if (/outdated|\bStale\b/i.test(text)) return { reason: 'stale_nonce', detail: text };
  if (code === 1014 || /Priority is too low/i.test(text)) return { reason: 'nonce_in_use', detail: text };
  return { reason: 'invalid', detail: text };
}

/** Classify a dispatch failure from its `section.name` (as `registry.findMetaError` gives it). */
export function classifyDispatchError(module: string | null): TxFailureReason {
  if (module === null) return 'dispatch';
  return DISPATCH_REASONS[module] ?? 'dispatch';
}
