// Typed access to the devnode's state: a Map from hex storage key to hex SCALE value, read and written
// through the metadata's storage entries (keys = twox128(pallet) ++ twox128(item) ++ hashed args).

import { StorageKey } from '@polkadot/types';
import type { StorageEntry } from '@polkadot/types/primitive/types';
import type { Codec } from '@polkadot/types/types';
import { hexToU8a, u8aToHex } from '@polkadot/util';
import type { ChainSpec } from './spec.js';

/** One block's state. Keys and values are lowercase 0x-hex. */
export type StateMap = Map<string, string>;

export class StorageCodec {
  readonly #spec: ChainSpec;
  readonly #types = new Map<string, string>();

  constructor(spec: ChainSpec) {
    this.#spec = spec;
  }

  entry(section: string, method: string): StorageEntry {
    const e = this.#spec.decorated.query[section]?.[method];
    if (e === undefined) throw new Error(`devnode: no storage item ${section}.${method} in the metadata`);
    return e;
  }

  key(section: string, method: string, args: unknown[] = []): string {
    const e = this.entry(section, method);
    return new StorageKey(this.#spec.registry, e.meta.type.isPlain ? e : [e, args]).toHex();
  }

  /** Prefix of a map, optionally with its leading key parts (for getKeysPaged). */
  prefix(section: string, method: string, args: unknown[] = []): string {
    return u8aToHex(this.entry(section, method).keyPrefix(...args));
  }

  valueType(section: string, method: string): string {
    const k = `${section}.${method}`;
    let t = this.#types.get(k);
    if (t === undefined) {
      const ty = this.entry(section, method).meta.type;
      t = this.#spec.registry.createLookupType(ty.isPlain ? ty.asPlain : ty.asMap.value);
      this.#types.set(k, t);
    }
    return t;
  }

  encode(section: string, method: string, value: unknown): string {
    // SCALE bytes (toU8a): Codec.toHex() of a bare integer is big-endian, not its encoding.
    return u8aToHex(this.#spec.registry.createType(this.valueType(section, method), value).toU8a());
  }

  decode<T extends Codec = Codec>(section: string, method: string, hex: string): T {
    // Bytes, not the hex string: createType reads a hex string given to an integer type as big-endian.
    return this.#spec.registry.createType(this.valueType(section, method), hexToU8a(hex)) as unknown as T;
  }

  /** The stored value, or null when the key is absent. */
  read<T extends Codec = Codec>(state: StateMap, section: string, method: string, args: unknown[] = []): T | null {
    const v = state.get(this.key(section, method, args));
    return v === undefined ? null : this.decode<T>(section, method, v);
  }

  /** The stored value, or the item's default (ValueQuery fallback) when absent. */
  readOrDefault<T extends Codec = Codec>(state: StateMap, section: string, method: string, args: unknown[] = []): T {
    const v = state.get(this.key(section, method, args));
    if (v !== undefined) return this.decode<T>(section, method, v);
    return this.decode<T>(section, method, u8aToHex(this.entry(section, method).meta.fallback.toU8a(true)));
  }

  write(state: StateMap, section: string, method: string, args: unknown[], value: unknown): void {
    state.set(this.key(section, method, args), this.encode(section, method, value));
  }

  remove(state: StateMap, section: string, method: string, args: unknown[] = []): void {
    state.delete(this.key(section, method, args));
  }
}
