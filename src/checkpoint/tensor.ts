// The tensor type every TS API of connito-miner passes around, and the dtype arithmetic that goes
// with it. A tensor is raw little-endian C-contiguous bytes plus a dtype and a shape; a state dict is
// an insertion-ordered Map of them. Nothing here allocates more than the caller asks for.

export type DType =
  | 'float64'
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

export interface Tensor {
  dtype: DType;
  /** Dimensions, outermost first; `[]` is a 0-d tensor holding one element. */
  shape: number[];
  /** numel(shape) × itemsize(dtype) bytes, little-endian, C (row-major) order. */
  data: Uint8Array;
}

/** name → tensor, in insertion order (the order files are written in). */
export type StateDict = Map<string, Tensor>;

/** What a lazy source knows about a tensor before its bytes are read. */
export interface TensorInfo {
  dtype: DType;
  shape: number[];
}

/**
 * A state dict whose tensors are loaded one at a time (a `.pt` or `.safetensors` reader, or a
 * trainer handing out weights). Hashing and writing walk it without holding every tensor at once.
 */
export interface TensorStore {
  /** Keys in the source's own order. */
  keys(): string[];
  info(key: string): TensorInfo;
  load(key: string): Promise<Tensor>;
}

/** Anything the hashers and writers accept: an in-memory state dict or a lazy store. */
export type TensorSource = StateDict | TensorStore;

const ITEMSIZE: Record<DType, number> = {
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export const DTYPES: readonly DType[] = Object.keys(ITEMSIZE) as DType[];

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(ITEMSIZE, x);
}

export function itemsize(dtype: DType): number {
  return ITEMSIZE[dtype];
}

export function isFloatingDType(dtype: DType): boolean {
  return dtype === 'float64' || dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16';
}

/** Product of the dimensions (1 for a 0-d tensor). Throws RangeError past 2^53. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`invalid dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
    if (!Number.isSafeInteger(n)) throw new RangeError(`shape [${shape.join(', ')}] has more than 2^53 elements`);
  }
  return n;
}

export function byteLength(info: TensorInfo): number {
  const n = numel(info.shape) * itemsize(info.dtype);
  if (!Number.isSafeInteger(n)) throw new RangeError(`tensor of shape [${info.shape.join(', ')}] is too large`);
  return n;
}

/** Builds a tensor after checking that the byte length matches dtype × shape. */
export function makeTensor(dtype: DType, shape: readonly number[], data: Uint8Array): Tensor {
  if (!isDType(dtype)) throw new TypeError(`unknown dtype ${String(dtype)}`);
  const want = numel(shape) * itemsize(dtype);
  if (data.byteLength !== want) {
    throw new RangeError(`tensor data is ${data.byteLength} bytes, dtype ${dtype} shape [${shape.join(', ')}] needs ${want}`);
  }
  return { dtype, shape: [...shape], data };
}

export function isTensorStore(src: TensorSource): src is TensorStore {
  return !(src instanceof Map);
}

/** Wraps an in-memory state dict as a store (so code can take either). */
export function storeOf(src: TensorSource): TensorStore {
  if (isTensorStore(src)) return src;
  return {
    keys: () => [...src.keys()],
    info: (key) => {
      const t = src.get(key);
      if (!t) throw new RangeError(`no tensor named ${key}`);
      return { dtype: t.dtype, shape: t.shape };
    },
    load: async (key) => {
      const t = src.get(key);
      if (!t) throw new RangeError(`no tensor named ${key}`);
      return t;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Float conversions. Rounding is round-to-nearest-even everywhere, as torch's `.to(dtype)` does.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 value → bfloat16 bit pattern (RNE; NaN stays a quiet NaN). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** float32 value → IEEE half bit pattern (RNE, overflow → ±inf, subnormals kept). */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Element values as float64 numbers (int64 through Number, so exact only below 2^53). */
export function toFloat64Array(t: Tensor): Float64Array {
  const n = numel(t.shape);
  const out = new Float64Array(n);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  for (let i = 0; i < n; i++) out[i] = readElement(dv, t.dtype, i);
  return out;
}

function readElement(dv: DataView, dtype: DType, i: number): number {
  switch (dtype) {
    case 'float64': return dv.getFloat64(i * 8, true);
    case 'float32': return dv.getFloat32(i * 4, true);
    case 'float16': return f16BitsToF32(dv.getUint16(i * 2, true));
    case 'bfloat16': return bf16BitsToF32(dv.getUint16(i * 2, true));
    case 'int64': return Number(dv.getBigInt64(i * 8, true));
    case 'int32': return dv.getInt32(i * 4, true);
    case 'int16': return dv.getInt16(i * 2, true);
    case 'int8': return dv.getInt8(i);
    case 'uint8': return dv.getUint8(i);
    case 'bool': return dv.getUint8(i) ? 1 : 0;
  }
}

/**
 * A tensor of `dtype` holding `values` (float → half/bfloat16 rounds to nearest even through
 * float32, as torch does for a float32 source; integers truncate toward zero).
 */
export function tensorFromValues(dtype: DType, shape: readonly number[], values: ArrayLike<number>): Tensor {
  const n = numel(shape);
  if (values.length !== n) throw new RangeError(`${values.length} values for shape [${shape.join(', ')}] (${n} elements)`);
  const data = new Uint8Array(n * itemsize(dtype));
  const dv = new DataView(data.buffer);
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    switch (dtype) {
      case 'float64': dv.setFloat64(i * 8, v, true); break;
      case 'float32': dv.setFloat32(i * 4, v, true); break;
      case 'float16': dv.setUint16(i * 2, f32ToF16Bits(Math.fround(v)), true); break;
      case 'bfloat16': dv.setUint16(i * 2, f32ToBf16Bits(Math.fround(v)), true); break;
      case 'int64': dv.setBigInt64(i * 8, BigInt(Math.trunc(v)), true); break;
      case 'int32': dv.setInt32(i * 4, Math.trunc(v), true); break;
      case 'int16': dv.setInt16(i * 2, Math.trunc(v), true); break;
      case 'int8': dv.setInt8(i, Math.trunc(v)); break;
      case 'uint8': dv.setUint8(i, Math.trunc(v)); break;
      case 'bool': dv.setUint8(i, v ? 1 : 0); break;
    }
  }
  return { dtype, shape: [...shape], data };
}

/** Converts between dtypes (float targets round to nearest even). */
export function castTensor(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t;
  if (dtype === 'float16' && t.dtype === 'float32') {
    const n = numel(t.shape);
    const src = new Float32Array(n);
    new Uint8Array(src.buffer).set(t.data);
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = f32ToF16Bits(src[i]!);
    return { dtype, shape: [...t.shape], data: new Uint8Array(out.buffer) };
  }
  return tensorFromValues(dtype, t.shape, toFloat64Array(t));
}

/** True when every element of a floating tensor is finite (integer tensors always are). */
export function isAllFinite(t: Tensor): boolean {
  const d = t.data;
  switch (t.dtype) {
    case 'float16':
      for (let i = 1; i < d.length; i += 2) if ((d[i]! & 0x7c) === 0x7c) return false;
      return true;
    case 'bfloat16':
      for (let i = 0; i < d.length; i += 2) if ((d[i + 1]! & 0x7f) === 0x7f && (d[i]! & 0x80) === 0x80) return false;
      return true;
    case 'float32':
      for (let i = 2; i < d.length; i += 4) if ((d[i + 1]! & 0x7f) === 0x7f && (d[i]! & 0x80) === 0x80) return false;
      return true;
    case 'float64':
      for (let i = 6; i < d.length; i += 8) if ((d[i + 1]! & 0x7f) === 0x7f && (d[i]! & 0xf0) === 0xf0) return false;
      return true;
    default:
      return true;
  }
}

/** Byte-wise equality of two tensors (dtype, shape and data). */
export function tensorsEqual(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length) return false;
  for (let i = 0; i < a.shape.length; i++) if (a.shape[i] !== b.shape[i]) return false;
  if (a.data.byteLength !== b.data.byteLength) return false;
  return Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(
    Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength),
  );
}
