// The devnode's genesis: a JSON description of one subnet (default netuid 102) — its neurons with
// uids, hotkeys, coldkeys, stake, permits, axons, last_update — plus funded accounts and initial
// commitments. It is turned into SCALE storage with the real metadata's types (see buildGenesisState).

import { Keyring } from '@polkadot/keyring';
import { u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, decodeAddress, encodeAddress } from '@polkadot/util-crypto';
import * as z from 'zod';
import { ipFromString } from '../../chain/codec.js';
import { GenesisError } from './errors.js';
import type { StateMap, StorageCodec } from './storage.js';

/** An SS58 address, or a dev URI such as `//Alice` (sr25519, resolved to its address). */
const account = z.string().min(1);
// bigint too, so an already-parsed genesis validates again unchanged.
const amount = z
  .union([z.string().regex(/^\d+$/, 'a decimal integer string'), z.number().int().nonnegative(), z.bigint().nonnegative()])
  .transform((v) => BigInt(v));

const axonSchema = z.object({
  ip: z.string().min(1),
  port: z.number().int().min(0).max(65535),
  protocol: z.number().int().min(0).max(255).default(4),
  version: z.number().int().nonnegative().default(0),
  block: z.number().int().nonnegative().default(0),
});

const neuronSchema = z.object({
  hotkey: account,
  /** Owner coldkey; default: the hotkey itself. */
  coldkey: account.optional(),
  /** Alpha stake in rao (TotalHotkeyAlpha). */
  stake: amount.default(0n),
  validatorPermit: z.boolean().default(false),
  active: z.boolean().default(true),
  lastUpdate: z.number().int().nonnegative().default(0),
  /** Incentive in [0, 1] (stored as u16 × 65535). */
  incentive: z.number().min(0).max(1).default(0),
  axon: axonSchema.optional(),
});

const commitmentSchema = z
  .object({
    hotkey: account,
    /** The commitment text (UTF-8, ≤ 128 bytes). */
    data: z.string().optional(),
    /** Or raw bytes as 0x-hex (to seed non-UTF-8 garbage). */
    hex: z.string().regex(/^0x([0-9a-fA-F]{2})*$/).optional(),
    block: z.number().int().nonnegative().default(0),
  })
  .refine((c) => (c.data === undefined) !== (c.hex === undefined), { message: 'give exactly one of "data" or "hex"' });

export const genesisSchema = z.object({
  netuid: z.number().int().min(0).max(65535).default(102),
  tempo: z.number().int().min(1).max(65535).default(360),
  servingRateLimit: z.number().int().nonnegative().default(50),
  maxAllowedUids: z.number().int().min(1).max(65535).default(256),
  /** Registration cost of burned_register, rao. */
  burn: amount.default(0n),
  /** Commitments.MaxSpace: commitment bytes per hotkey per epoch. */
  maxSpace: z.number().int().nonnegative().default(3100),
  /** Subnet owner; default: the first neuron. */
  owner: z.object({ coldkey: account, hotkey: account }).optional(),
  accounts: z.array(z.object({ address: account, free: amount })).default([]),
  /** Registered neurons; a neuron's uid is its position in this list. */
  neurons: z.array(neuronSchema).default([]),
  commitments: z.array(commitmentSchema).default([]),
  /** Genesis timestamp (ms since epoch); default: start time. */
  timestamp: z.number().int().nonnegative().optional(),
});

export type GenesisInput = z.input<typeof genesisSchema>;
export type Genesis = z.output<typeof genesisSchema>;

export { GenesisError };

/** Validate a genesis object; errors name the field (`neurons.1.hotkey: ...`). */
export function parseGenesis(input: unknown, source = 'genesis'): Genesis {
  const r = genesisSchema.safeParse(input ?? {});
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new GenesisError(`invalid devnode ${source}:\n${lines.join('\n')}`);
  }
  return r.data;
}

/** A subnet with a validator (//Alice) and two miners (//Bob, //Charlie), all funded. */
export function defaultGenesis(): GenesisInput {
  return {
    netuid: 102,
    accounts: [
      { address: '//Alice', free: '1000000000000000' },
      { address: '//Bob', free: '1000000000000000' },
      { address: '//Charlie', free: '1000000000000000' },
    ],
    neurons: [
      { hotkey: '//Alice', stake: '1000000000000', validatorPermit: true },
      { hotkey: '//Bob' },
      { hotkey: '//Charlie' },
    ],
  };
}

let keyring: Keyring | null = null;

/** SS58 (prefix 42) of an address or dev URI. Needs cryptoWaitReady() for URIs. */
export function resolveAccount(a: string, field: string): string {
  if (a.startsWith('//')) {
    keyring ??= new Keyring({ type: 'sr25519', ss58Format: 42 });
    return keyring.addFromUri(a).address;
  }
  try {
    return encodeAddress(decodeAddress(a), 42);
  } catch {
    throw new GenesisError(`invalid devnode genesis: ${field}: "${a}" is not an SS58 address or a //dev URI`);
  }
}

export interface GenesisNeuron {
  uid: number;
  hotkey: string;
  coldkey: string;
}

/** Storage of block 0. Returns the state and the resolved neuron list. */
export async function buildGenesisState(
  codec: StorageCodec,
  g: Genesis,
  now: number,
): Promise<{ state: StateMap; neurons: GenesisNeuron[] }> {
  await cryptoWaitReady();
  const state: StateMap = new Map();
  const netuid = g.netuid;
  const S = 'subtensorModule';

  codec.write(state, 'system', 'number', [], 0);
  codec.write(state, 'timestamp', 'now', [], g.timestamp ?? now);
  for (const [i, a] of g.accounts.entries()) {
    const address = resolveAccount(a.address, `accounts.${i}.address`);
    codec.write(state, 'system', 'account', [address], { nonce: 0, providers: 1, data: { free: a.free } });
  }

  const neurons: GenesisNeuron[] = [];
  const seen = new Set<string>();
  for (const [uid, n] of g.neurons.entries()) {
    const hotkey = resolveAccount(n.hotkey, `neurons.${uid}.hotkey`);
    const coldkey = n.coldkey === undefined ? hotkey : resolveAccount(n.coldkey, `neurons.${uid}.coldkey`);
    if (seen.has(hotkey)) throw new GenesisError(`invalid devnode genesis: neurons.${uid}.hotkey: ${hotkey} is registered twice`);
    seen.add(hotkey);
    neurons.push({ uid, hotkey, coldkey });
    codec.write(state, S, 'keys', [netuid, uid], hotkey);
    codec.write(state, S, 'uids', [netuid, hotkey], uid);
    codec.write(state, S, 'isNetworkMember', [hotkey, netuid], true);
    codec.write(state, S, 'owner', [hotkey], coldkey);
    codec.write(state, S, 'blockAtRegistration', [netuid, uid], 0);
    codec.write(state, S, 'totalHotkeyAlpha', [hotkey, netuid], n.stake);
    if (n.axon !== undefined) {
      let ip: { ip: bigint; ipType: 4 | 6 };
      try {
        ip = ipFromString(n.axon.ip);
      } catch {
        throw new GenesisError(`invalid devnode genesis: neurons.${uid}.axon.ip: "${n.axon.ip}" is not an IP address`);
      }
      codec.write(state, S, 'axons', [netuid, hotkey], {
        block: n.axon.block,
        version: n.axon.version,
        ip: ip.ip,
        port: n.axon.port,
        ipType: ip.ipType,
        protocol: n.axon.protocol,
        placeholder1: 0,
        placeholder2: 0,
      });
    }
  }
  const count = neurons.length;
  const zeros = new Array<number>(count).fill(0);
  codec.write(state, S, 'networksAdded', [netuid], true);
  codec.write(state, S, 'subnetworkN', [netuid], count);
  codec.write(state, S, 'tempo', [netuid], g.tempo);
  codec.write(state, S, 'servingRateLimit', [netuid], g.servingRateLimit);
  codec.write(state, S, 'maxAllowedUids', [netuid], g.maxAllowedUids);
  codec.write(state, S, 'burn', [netuid], g.burn);
  codec.write(state, S, 'active', [netuid], g.neurons.map((n) => n.active));
  codec.write(state, S, 'validatorPermit', [netuid], g.neurons.map((n) => n.validatorPermit));
  codec.write(state, S, 'lastUpdate', [netuid], g.neurons.map((n) => n.lastUpdate));
  codec.write(state, S, 'incentive', [netuid], g.neurons.map((n) => Math.round(n.incentive * 65535)));
  for (const item of ['rank', 'trust', 'consensus', 'dividends', 'validatorTrust', 'pruningScores', 'emission']) {
    codec.write(state, S, item, [netuid], zeros);
  }
  const owner = g.owner
    ? { coldkey: resolveAccount(g.owner.coldkey, 'owner.coldkey'), hotkey: resolveAccount(g.owner.hotkey, 'owner.hotkey') }
    : neurons[0];
  if (owner !== undefined) {
    codec.write(state, S, 'subnetOwner', [netuid], owner.coldkey);
    codec.write(state, S, 'subnetOwnerHotkey', [netuid], owner.hotkey);
  }

  codec.write(state, 'commitments', 'maxSpace', [], g.maxSpace);
  for (const [i, c] of g.commitments.entries()) {
    const hotkey = resolveAccount(c.hotkey, `commitments.${i}.hotkey`);
    const bytes = c.hex !== undefined ? Buffer.from(c.hex.slice(2), 'hex') : Buffer.from(c.data ?? '', 'utf8');
    if (bytes.length > 128) {
      throw new GenesisError(`invalid devnode genesis: commitments.${i}: ${bytes.length} bytes; a Raw commitment holds at most 128`);
    }
    codec.write(state, 'commitments', 'commitmentOf', [netuid, hotkey], {
      deposit: 0,
      block: c.block,
      info: { fields: [{ [`Raw${bytes.length}`]: u8aToHex(bytes) }] },
    });
    codec.write(state, 'commitments', 'lastCommitment', [netuid, hotkey], c.block);
  }
  return { state, neurons };
}
