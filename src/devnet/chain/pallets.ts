// The calls a subnet needs, applied to the devnode's state with the rules of subtensor spec 393 as
// summarised in shared/fixtures/chain/NOTES.md §2.5–2.6:
//   Commitments.set_commitment  — registered signer, ≤ 3 fields, space budget per epoch
//   SubtensorModule.serve_axon  — pool checks (registered, ip, port, serving rate limit), writes Axons
//   SubtensorModule.burned_register — appends a uid (signed by the coldkey, pays Burn)
//   SubtensorModule.set_weights — stores Weights, bumps LastUpdate
// Pool checks throw RpcError (1010 Custom error N, as SubtensorTransactionExtension does); dispatch
// failures return a pallet error that becomes System.ExtrinsicFailed.

import type { Codec } from '@polkadot/types/types';
import type { Bool, u16, u64, Vec } from '@polkadot/types';
import { INVALID, SUBTENSOR_CUSTOM } from './errors.js';
import type { ParsedExtrinsic } from './extrinsic.js';
import type { ChainSpec } from './spec.js';
import type { StateMap, StorageCodec } from './storage.js';

export interface EventOut {
  /** Pallet name as in the metadata: `SubtensorModule`, `Commitments`, `System`. */
  pallet: string;
  name: string;
  args: unknown[];
}

export type DispatchOutcome = { ok: true } | { ok: false; pallet: string; error: string };

export interface RuntimeRules {
  /** Accept 127.0.0.1 / ::1 in serve_axon. The chain rejects them (InvalidIpAddress); a devnet on one host needs them. */
  allowLoopbackAxon: boolean;
}

export interface DispatchContext {
  spec: ChainSpec;
  codec: StorageCodec;
  state: StateMap;
  /** Number of the block being built (or, in the pool, the next block). */
  block: number;
  rules: RuntimeRules;
  events: EventOut[];
}

const S = 'subtensorModule';
const U32_MAX = 0xffffffffn;
const U128_MAX = (1n << 128n) - 1n;
const LOOPBACK_V4 = 0x7f000001n;

export const SUPPORTED_CALLS = new Set([
  'commitments.setCommitment',
  'subtensorModule.serveAxon',
  'subtensorModule.serveAxonTls',
  'subtensorModule.burnedRegister',
  'subtensorModule.setWeights',
]);

function num(c: Codec): number {
  return (c as unknown as u64).toNumber();
}

function big(c: Codec): bigint {
  return BigInt((c as unknown as u64).toString());
}

function isRegisteredAnywhere(ctx: DispatchContext, hotkey: string): boolean {
  const prefix = ctx.codec.prefix(S, 'isNetworkMember', [hotkey]);
  for (const k of ctx.state.keys()) if (k.startsWith(prefix)) return true;
  return false;
}

function uidOf(ctx: DispatchContext, netuid: number, hotkey: string): number | null {
  const u = ctx.codec.read<u16>(ctx.state, S, 'uids', [netuid, hotkey]);
  return u === null ? null : u.toNumber();
}

/** Checks the transaction pool (SubtensorTransactionExtension::validate) makes before accepting a call. */
export function validateInPool(ctx: DispatchContext, x: ParsedExtrinsic): void {
  if (!SUPPORTED_CALLS.has(x.callName)) throw INVALID.call();
  if (x.callName === 'subtensorModule.serveAxon' || x.callName === 'subtensorModule.serveAxonTls') {
    const code = serveAxonCheck(ctx, x);
    if (code !== null) throw INVALID.custom(code);
  }
}

function serveAxonCheck(ctx: DispatchContext, x: ParsedExtrinsic): number | null {
  const a = x.call.args;
  const netuid = num(a[0]!);
  const ip = big(a[2]!);
  const port = num(a[3]!);
  const ipType = num(a[4]!);
  const hotkey = x.signer!;
  if (!isRegisteredAnywhere(ctx, hotkey)) return SUBTENSOR_CUSTOM.HotKeyNotRegisteredInNetwork;
  if (ipType !== 4 && ipType !== 6) return SUBTENSOR_CUSTOM.InvalidIpAddress;
  if (ipType === 4 && (ip >= U32_MAX || (ip === LOOPBACK_V4 && !ctx.rules.allowLoopbackAxon))) {
    return SUBTENSOR_CUSTOM.InvalidIpAddress;
  }
  if (ipType === 6 && (ip === U128_MAX || (ip === 1n && !ctx.rules.allowLoopbackAxon))) return SUBTENSOR_CUSTOM.InvalidIpAddress;
  if (port === 0) return SUBTENSOR_CUSTOM.InvalidPort;
  const prev = ctx.codec.read(ctx.state, S, 'axons', [netuid, hotkey]);
  if (prev !== null) {
    const last = num((prev as unknown as { block: u64 }).block);
    const limit = num(ctx.codec.readOrDefault(ctx.state, S, 'servingRateLimit', [netuid]));
    if (limit > 0 && last > 0 && ctx.block - last < limit) return SUBTENSOR_CUSTOM.ServingRateLimitExceeded;
  }
  return null;
}

/** Apply a signed call to ctx.state. The caller has bumped the nonce already. */
export function dispatch(ctx: DispatchContext, x: ParsedExtrinsic): DispatchOutcome {
  switch (x.callName) {
    case 'commitments.setCommitment':
      return setCommitment(ctx, x);
    case 'subtensorModule.serveAxon':
    case 'subtensorModule.serveAxonTls':
      return serveAxon(ctx, x);
    case 'subtensorModule.burnedRegister':
      return burnedRegister(ctx, x);
    case 'subtensorModule.setWeights':
      return setWeights(ctx, x);
    default:
      return { ok: false, pallet: 'System', error: 'CallFiltered' };
  }
}

const fail = (pallet: string, error: string): DispatchOutcome => ({ ok: false, pallet, error });

interface DataField extends Codec {
  type: string;
  value: Codec;
}

function setCommitment(ctx: DispatchContext, x: ParsedExtrinsic): DispatchOutcome {
  const netuid = num(x.call.args[0]!);
  const info = x.call.args[1] as unknown as { fields: Vec<DataField> };
  const who = x.signer!;
  const { codec, state } = ctx;
  if (uidOf(ctx, netuid, who) === null) return fail('Commitments', 'AccountNotAllowedCommit');
  const maxFields = num(ctx.spec.decorated.consts.commitments!.maxFields!);
  if (info.fields.length > maxFields) return fail('Commitments', 'TooManyFieldsInCommitmentInfo');

  // Space budget: each call costs max(100, bytes of its fields), reset when the epoch changes.
  const bytes = info.fields.reduce((n, f) => n + Math.max(0, f.encodedLength - 1), 0);
  const cost = Math.max(100, bytes);
  const tempo = num(codec.readOrDefault(state, S, 'tempo', [netuid]));
  const epoch = Math.floor((ctx.block + netuid + 1) / (tempo + 1));
  const used = codec.read(state, 'commitments', 'usedSpaceOf', [netuid, who]) as unknown as { lastEpoch: u64; usedSpace: u64 } | null;
  const usedNow = used !== null && num(used.lastEpoch) === epoch ? num(used.usedSpace) : 0;
  const maxSpace = num(codec.readOrDefault(state, 'commitments', 'maxSpace'));
  if (usedNow + cost > maxSpace) return fail('Commitments', 'SpaceLimitExceeded');
  codec.write(state, 'commitments', 'usedSpaceOf', [netuid, who], { lastEpoch: epoch, usedSpace: usedNow + cost });
  codec.write(state, 'commitments', 'commitmentOf', [netuid, who], { deposit: 0, block: ctx.block, info });
  codec.write(state, 'commitments', 'lastCommitment', [netuid, who], ctx.block);
  ctx.events.push({ pallet: 'Commitments', name: 'Commitment', args: [netuid, who] });
  return { ok: true };
}

function serveAxon(ctx: DispatchContext, x: ParsedExtrinsic): DispatchOutcome {
  const a = x.call.args;
  const netuid = num(a[0]!);
  const hotkey = x.signer!;
  if (!(ctx.codec.readOrDefault<Bool>(ctx.state, S, 'networksAdded', [netuid])).isTrue) return fail('SubtensorModule', 'SubnetNotExists');
  // The pool checks again at inclusion (the state may have moved since submission).
  const code = serveAxonCheck(ctx, x);
  if (code === SUBTENSOR_CUSTOM.ServingRateLimitExceeded) return fail('SubtensorModule', 'ServingRateLimitExceeded');
  if (code === SUBTENSOR_CUSTOM.HotKeyNotRegisteredInNetwork) return fail('SubtensorModule', 'HotKeyNotRegisteredInNetwork');
  if (code === SUBTENSOR_CUSTOM.InvalidIpAddress) return fail('SubtensorModule', 'InvalidIpAddress');
  if (code === SUBTENSOR_CUSTOM.InvalidPort) return fail('SubtensorModule', 'InvalidPort');
  ctx.codec.write(ctx.state, S, 'axons', [netuid, hotkey], {
    block: ctx.block,
    version: num(a[1]!),
    ip: big(a[2]!),
    port: num(a[3]!),
    ipType: num(a[4]!),
    protocol: num(a[5]!),
    placeholder1: num(a[6]!),
    placeholder2: num(a[7]!),
  });
  ctx.events.push({ pallet: 'SubtensorModule', name: 'AxonServed', args: [netuid, hotkey] });
  return { ok: true };
}

const NEURON_VECTORS_U16 = ['rank', 'trust', 'consensus', 'incentive', 'dividends', 'validatorTrust', 'pruningScores'];

function appendVec(ctx: DispatchContext, item: string, netuid: number, value: unknown): void {
  const cur = ctx.codec.readOrDefault<Vec<Codec>>(ctx.state, S, item, [netuid]).toJSON() as unknown[];
  ctx.codec.write(ctx.state, S, item, [netuid], [...cur, value]);
}

function burnedRegister(ctx: DispatchContext, x: ParsedExtrinsic): DispatchOutcome {
  const netuid = num(x.call.args[0]!);
  const hotkey = x.call.args[1]!.toString();
  const coldkey = x.signer!;
  const { codec, state } = ctx;
  if (!codec.readOrDefault<Bool>(state, S, 'networksAdded', [netuid]).isTrue) return fail('SubtensorModule', 'SubnetNotExists');
  if (uidOf(ctx, netuid, hotkey) !== null) return fail('SubtensorModule', 'HotKeyAlreadyRegisteredInSubNet');
  const owner = codec.read(state, S, 'owner', [hotkey]);
  if (owner !== null && owner.toString() !== coldkey && isRegisteredAnywhere(ctx, hotkey)) {
    return fail('SubtensorModule', 'NonAssociatedColdKey');
  }
  const n = num(codec.readOrDefault<u16>(state, S, 'subnetworkN', [netuid]));
  if (n >= num(codec.readOrDefault<u16>(state, S, 'maxAllowedUids', [netuid]))) return fail('SubtensorModule', 'NoNeuronIdAvailable');
  const burn = big(codec.readOrDefault(state, S, 'burn', [netuid]));
  const account = codec.readOrDefault(state, 'system', 'account', [coldkey]).toJSON() as {
    nonce: number;
    data: { free: number | string };
  };
  const free = BigInt(account.data.free);
  if (free < burn) return fail('SubtensorModule', 'NotEnoughBalanceToStake');
  if (burn > 0n) {
    codec.write(state, 'system', 'account', [coldkey], { ...account, data: { ...account.data, free: free - burn } });
  }
  const uid = n;
  codec.write(state, S, 'keys', [netuid, uid], hotkey);
  codec.write(state, S, 'uids', [netuid, hotkey], uid);
  codec.write(state, S, 'isNetworkMember', [hotkey, netuid], true);
  if (owner === null) codec.write(state, S, 'owner', [hotkey], coldkey);
  codec.write(state, S, 'blockAtRegistration', [netuid, uid], ctx.block);
  codec.write(state, S, 'subnetworkN', [netuid], n + 1);
  appendVec(ctx, 'active', netuid, true);
  appendVec(ctx, 'validatorPermit', netuid, false);
  appendVec(ctx, 'lastUpdate', netuid, ctx.block);
  appendVec(ctx, 'emission', netuid, 0);
  for (const item of NEURON_VECTORS_U16) appendVec(ctx, item, netuid, 0);
  ctx.events.push({ pallet: 'SubtensorModule', name: 'NeuronRegistered', args: [netuid, uid, hotkey] });
  return { ok: true };
}

function setWeights(ctx: DispatchContext, x: ParsedExtrinsic): DispatchOutcome {
  const a = x.call.args;
  const netuid = num(a[0]!);
  const dests = (a[1] as unknown as Vec<u16>).map((d) => d.toNumber());
  const weights = (a[2] as unknown as Vec<u16>).map((w) => w.toNumber());
  const uid = uidOf(ctx, netuid, x.signer!);
  if (uid === null) return fail('SubtensorModule', 'HotKeyNotRegisteredInSubNet');
  if (dests.length !== weights.length) return fail('SubtensorModule', 'WeightVecNotEqualSize');
  const n = num(ctx.codec.readOrDefault<u16>(ctx.state, S, 'subnetworkN', [netuid]));
  if (dests.some((d) => d >= n)) return fail('SubtensorModule', 'UidVecContainInvalidOne');
  if (new Set(dests).size !== dests.length) return fail('SubtensorModule', 'DuplicateUids');
  ctx.codec.write(ctx.state, S, 'weights', [netuid, uid], dests.map((d, i) => [d, weights[i]]));
  const last = ctx.codec.readOrDefault<Vec<u64>>(ctx.state, S, 'lastUpdate', [netuid]).map((v) => v.toNumber());
  last[uid] = ctx.block;
  ctx.codec.write(ctx.state, S, 'lastUpdate', [netuid], last);
  ctx.events.push({ pallet: 'SubtensorModule', name: 'WeightsSet', args: [netuid, uid] });
  return { ok: true };
}

