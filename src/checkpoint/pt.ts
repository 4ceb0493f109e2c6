// PyTorch `.pt` files (PROTOCOL.md §7.3): a stored zip of `<prefix>/data.pkl` (pickle protocol 2),
// `<prefix>/data/<key>` storages, `<prefix>/version` and `<prefix>/byteorder`.
//
// Reading: `PtFile.open()` parses the directory and the pickle (allow-list unpickler, see pickle.ts),
// checks every tensor view against its storage, and loads tensors one at a time on demand.
// Writing: `writePt()` streams one tensor at a time in the exact layout torch 1.13 produces (same
// record order, 64-byte alignment, pickle opcodes and memo numbering), then fsyncs.
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { CheckpointError, openOrThrow } from './errors.js';
import { DEFAULT_PICKLE_LIMITS, PDict, PStorage, PTensor, type PickleLimits, type PValue, unpickle } from './pickle.js';
import { type DType, type Tensor, type TensorInfo, type TensorSource, type TensorStore, byteLength, isDType, itemsize, numel, storeOf } from './tensor.js';
import { centralDirectory, crc32, dataDescriptor, DEFAULT_ZIP_LIMITS, localHeader, readZipDirectory, type WrittenEntry, type ZipEntry, type ZipLimits } from './zip.js';

export interface PtReadOptions {
  pickle?: Partial<PickleLimits>;
  zip?: Partial<ZipLimits>;
  /** Check each storage record's CRC-32 when it is read (default true). */
  verifyCrc?: boolean;
  /** Largest tensor materialised by `load` (default max(4 × file size, 256 MiB)): stride-0 views could
   *  otherwise expand a tiny storage into an arbitrarily large allocation. */
  maxTensorBytes?: number;
  /** Most bytes `readPt` materialises in total (default max(4 × file size, 256 MiB)). */
  maxTotalBytes?: number;
}

/** Where the file keeps its tensors: the reference wraps them as `{"model_state_dict": {...}}`. */
export type PtLayout = 'model_state_dict' | 'bare';

interface TensorPlan {
  dtype: DType;
  shape: number[];
  stride: number[];
  offset: number;
  storage: PStorage;
  record: ZipEntry;
}

/** A `.pt` state dict opened for lazy reading. Implements TensorStore. */
export class PtFile implements TensorStore {
  private readonly verified = new Set<string>();
  private cache: { key: string; data: Uint8Array } | null = null;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly fileSize: number,
    /** The record prefix (`archive`, or the file stem when torch saved to a path). */
    readonly prefix: string,
    readonly layout: PtLayout,
    /** true when the state dict was pickled as an OrderedDict. */
    readonly ordered: boolean,
    private readonly plans: Map<string, TensorPlan>,
    private readonly opts: Required<Pick<PtReadOptions, 'verifyCrc' | 'maxTensorBytes'>>,
  ) {}

  static async open(path: string, opts: PtReadOptions = {}): Promise<PtFile> {
    const fh = await openOrThrow(path, 'open the .pt file for reading', () => open(path, 'r'));
    try {
      const { size } = await fh.stat();
      const entries = await readZipDirectory(fh, size, path, { ...DEFAULT_ZIP_LIMITS, ...opts.zip });
      const byName = new Map(entries.map((e) => [e.name, e]));
      const pkls = entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
      if (pkls.length !== 1) throw new CheckpointError('CNM_ERR_PT_FORMAT', `expected exactly one <prefix>/data.pkl record, found ${pkls.length}`, path);
      const pklEntry = pkls[0]!;
      const prefix = pklEntry.name.slice(0, -'/data.pkl'.length);
      const version = byName.get(`${prefix}/version`);
      if (!version || version.size > 16) throw new CheckpointError('CNM_ERR_PT_FORMAT', `missing or malformed ${prefix}/version record`, path);
      const versionText = (await readRecord(fh, version, path, true)).toString('latin1').trim();
      if (!/^\d+$/.test(versionText) || Number(versionText) < 1 || Number(versionText) > 16) {
        throw new CheckpointError('CNM_ERR_PT_FORMAT', `unsupported archive version ${JSON.stringify(versionText)}`, path);
      }
      const bo = byName.get(`${prefix}/byteorder`);
      if (bo) {
        const text = bo.size <= 16 ? (await readRecord(fh, bo, path, true)).toString('latin1') : '';
        if (text !== 'little') throw new CheckpointError('CNM_ERR_PT_FORMAT', `byteorder record says ${JSON.stringify(text.slice(0, 16))}; only little-endian files are supported`, path);
      }
      const limits = { ...DEFAULT_PICKLE_LIMITS, ...opts.pickle };
      if (pklEntry.size > limits.maxBytes) throw new CheckpointError('CNM_ERR_LIMIT', `data.pkl is ${pklEntry.size} bytes (limit ${limits.maxBytes})`, path);
      const pkl = await readRecord(fh, pklEntry, path, opts.verifyCrc ?? true);
      const root = unpickle(pkl, path, limits);
      const { dict, layout } = findStateDict(root, path);
      const plans = new Map<string, TensorPlan>();
      for (const [k, v] of dict.map) {
        if (typeof k !== 'string') throw new CheckpointError('CNM_ERR_NOT_STATE_DICT', `state dict key ${String(k)} is not a string`, path);
        if (!(v instanceof PTensor)) throw new CheckpointError('CNM_ERR_NOT_STATE_DICT', `state dict entry ${k} is not a tensor`, path);
        plans.set(k, planTensor(k, v, prefix, byName, path));
      }
      return new PtFile(path, fh, size, prefix, layout, dict.ordered, plans, {
        verifyCrc: opts.verifyCrc ?? true,
        maxTensorBytes: opts.maxTensorBytes ?? Math.max(4 * size, 256 << 20),
      });
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  keys(): string[] {
    return [...this.plans.keys()];
  }

  has(key: string): boolean {
    return this.plans.has(key);
  }

  info(key: string): TensorInfo {
    const p = this.plan(key);
    return { dtype: p.dtype, shape: [...p.shape] };
  }

  /** Storage layout of a tensor as stored (offset/stride in elements). */
  layoutOf(key: string): { storageKey: string; offset: number; stride: number[]; storageNumel: number } {
    const p = this.plan(key);
    return { storageKey: p.storage.key, offset: p.offset, stride: [...p.stride], storageNumel: p.storage.numel };
  }

  private plan(key: string): TensorPlan {
    const p = this.plans.get(key);
    if (!p) throw new CheckpointError('CNM_ERR_CKPT_ARG', `no tensor named ${key}`, this.path);
    return p;
  }

  /** Reads one tensor as a C-contiguous copy (views and strides applied). */
  async load(key: string): Promise<Tensor> {
    const p = this.plan(key);
    const n = numel(p.shape);
    const isz = itemsize(p.dtype);
    const bytes = n * isz;
    if (bytes > this.opts.maxTensorBytes) {
      throw new CheckpointError('CNM_ERR_LIMIT', `tensor ${key} would take ${bytes} bytes (limit ${this.opts.maxTensorBytes})`, this.path);
    }
    if (n === 0) return { dtype: p.dtype, shape: [...p.shape], data: new Uint8Array(0) };
    const contiguous = isContiguous(p.shape, p.stride);
    const whole = contiguous && p.offset === 0 && bytes === p.record.size;
    if (whole) {
      // The common case: one tensor per storage. Read (and check) the record straight into the result.
      const data = await readRecord(this.fh, p.record, this.path, this.opts.verifyCrc);
      this.verified.add(p.record.name);
      return { dtype: p.dtype, shape: [...p.shape], data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    }
    if (contiguous && (!this.opts.verifyCrc || this.verified.has(p.record.name))) {
      const buf = Buffer.allocUnsafeSlow(bytes);
      await readFully(this.fh, buf, p.record.dataOffset + p.offset * isz, this.path);
      return { dtype: p.dtype, shape: [...p.shape], data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
    }
    const storage = await this.storageBytes(p.record);
    const out = new Uint8Array(bytes);
    if (contiguous) {
      out.set(storage.subarray(p.offset * isz, p.offset * isz + bytes));
    } else {
      gather(storage, out, p.shape, p.stride, p.offset, isz);
    }
    return { dtype: p.dtype, shape: [...p.shape], data: out };
  }

  private async storageBytes(record: ZipEntry): Promise<Uint8Array> {
    if (this.cache?.key === record.name) return this.cache.data;
    const buf = await readRecord(this.fh, record, this.path, this.opts.verifyCrc);
    this.verified.add(record.name);
    const data = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    this.cache = { key: record.name, data };
    return data;
  }

  /** Every tensor, in file order, one at a time. */
  async *entries(): AsyncGenerator<[string, Tensor], void, undefined> {
    for (const k of this.plans.keys()) yield [k, await this.load(k)];
  }

  async close(): Promise<void> {
    this.cache = null;
    await this.fh.close();
  }
}

/** Reads a whole `.pt` state dict into memory (bounded by `maxTotalBytes`). */
export async function readPt(path: string, opts: PtReadOptions = {}): Promise<StateDictWithLayout> {
  const f = await PtFile.open(path, opts);
  try {
    const limit = opts.maxTotalBytes ?? Math.max(4 * f.fileSize, 256 << 20);
    let total = 0;
    for (const k of f.keys()) {
      total += byteLength(f.info(k));
      if (total > limit) throw new CheckpointError('CNM_ERR_LIMIT', `state dict would take more than ${limit} bytes in memory`, path);
    }
    const sd: StateDictWithLayout = Object.assign(new Map<string, Tensor>(), { layout: f.layout, ordered: f.ordered });
    for (const k of f.keys()) sd.set(k, await f.load(k));
    return sd;
  } finally {
    await f.close();
  }
}

export type StateDictWithLayout = Map<string, Tensor> & { layout: PtLayout; ordered: boolean };

function findStateDict(root: PValue, path: string): { dict: PDict; layout: PtLayout } {
  if (root instanceof PDict) {
    const inner = root.map.get('model_state_dict');
    if (inner instanceof PDict) return { dict: inner, layout: 'model_state_dict' };
    if (inner === undefined) {
      const bad = [...root.map].find(([, v]) => !(v instanceof PTensor));
      if (!bad) return { dict: root, layout: 'bare' };
      throw new CheckpointError('CNM_ERR_NOT_STATE_DICT', `file holds a dict without "model_state_dict" whose entry ${String(bad[0])} is not a tensor`, path);
    }
  }
  const what = root === null ? 'None' : typeof root === 'object' ? root.constructor.name : typeof root;
  throw new CheckpointError('CNM_ERR_NOT_STATE_DICT', `file holds a ${what}, not a state dict or {"model_state_dict": ...}`, path);
}

function planTensor(key: string, t: PTensor, prefix: string, records: Map<string, ZipEntry>, path: string): TensorPlan {
  const s = t.storage;
  const record = records.get(`${prefix}/data/${s.key}`);
  const where = `tensor ${key}`;
  if (!record) throw new CheckpointError('CNM_ERR_PT_BOUNDS', `${where} refers to storage ${s.key}, which has no record in the archive`, path);
  if (s.location !== 'cpu' && !/^cuda(:\d+)?$/.test(s.location)) throw new CheckpointError('CNM_ERR_PT_FORMAT', `${where} has storage location ${JSON.stringify(s.location)}`, path);
  const isz = itemsize(s.dtype);
  if (s.numel * isz !== record.size) {
    throw new CheckpointError('CNM_ERR_PT_BOUNDS', `storage ${s.key} declares ${s.numel} ${s.dtype} elements but its record has ${record.size} bytes`, path);
  }
  if (t.shape.length !== t.stride.length) throw new CheckpointError('CNM_ERR_PT_BOUNDS', `${where} has ${t.shape.length} sizes but ${t.stride.length} strides`, path);
  let n: number;
  try {
    n = numel(t.shape);
  } catch {
    throw new CheckpointError('CNM_ERR_PT_BOUNDS', `${where} has an absurd shape [${t.shape.join(', ')}]`, path);
  }
  if (n > 0) {
    // Highest element index the view touches must lie inside the storage (BigInt: no overflow).
    let last = BigInt(t.offset);
    for (let i = 0; i < t.shape.length; i++) last += BigInt(t.shape[i]! - 1) * BigInt(t.stride[i]!);
    if (last >= BigInt(s.numel)) {
      throw new CheckpointError('CNM_ERR_PT_BOUNDS', `${where} (offset ${t.offset}, size [${t.shape.join(', ')}], stride [${t.stride.join(', ')}]) reaches element ${last} of a ${s.numel}-element storage`, path);
    }
  } else if (t.offset > s.numel) {
    throw new CheckpointError('CNM_ERR_PT_BOUNDS', `${where} has storage offset ${t.offset} past its ${s.numel}-element storage`, path);
  }
  return { dtype: s.dtype, shape: t.shape, stride: t.stride, offset: t.offset, storage: s, record };
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i]! !== 1 && stride[i]! !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

function gather(src: Uint8Array, out: Uint8Array, shape: number[], stride: number[], offset: number, isz: number): void {
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  const total = out.length / isz;
  let srcEl = offset;
  for (let o = 0; o < total; o++) {
    const s = srcEl * isz;
    for (let b = 0; b < isz; b++) out[o * isz + b] = src[s + b]!;
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++;
      srcEl += stride[d]!;
      if (idx[d]! < shape[d]!) break;
      srcEl -= stride[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, Math.min(buf.length - done, 1 << 30), position + done);
    if (bytesRead === 0) throw new CheckpointError('CNM_ERR_PT_FORMAT', `file ends inside a record (wanted ${buf.length} bytes at ${position})`, path);
    done += bytesRead;
  }
}

async function readRecord(fh: FileHandle, e: ZipEntry, path: string, verifyCrc: boolean): Promise<Buffer> {
  const buf = Buffer.allocUnsafeSlow(e.size);
  await readFully(fh, buf, e.dataOffset, path);
  if (verifyCrc && crc32(buf) >>> 0 !== e.crc32 >>> 0) {
    throw new CheckpointError('CNM_ERR_PT_CRC', `record ${e.name} fails its CRC-32 check (corrupt or tampered file)`, path);
  }
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Writer.

const STORAGE_CLASS: Record<DType, string> = {
  float64: 'DoubleStorage', float32: 'FloatStorage', float16: 'HalfStorage', bfloat16: 'BFloat16Storage',
  int64: 'LongStorage', int32: 'IntStorage', int16: 'ShortStorage', int8: 'CharStorage', uint8: 'ByteStorage', bool: 'BoolStorage',
};

/**
 * Pickle protocol 2 of `{"model_state_dict": sd}` (or `sd` alone), opcode for opcode what CPython's
 * pickler emits for torch 1.13's `torch.save`: memoised strings/globals/tuples, BINGET on reuse,
 * SETITEMS batches of 1000, fresh `OrderedDict()` backward hooks per tensor.
 */
export function stateDictPickle(entries: ReadonlyArray<readonly [string, TensorInfo]>, opts: { wrap: boolean; orderedDict: boolean }): { pickle: Buffer; storageKeys: string[] } {
  const out: Buffer[] = [];
  let memoNext = 0;
  const memo = new Map<string, number>(); // identity of shared Python objects → memo index
  const w = (b: Buffer | number[]): void => {
    out.push(Buffer.isBuffer(b) ? b : Buffer.from(b));
  };
  // A memo opcode with a 1-byte index (BINPUT/BINGET) or a 4-byte one (LONG_BINPUT/LONG_BINGET).
  const memoOp = (short: number, long: number, i: number): void => {
    if (i < 256) return w([short, i]);
    const b = Buffer.alloc(5);
    b[0] = long;
    b.writeUInt32LE(i, 1);
    w(b);
  };
  const put = (): void => memoOp(0x71, 0x72, memoNext++);
  const get = (i: number): void => memoOp(0x68, 0x6a, i);
  const memoised = (id: string, emit: () => void): void => {
    const i = memo.get(id);
    if (i !== undefined) return get(i);
    emit();
    memo.set(id, memoNext);
    put();
  };
  const unicode = (s: string): void => {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = 0x58;
    h.writeUInt32LE(b.length, 1);
    w(h);
    w(b);
  };
  const str = (s: string, id: string): void => memoised(id, () => unicode(s));
  const global = (module: string, name: string): void =>
    memoised(`global:${module}.${name}`, () => w(Buffer.from(`c${module}\n${name}\n`, 'utf8')));
  const int = (v: number): void => {
    if (v >= 0 && v <= 0xff) w([0x4b, v]);
    else if (v >= 0 && v <= 0xffff) w([0x4d, v & 0xff, v >> 8]);
    else if (v >= -0x80000000 && v <= 0x7fffffff) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(v, 1);
      w(b);
    } else {
      // LONG1: minimal little-endian two's complement (CPython encode_long).
      let x = BigInt(v);
      const bytes: number[] = [];
      const nbytes = (x.toString(2).replace('-', '').length >> 3) + 1;
      for (let i = 0; i < nbytes; i++) {
        bytes.push(Number(x & 0xffn));
        x >>= 8n;
      }
      w([0x8a, nbytes, ...bytes]);
    }
  };
  // A fresh tuple object each time: memoised after creation (never hit again).
  const tuple = (items: readonly number[]): void => {
    if (items.length === 0) return w([0x29]);
    if (items.length <= 3) {
      items.forEach(int);
      w([0x84 + items.length]);
    } else {
      w([0x28]);
      items.forEach(int);
      w([0x74]);
    }
    put();
  };

  w([0x80, 0x02]);
  if (opts.wrap) {
    w([0x7d]);
    put();
    str('model_state_dict', 'const:model_state_dict');
  }
  if (opts.orderedDict) {
    global('collections', 'OrderedDict');
    w([0x29, 0x52]);
    put();
  } else {
    w([0x7d]);
    put();
  }
  const storageKeys: string[] = [];
  for (let start = 0; start < entries.length; start += 1000) {
    const batch = entries.slice(start, start + 1000);
    if (batch.length > 1) w([0x28]);
    for (const [key, info] of batch) {
      unicode(key);
      put();
      const sk = String(storageKeys.length);
      storageKeys.push(sk);
      global('torch._utils', '_rebuild_tensor_v2');
      w([0x28]); // args
      w([0x28]); // persistent id tuple
      str('storage', 'const:storage');
      global('torch', STORAGE_CLASS[info.dtype]);
      unicode(sk);
      put();
      str('cpu', 'const:cpu');
      const n = numel(info.shape);
      int(n);
      w([0x74]);
      put();
      w([0x51]); // BINPERSID
      int(0);
      tuple(info.shape);
      tuple(contiguousStrides(info.shape));
      w([0x89]); // requires_grad=False
      global('collections', 'OrderedDict');
      w([0x29, 0x52]); // OrderedDict() backward hooks
      put();
      w([0x74]); // args tuple
      put();
      w([0x52]);
      put();
    }
    w([batch.length > 1 ? 0x75 : 0x73]);
  }
  if (opts.wrap) w([0x73]);
  w([0x2e]);
  return { pickle: Buffer.concat(out), storageKeys };
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= Math.max(shape[i]!, 1);
  }
  return s;
}

const SYNC_EVERY = 64 << 20;

export interface PtWriteOptions {
  /** Wrap as `{"model_state_dict": sd}` like the reference (default true); false writes a bare dict. */
  wrap?: boolean;
  /** Pickle the state dict as an OrderedDict (like `model.state_dict()`); default false (plain dict). */
  orderedDict?: boolean;
  /** Record prefix (default: the file name without its last extension, as torch does for a path). */
  prefix?: string;
  /** Write a `byteorder` record (torch ≥ 2.0 does; 1.13 does not). Default true. */
  byteorder?: boolean;
  /** fsync before closing (default true). */
  fsync?: boolean;
  /** Write ZIP64 extra fields for every entry even when small (exercises the ZIP64 code paths). */
  forceZip64?: boolean;
  /** Also compute the SHA-256 of the file bytes as they are written. */
  sha256?: boolean;
}

export interface PtWriteResult {
  bytes: number;
  sha256: string | null;
}

/**
 * Writes a state dict as a torch-loadable `.pt`, one tensor in memory at a time (a TensorStore's
 * `load` is called once per tensor, in storage-record order). The file is created or truncated at
 * `path`; atomicity is the caller's (checkpoint directories write into a temporary directory).
 */
export async function writePt(path: string, src: TensorSource, opts: PtWriteOptions = {}): Promise<PtWriteResult> {
  const store = storeOf(src);
  const keys = store.keys();
  if (new Set(keys).size !== keys.length) throw new CheckpointError('CNM_ERR_CKPT_ARG', 'duplicate state-dict key', path);
  const infos = keys.map((k) => {
    const info = store.info(k);
    if (!isDType(info.dtype)) throw new CheckpointError('CNM_ERR_CKPT_ARG', `tensor ${k} has unsupported dtype ${String(info.dtype)}`, path);
    byteLength(info);
    return [k, info] as const;
  });
  const { pickle, storageKeys } = stateDictPickle(infos, { wrap: opts.wrap ?? true, orderedDict: opts.orderedDict ?? false });
  const prefix = opts.prefix ?? stemOf(path);
  const z64 = opts.forceZip64 ?? false;
  const hash: Hash | null = opts.sha256 ? createHash('sha256') : null;

  const fh = await openOrThrow(path, 'create the .pt file', () => open(path, 'w'));
  let cursor = 0;
  const written: WrittenEntry[] = [];
  let pendingTail: Buffer | null = null; // previous descriptor, sent with the next header
  // Flush to disk while writing: a background fdatasync every SYNC_EVERY bytes lets the disk work
  // while this thread computes CRCs, instead of one long flush at the end (and bounds dirty pages).
  const fsync = opts.fsync ?? true;
  let syncing: Promise<void> | null = null;
  let unsynced = 0;
  const maybeSync = (n: number): void => {
    unsynced += n;
    if (!fsync || syncing || unsynced < SYNC_EVERY) return;
    unsynced = 0;
    syncing = fh.datasync().finally(() => {
      syncing = null;
    });
  };
  // The write runs on a libuv thread while this thread hashes the same bytes (CRC, SHA-256).
  const writeBufs = async (bufs: Uint8Array[], alongside?: () => void): Promise<void> => {
    let total = 0;
    for (const b of bufs) total += b.byteLength;
    const pending = fh.writev(bufs, cursor);
    for (const b of bufs) hash?.update(b);
    alongside?.();
    let { bytesWritten } = await pending;
    // writev may write partially for huge buffers: finish the rest piece by piece.
    if (bytesWritten < total) {
      let skip = bytesWritten;
      for (const b of bufs) {
        if (skip >= b.byteLength) {
          skip -= b.byteLength;
          continue;
        }
        let off = skip;
        skip = 0;
        while (off < b.byteLength) {
          const r = await fh.write(b, off, b.byteLength - off, cursor + bytesWritten);
          off += r.bytesWritten;
          bytesWritten += r.bytesWritten;
        }
      }
    }
    cursor += total;
  };
  const record = async (name: string, data: Uint8Array): Promise<void> => {
    const full = `${prefix}/${name}`;
    const head = localHeader(full, cursor + (pendingTail?.length ?? 0), data.byteLength, z64);
    const bufs: Uint8Array[] = pendingTail ? [pendingTail, head] : [head];
    const headerOffset = cursor + (pendingTail?.length ?? 0);
    if (data.byteLength) bufs.push(data);
    let crc = 0;
    await writeBufs(bufs, () => {
      crc = crc32(data) >>> 0;
    });
    written.push({ name: full, headerOffset, size: data.byteLength, crc32: crc });
    pendingTail = data.byteLength > 0 ? dataDescriptor(crc, data.byteLength, z64) : null;
    maybeSync(data.byteLength);
  };
  try {
    await record('data.pkl', pickle);
    if (opts.byteorder ?? true) await record('byteorder', Buffer.from('little'));
    // torch writes storages in sorted order of their (string) keys: "0", "1", "10", "11", ..., "2".
    const order = storageKeys.map((sk, i) => [sk, i] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [sk, i] of order) {
      const [key, info] = infos[i]!;
      const t = await store.load(key);
      if (t.dtype !== info.dtype || t.shape.length !== info.shape.length || t.shape.some((d, j) => d !== info.shape[j])) {
        throw new CheckpointError('CNM_ERR_CKPT_ARG', `tensor ${key} changed dtype/shape between info() and load()`, path);
      }
      if (t.data.byteLength !== byteLength(info)) {
        throw new CheckpointError('CNM_ERR_CKPT_ARG', `tensor ${key} has ${t.data.byteLength} bytes, expected ${byteLength(info)}`, path);
      }
      await record(`data/${sk}`, t.data);
    }
    await record('version', Buffer.from('3\n'));
    const cdOffset = cursor + (pendingTail ? (pendingTail as Buffer).length : 0);
    const tail = centralDirectory(written, cdOffset, z64);
    await writeBufs(pendingTail ? [pendingTail, tail] : [tail]);
    if (syncing) await syncing;
    if (fsync) await fh.sync();
  } finally {
    await (syncing as Promise<void> | null)?.catch(() => undefined);
    await fh.close();
  }
  return { bytes: cursor, sha256: hash ? hash.digest('hex') : null };
}

function stemOf(path: string): string {
  const b = basename(path);
  const dot = b.lastIndexOf('.');
  return dot > 0 ? b.slice(0, dot) : b;
}
