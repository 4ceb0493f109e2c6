// dtype conversions agree bit for bit with torch's `.half()` / `.bfloat16()` (round to nearest even,
// subnormals, overflow, NaN), and the small tensor helpers behave.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  castTensor,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  isAllFinite,
  makeTensor,
  numel,
  tensorFromValues,
  toFloat64Array,
} from '../../src/checkpoint/tensor.js';
import { prng, PYTHON } from './helpers.js';

describe('float conversions', () => {
  it('match torch on 20k values including edge cases', () => {
    const rand = prng(42);
    const specials = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e-8, 5.96e-8, 2.98e-8, 6.1e-5, 6.097e-5, 3.4e38, -3.4e38, Infinity, -Infinity, NaN, 0.1, 1 / 3, 1.00048828125, 1.0009765625];
    const values = new Float32Array(20000);
    values.set(specials);
    const view = new Uint32Array(values.buffer);
    for (let i = specials.length; i < values.length; i++) {
      if (i % 2) view[i] = Math.floor(rand() * 2 ** 32); // random bit patterns: every exponent
      else values[i] = (rand() - 0.5) * 2 ** Math.floor(rand() * 40 - 20);
    }
    const hex = Buffer.from(values.buffer).toString('hex');
    const out = execFileSync(PYTHON, ['-c', `
import sys, torch, numpy
x = torch.from_numpy(numpy.frombuffer(bytes.fromhex(sys.stdin.read()), dtype=numpy.float32).copy())
print(x.half().view(torch.int16).numpy().astype("<u2").tobytes().hex())
print(x.bfloat16().view(torch.int16).numpy().astype("<u2").tobytes().hex())
`], { input: hex, encoding: 'utf8', maxBuffer: 64 << 20 }).trim().split('\n');
    const f16 = new Uint16Array(Buffer.from(out[0]!, 'hex').buffer.slice(0));
    const bf16 = new Uint16Array(Buffer.from(out[1]!, 'hex').buffer.slice(0));
    let bad = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      const h = f32ToF16Bits(v);
      const b = f32ToBf16Bits(v);
      if (Number.isNaN(v)) {
        // NaN payloads may differ; both must stay NaN
        if (!Number.isNaN(f16BitsToF32(h)) || !Number.isNaN(bf16BitsToF32(b))) bad++;
        continue;
      }
      if (h !== f16[i] || b !== bf16[i]) bad++;
    }
    expect(bad).toBe(0);
  });

  it('decode back exactly for representable values', () => {
    const bad: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const f = f16BitsToF32(h);
      if (!Number.isNaN(f) && f32ToF16Bits(f) !== h) bad.push(h);
      const b = bf16BitsToF32(h);
      if (!Number.isNaN(b) && f32ToBf16Bits(b) !== h) bad.push(h);
    }
    expect(bad).toEqual([]);
  });
});

describe('tensor helpers', () => {
  it('numel, makeTensor, casts and finiteness', () => {
    expect(numel([])).toBe(1);
    expect(numel([2, 0, 3])).toBe(0);
    expect(() => numel([2 ** 30, 2 ** 30, 2 ** 30])).toThrow(RangeError);
    expect(() => makeTensor('float32', [2], new Uint8Array(7))).toThrow(/needs 8/);
    const t = tensorFromValues('float32', [4], [1.5, -2, 0.1, 65504]);
    const h = castTensor(t, 'float16');
    expect([...toFloat64Array(h)]).toEqual([1.5, -2, f16BitsToF32(f32ToF16Bits(0.1)), 65504]);
    expect(isAllFinite(h)).toBe(true);
    for (const dtype of ['float16', 'bfloat16', 'float32', 'float64'] as const) {
      expect(isAllFinite(tensorFromValues(dtype, [3], [1, NaN, 2])), dtype).toBe(false);
      expect(isAllFinite(tensorFromValues(dtype, [3], [1, -Infinity, 2])), dtype).toBe(false);
      expect(isAllFinite(tensorFromValues(dtype, [3], [1, -3e38, 2])), dtype).toBe(dtype !== 'float16');
    }
    expect(isAllFinite(tensorFromValues('int32', [1], [-1]))).toBe(true);
  });
});
