// The runtime the devnode pretends to be: real subtensor metadata (V15, spec 393) decoded with
// @polkadot/types. Every storage key/value, call, event and runtime-API result of the devnode is built
// from this registry, so the production client meets the same SCALE layouts as on finney.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Metadata, TypeRegistry } from '@polkadot/types';
import { expandMetadata } from '@polkadot/types/metadata/decorate';
import type { ChainProperties } from '@polkadot/types/interfaces';
import type { DecoratedMeta } from '@polkadot/types/metadata/decorate/types';
import { hexToU8a } from '@polkadot/util';

export const METADATA_FILE = 'subtensor-metadata-v15-spec393.hex';

// Four signed extensions of subtensor carry no data; declaring them keeps @polkadot/types from warning.
export const EMPTY_SIGNED_EXTENSIONS = {
  SudoTransactionExtension: { extrinsic: {}, payload: {} },
  CheckShieldedTxValidity: { extrinsic: {}, payload: {} },
  SubtensorTransactionExtension: { extrinsic: {}, payload: {} },
  DrandPriority: { extrinsic: {}, payload: {} },
};

export interface RuntimeVersionJson {
  specName: string;
  implName: string;
  authoringVersion: number;
  specVersion: number;
  implVersion: number;
  apis: Array<[string, number]>;
  transactionVersion: number;
  stateVersion: number;
  systemVersion: number;
}

export interface ChainSpec {
  registry: TypeRegistry;
  metadata: Metadata;
  decorated: DecoratedMeta;
  /** `0x` + the OpaqueMetadata bytes. */
  metadataHex: string;
  metadataBytes: Uint8Array;
  runtimeVersion: RuntimeVersionJson;
  /** pallet name → pallet index. */
  palletIndex: Map<string, number>;
}

/** Where the metadata file lives: beside this module in src/, or under src/ when running from dist/. */
export function metadataPath(): string {
  const candidates = [
    new URL(`./metadata/${METADATA_FILE}`, import.meta.url),
    new URL(`../../../src/devnet/chain/metadata/${METADATA_FILE}`, import.meta.url),
  ].map((u) => fileURLToPath(u));
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) {
    throw new Error(`devnode: subtensor metadata not found (looked in ${candidates.join(', ')})`);
  }
  return found;
}

let cached: ChainSpec | null = null;

/** Decode the metadata once per process (≈300 KB; immutable, so every devnode may share it). */
export function loadChainSpec(): ChainSpec {
  if (cached !== null) return cached;
  const metadataHex = readFileSync(metadataPath(), 'utf8').trim() as `0x${string}`;
  const registry = new TypeRegistry();
  const metadata = new Metadata(registry, metadataHex);
  const props = registry.createType('ChainProperties', { ss58Format: 42, tokenDecimals: 9, tokenSymbol: 'TAO' });
  registry.setChainProperties(props as unknown as ChainProperties);
  registry.setMetadata(metadata, undefined, EMPTY_SIGNED_EXTENSIONS, true);
  const decorated = expandMetadata(registry, metadata);
  const v = decorated.consts.system!.version!.toJSON() as unknown as Omit<RuntimeVersionJson, 'stateVersion'>;
  const runtimeVersion: RuntimeVersionJson = {
    specName: v.specName,
    implName: v.implName,
    authoringVersion: v.authoringVersion,
    specVersion: v.specVersion,
    implVersion: v.implVersion,
    apis: v.apis,
    transactionVersion: v.transactionVersion,
    stateVersion: 1,
    systemVersion: v.systemVersion,
  };
  const palletIndex = new Map<string, number>();
  for (const p of metadata.asLatest.pallets) palletIndex.set(p.name.toString(), p.index.toNumber());
  cached = { registry, metadata, decorated, metadataHex, metadataBytes: hexToU8a(metadataHex), runtimeVersion, palletIndex };
  return cached;
}
