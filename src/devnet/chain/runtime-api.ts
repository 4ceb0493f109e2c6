// state_call: the runtime APIs a client uses against subtensor, answered from the devnode's state.
// Arguments and results are decoded/encoded with the types the V15 metadata declares for each method,
// so `api.call.neuronInfoRuntimeApi.getNeuronsLite(102)` decodes exactly as against finney.

import type { Bool, u16, u64, Vec } from '@polkadot/types';
import type { Codec } from '@polkadot/types/types';
import { compactToU8a, hexToU8a, u8aConcat, u8aToHex } from '@polkadot/util';
import { RpcError } from './errors.js';
import type { ChainSpec } from './spec.js';
import type { StateMap, StorageCodec } from './storage.js';

export interface RuntimeApiContext {
  spec: ChainSpec;
  codec: StorageCodec;
  state: StateMap;
  /** Nonce the pool would hand out next (AccountNonceApi counts only the state, like the real one). */
  accountNonce(address: string): number;
}

interface MethodTypes {
  inputs: string[];
  output: string;
}

const methodCache = new WeakMap<ChainSpec, Map<string, MethodTypes>>();

function methodTypes(spec: ChainSpec, name: string): MethodTypes | null {
  let m = methodCache.get(spec);
  if (m === undefined) {
    m = new Map();
    for (const api of spec.metadata.asLatest.apis) {
      for (const method of api.methods) {
        m.set(`${api.name.toString()}_${method.name.toString()}`, {
          inputs: method.inputs.map((i) => spec.registry.createLookupType(i.type)),
          output: spec.registry.createLookupType(method.output),
        });
      }
    }
    methodCache.set(spec, m);
  }
  return m.get(name) ?? null;
}

const executionFailed = (what: string): RpcError => new RpcError(4003, 'Client error', `Execution failed: ${what}`);

function decodeArgs(spec: ChainSpec, types: string[], data: Uint8Array): Codec[] {
  const out: Codec[] = [];
  let off = 0;
  for (const t of types) {
    const v = spec.registry.createType(t, data.subarray(off));
    off += v.encodedLength;
    out.push(v);
  }
  if (off !== data.length) throw executionFailed('Codec error: input has trailing bytes');
  return out;
}

const S = 'subtensorModule';

function vecAt<T>(ctx: RuntimeApiContext, item: string, netuid: number, uid: number, dflt: T): T {
  const v = ctx.codec.readOrDefault<Vec<Codec>>(ctx.state, S, item, [netuid]);
  const x = v[uid];
  if (x === undefined) return dflt;
  return (typeof dflt === 'boolean' ? (x as Bool).isTrue : (x as u64).toNumber()) as T;
}

function neuronInfo(ctx: RuntimeApiContext, netuid: number, uid: number, full: boolean): Record<string, unknown> | null {
  const hk = ctx.codec.read(ctx.state, S, 'keys', [netuid, uid]);
  if (hk === null) return null;
  const hotkey = hk.toString();
  const coldkey = ctx.codec.read(ctx.state, S, 'owner', [hotkey])?.toString() ?? hotkey;
  const axon = ctx.codec.read(ctx.state, S, 'axons', [netuid, hotkey])?.toJSON() ?? {};
  const prometheus = ctx.codec.read(ctx.state, S, 'prometheus', [netuid, hotkey])?.toJSON() ?? {};
  const stake = BigInt(ctx.codec.readOrDefault(ctx.state, S, 'totalHotkeyAlpha', [hotkey, netuid]).toString());
  const info: Record<string, unknown> = {
    hotkey,
    coldkey,
    uid,
    netuid,
    active: vecAt(ctx, 'active', netuid, uid, false),
    axonInfo: axon,
    prometheusInfo: prometheus,
    stake: stake > 0n ? [[coldkey, stake]] : [],
    rank: vecAt(ctx, 'rank', netuid, uid, 0),
    emission: vecAt(ctx, 'emission', netuid, uid, 0),
    incentive: vecAt(ctx, 'incentive', netuid, uid, 0),
    consensus: vecAt(ctx, 'consensus', netuid, uid, 0),
    trust: vecAt(ctx, 'trust', netuid, uid, 0),
    validatorTrust: vecAt(ctx, 'validatorTrust', netuid, uid, 0),
    dividends: vecAt(ctx, 'dividends', netuid, uid, 0),
    lastUpdate: vecAt(ctx, 'lastUpdate', netuid, uid, 0),
    validatorPermit: vecAt(ctx, 'validatorPermit', netuid, uid, false),
    pruningScore: vecAt(ctx, 'pruningScores', netuid, uid, 0),
  };
  if (full) {
    const w = ctx.codec.readOrDefault<Vec<Codec>>(ctx.state, S, 'weights', [netuid, uid]).toJSON() as Array<[number, number]>;
    info.weights = w;
    info.bonds = [];
  }
  return info;
}

function neurons(ctx: RuntimeApiContext, netuid: number, full: boolean): Array<Record<string, unknown>> {
  if (!ctx.codec.readOrDefault<Bool>(ctx.state, S, 'networksAdded', [netuid]).isTrue) return [];
  const n = ctx.codec.readOrDefault<u16>(ctx.state, S, 'subnetworkN', [netuid]).toNumber();
  const out: Array<Record<string, unknown>> = [];
  for (let uid = 0; uid < n; uid++) {
    const i = neuronInfo(ctx, netuid, uid, full);
    if (i !== null) out.push(i);
  }
  return out;
}

/** The runtime API names the devnode answers (others fail like a missing export on a real node). */
export const RUNTIME_APIS = [
  'Core_version',
  'Metadata_metadata',
  'Metadata_metadata_versions',
  'Metadata_metadata_at_version',
  'AccountNonceApi_account_nonce',
  'TransactionPaymentApi_query_info',
  'NeuronInfoRuntimeApi_get_neurons_lite',
  'NeuronInfoRuntimeApi_get_neuron_lite',
  'NeuronInfoRuntimeApi_get_neurons',
  'NeuronInfoRuntimeApi_get_neuron',
] as const;

export function callRuntimeApi(ctx: RuntimeApiContext, name: string, dataHex: string): string {
  const { spec } = ctx;
  // The metadata is served as V15 only: it is the one version we hold for spec 393.
  if (name === 'Metadata_metadata_versions') return u8aToHex(spec.registry.createType('Vec<u32>', [15]).toU8a());
  if (name === 'Metadata_metadata') return u8aToHex(u8aConcat(compactToU8a(spec.metadataBytes.length), spec.metadataBytes));
  const types = methodTypes(spec, name);
  if (types === null || !(RUNTIME_APIS as readonly string[]).includes(name)) {
    throw executionFailed(`Other: Exported method ${name} is not found`);
  }
  let data: Uint8Array;
  try {
    data = hexToU8a(dataHex);
  } catch {
    throw executionFailed('Codec error: input is not hex');
  }
  let args: Codec[];
  try {
    args = decodeArgs(spec, types.inputs, data);
  } catch (e) {
    if (e instanceof RpcError) throw e;
    throw executionFailed(`Codec error: ${(e as Error).message.split('\n')[0]}`);
  }
  // SCALE bytes (toU8a): Codec.toHex() of a bare integer is big-endian, not its encoding.
  const out = (v: unknown): string => u8aToHex(spec.registry.createType(types.output, v).toU8a());
  const n = (i: number): number => (args[i] as unknown as u64).toNumber();
  switch (name) {
    case 'Core_version':
      return out(spec.runtimeVersion);
    case 'Metadata_metadata_at_version':
      // Option<OpaqueMetadata>, built by hand: createType would read a Uint8Array as an encoding.
      return n(0) === 15
        ? u8aToHex(u8aConcat(new Uint8Array([1]), compactToU8a(spec.metadataBytes.length), spec.metadataBytes))
        : '0x00';
    case 'AccountNonceApi_account_nonce':
      return out(ctx.accountNonce(args[0]!.toString()));
    case 'TransactionPaymentApi_query_info':
      // No fees on the devnode; a plausible weight so fee estimates print something.
      return out({ weight: { refTime: 100_000_000, proofSize: 4_000 }, class: 'Normal', partialFee: 0 });
    case 'NeuronInfoRuntimeApi_get_neurons_lite':
      return out(neurons(ctx, n(0), false));
    case 'NeuronInfoRuntimeApi_get_neurons':
      return out(neurons(ctx, n(0), true));
    case 'NeuronInfoRuntimeApi_get_neuron_lite':
      return out(neuronInfo(ctx, n(0), n(1), false));
    case 'NeuronInfoRuntimeApi_get_neuron':
      return out(neuronInfo(ctx, n(0), n(1), true));
    default:
      throw executionFailed(`Other: Exported method ${name} is not found`);
  }
}
