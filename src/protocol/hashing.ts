// The model hash (PROTOCOL.md §4.1–4.2): BLAKE2b with a 24-byte digest over, for every key in Python
// sort order, UTF-8(key) ‖ the tensor's raw little-endian C-order bytes. No lengths, shapes or dtypes
// enter the preimage. Tensors are pulled one at a time, so a lazy store (a `.pt` reader) hashes a
// multi-GiB file with one tensor in memory.
import { createBLAKE2b, type IHasher } from 'hash-wasm';
import type { Tensor, TensorSource, TensorStore } from '../checkpoint/tensor.js';
import { toHex } from './hex.js';
import { comparePy } from './pystr.js';

export const MODEL_HASH_BYTES = 24;

// hash-wasm copies each update into WASM memory; large slices amortise the call overhead.
const UPDATE_CHUNK = 8 << 20;

function asStore(src: TensorSource): TensorStore {
  if (!(src instanceof Map)) return src;
  return {
    keys: () => [...src.keys()],
    info: (k) => src.get(k)!,
    load: async (k) => src.get(k)!,
  };
}

/** Keys in the order the preimage uses (Python `sorted`, code-point order). */
export function sortedKeys(src: TensorSource): string[] {
  const keys = asStore(src).keys();
  const sorted = [...keys].sort(comparePy);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new RangeError(`duplicate state-dict key ${sorted[i]}`);
  }
  return sorted;
}

/**
 * The hash preimage as a stream of chunks (key bytes, then tensor bytes) — never one buffer.
 * Chunks may alias tensor memory: consume each before pulling the next if the source reuses it.
 */
export async function* serializeStateDict(src: TensorSource): AsyncGenerator<Uint8Array, void, undefined> {
  const store = asStore(src);
  for (const key of sortedKeys(src)) {
    yield new Uint8Array(Buffer.from(key, 'utf8'));
    const t: Tensor = await store.load(key);
    for (let o = 0; o < t.data.byteLength; o += UPDATE_CHUNK) {
      yield t.data.subarray(o, Math.min(o + UPDATE_CHUNK, t.data.byteLength));
    }
  }
}

/** Incremental model hasher for producers that already walk tensors in sorted-key order. */
export class ModelHasher {
  private constructor(private readonly h: IHasher) {}
  private lastKey: string | null = null;

  static async create(): Promise<ModelHasher> {
    const h = await createBLAKE2b(MODEL_HASH_BYTES * 8);
    h.init();
    return new ModelHasher(h);
  }

  /** Adds one tensor; keys must arrive in strictly increasing Python order. */
  add(key: string, data: Uint8Array): void {
    if (this.lastKey !== null && comparePy(this.lastKey, key) >= 0) {
      throw new RangeError(`model hash keys out of order: ${JSON.stringify(key)} after ${JSON.stringify(this.lastKey)}`);
    }
    this.lastKey = key;
    this.h.update(Buffer.from(key, 'utf8'));
    for (let o = 0; o < data.byteLength; o += UPDATE_CHUNK) this.h.update(data.subarray(o, Math.min(o + UPDATE_CHUNK, data.byteLength)));
  }

  digest(): Uint8Array {
    return this.h.digest('binary');
  }
}

/** `get_model_hash(sd, hex=False)`: the 24 raw digest bytes. */
export async function modelHash(src: TensorSource): Promise<Uint8Array> {
  const h = await createBLAKE2b(MODEL_HASH_BYTES * 8);
  h.init();
  for await (const chunk of serializeStateDict(src)) h.update(chunk);
  return h.digest('binary');
}

/** `get_model_hash(sd)`: 48 lowercase hex characters (the chain commit's `h`). */
export async function modelHashHex(src: TensorSource): Promise<string> {
  return toHex(await modelHash(src));
}

/** BLAKE2b-192 of raw bytes (the bench's reference comparison, and hashing a preimage directly). */
export async function blake2b192(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const h = await createBLAKE2b(MODEL_HASH_BYTES * 8);
  h.init();
  for await (const c of chunks) {
    for (let o = 0; o < c.byteLength; o += UPDATE_CHUNK) h.update(c.subarray(o, Math.min(o + UPDATE_CHUNK, c.byteLength)));
  }
  return h.digest('binary');
}
