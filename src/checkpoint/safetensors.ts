// `.safetensors` (Hugging Face): u64-LE header length N, N bytes of JSON header, then the data buffer.
// Validation follows the reference crate: N ≤ 100 000 000 and within the file, UTF-8 JSON object
// starting with '{', tensors sorted by offsets must tile the buffer exactly (no gap, no overlap, no
// slack at the end), and each tensor's byte length is numel × itemsize. Reading is lazy per tensor,
// so a 30 GiB base model can be loaded one tensor at a time.
import { open, type FileHandle } from 'node:fs/promises';
import { CheckpointError, openOrThrow } from './errors.js';
import { type DType, type Tensor, type TensorInfo, type TensorSource, type TensorStore, byteLength, numel, storeOf } from './tensor.js';

export const SAFETENSORS_MAX_HEADER = 100_000_000;

const TO_DTYPE: Record<string, DType> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16',
  I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const FROM_DTYPE: Record<DType, string> = Object.fromEntries(Object.entries(TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;

interface Entry {
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

export class SafetensorsFile implements TensorStore {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly dataStart: number,
    private readonly entries: Map<string, Entry>,
    /** The `__metadata__` map (string → string), or null. */
    readonly metadata: Record<string, string> | null,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    const fh = await openOrThrow(path, 'open the .safetensors file for reading', () => open(path, 'r'));
    const bad = (why: string): never => {
      throw new CheckpointError('CNM_ERR_SAFETENSORS', `invalid safetensors file: ${why}`, path);
    };
    try {
      const { size } = await fh.stat();
      if (size < 8) bad(`file is only ${size} bytes`);
      const lenBuf = Buffer.alloc(8);
      await fh.read(lenBuf, 0, 8, 0);
      const n64 = lenBuf.readBigUInt64LE(0);
      if (n64 > BigInt(SAFETENSORS_MAX_HEADER)) bad(`header length ${n64} exceeds ${SAFETENSORS_MAX_HEADER}`);
      const n = Number(n64);
      if (8 + n > size) bad(`header length ${n} runs past the end of the ${size}-byte file`);
      const hb = Buffer.alloc(n);
      const { bytesRead } = await fh.read(hb, 0, n, 8);
      if (bytesRead !== n) bad('short read of the header');
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(hb);
      } catch {
        return bad('header is not UTF-8');
      }
      if (!text.startsWith('{')) bad('header does not start with "{"');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return bad('header is not valid JSON');
      }
      if (typeof json !== 'object' || json === null || Array.isArray(json)) return bad('header is not a JSON object');
      let metadata: Record<string, string> | null = null;
      const list: Array<[string, Entry]> = [];
      for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
        if (name === '__metadata__') {
          if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) {
            bad('__metadata__ must map strings to strings');
          }
          metadata = v as Record<string, string>;
          continue;
        }
        const t = v as Record<string, unknown>;
        if (typeof t !== 'object' || t === null) return bad(`entry ${name} is not an object`);
        const dtype = typeof t.dtype === 'string' ? TO_DTYPE[t.dtype] : undefined;
        if (!dtype) return bad(`tensor ${name} has unsupported dtype ${JSON.stringify(t.dtype)}`);
        if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`tensor ${name} has an invalid shape`);
        const off = t.data_offsets;
        if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`tensor ${name} has invalid data_offsets`);
        list.push([name, { dtype, shape: t.shape as number[], begin: (off as number[])[0]!, end: (off as number[])[1]! }]);
      }
      const sorted = [...list].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
      let cursor = 0;
      for (const [name, e] of sorted) {
        if (e.begin !== cursor || e.end < e.begin) bad(`tensor ${name} has offsets [${e.begin}, ${e.end}) but the previous tensor ends at ${cursor} (gap or overlap)`);
        let want: number;
        try {
          want = byteLength({ dtype: e.dtype, shape: e.shape });
        } catch {
          return bad(`tensor ${name} has an absurd shape`);
        }
        if (e.end - e.begin !== want) bad(`tensor ${name} spans ${e.end - e.begin} bytes but ${e.dtype} [${e.shape.join(', ')}] needs ${want}`);
        cursor = e.end;
      }
      if (8 + n + cursor !== size) bad(`tensors cover ${cursor} bytes but the data buffer has ${size - 8 - n}`);
      return new SafetensorsFile(path, fh, 8 + n, new Map(list), metadata);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  info(key: string): TensorInfo {
    const e = this.entry(key);
    return { dtype: e.dtype, shape: [...e.shape] };
  }

  private entry(key: string): Entry {
    const e = this.entries.get(key);
    if (!e) throw new CheckpointError('CNM_ERR_CKPT_ARG', `no tensor named ${key}`, this.path);
    return e;
  }

  async load(key: string): Promise<Tensor> {
    const e = this.entry(key);
    const buf = Buffer.allocUnsafeSlow(e.end - e.begin);
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await this.fh.read(buf, done, Math.min(buf.length - done, 1 << 30), this.dataStart + e.begin + done);
      if (bytesRead === 0) throw new CheckpointError('CNM_ERR_SAFETENSORS', `file shrank while reading ${key}`, this.path);
      done += bytesRead;
    }
    return { dtype: e.dtype, shape: [...e.shape], data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

export async function readSafetensors(path: string): Promise<Map<string, Tensor>> {
  const f = await SafetensorsFile.open(path);
  try {
    const sd = new Map<string, Tensor>();
    for (const k of f.keys()) sd.set(k, await f.load(k));
    return sd;
  } finally {
    await f.close();
  }
}

/** Writes tensors in the source's order, header padded with spaces to an 8-byte boundary; fsyncs. */
export async function writeSafetensors(path: string, src: TensorSource, opts: { metadata?: Record<string, string>; fsync?: boolean } = {}): Promise<number> {
  const store = storeOf(src);
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let cursor = 0;
  const keys = store.keys();
  for (const k of keys) {
    if (k === '__metadata__') throw new CheckpointError('CNM_ERR_CKPT_ARG', 'a tensor may not be named __metadata__', path);
    const info = store.info(k);
    const n = byteLength(info);
    numel(info.shape);
    header[k] = { dtype: FROM_DTYPE[info.dtype], shape: info.shape, data_offsets: [cursor, cursor + n] };
    cursor += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const hb = Buffer.from(json, 'utf8');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(hb.length));
  const fh = await openOrThrow(path, 'create the .safetensors file', () => open(path, 'w'));
  try {
    let pos = 0;
    const write = async (b: Uint8Array): Promise<void> => {
      let off = 0;
      while (off < b.byteLength) {
        const r = await fh.write(b, off, b.byteLength - off, pos);
        off += r.bytesWritten;
        pos += r.bytesWritten;
      }
    };
    await write(lenBuf);
    await write(hb);
    for (const k of keys) {
      const t = await store.load(k);
      if (t.data.byteLength !== byteLength(store.info(k))) throw new CheckpointError('CNM_ERR_CKPT_ARG', `tensor ${k} has the wrong byte length`, path);
      await write(t.data);
    }
    if (opts.fsync ?? true) await fh.sync();
    return pos;
  } finally {
    await fh.close();
  }
}
