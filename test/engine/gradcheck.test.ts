// Finite-difference gradient checks, double precision (native/cpu/gradcheck.cc through the addon's
// test-only `_gradCheck`). Central differences with h = 1e-5·max(1, |x|).
//
// Tolerances:
//   kernels (random inputs, f = Σ g ⊙ op(x)): max |a − n| / max(|a|, |n|, 1e-8) < 1e-5 at every
//     checked coordinate (measured: ≤ 1e-6);
//   whole model (FD of the mean loss w.r.t. sampled coordinates of every trainable expert tensor):
//     max |a − n| ≤ 1e-5 · max |a| per tensor (measured: ~1e-8; the loss is O(1) so FD rounding
//     noise is ~1e-11 in absolute terms and tiny gradient entries make a per-entry ratio useless).
import { describe, expect, it } from 'vitest';

import { loadNativeAddon } from '../../src/trainer/native.js';
import { DEEP, DEEP_ALLOWED, TINY, TINY_ALLOWED } from './helpers.js';

interface Check {
  op: string;
  checked: number;
  skipped: number;
  maxAbsErr: number;
  maxRelErr: number;
  maxAbsGrad: number;
}

const addon = loadNativeAddon();
const gradCheck = (spec: Record<string, unknown>) => addon._gradCheck(spec) as Promise<Check[]>;

describe('finite-difference gradient checks (float64)', () => {
  const ops = ['embedding', 'rmsnorm', 'rope', 'attention', 'swiglu', 'router', 'cross_entropy'];
  for (const op of ops) {
    it(`kernel ${op}`, async () => {
      for (const seed of [1, 2]) {
        const results = await gradCheck({ op, seed });
        expect(results.length).toBeGreaterThan(0);
        for (const r of results) {
          expect(r.checked, r.op).toBeGreaterThan(10);
          expect(r.maxAbsGrad, `${r.op}: gradient is not trivially zero`).toBeGreaterThan(1e-3);
          expect(r.maxRelErr, `${r.op} seed ${seed}`).toBeLessThan(1e-5);
          // Router: the perturbation must not flip a top-k choice in this fixture (away from ties).
          expect(r.skipped, r.op).toBe(0);
        }
      }
    });
  }

  const modelCheck = async (config: object, allowedExperts: object, extra: Record<string, unknown>) => {
    const results = await gradCheck({ op: 'model', config, allowedExperts, seed: 5, maxCoords: 120, ...extra });
    let withGrad = 0;
    for (const r of results) {
      expect(r.op.startsWith('model:model.layers.')).toBe(true);
      expect(r.checked).toBe(120);
      if (r.maxAbsGrad > 0) withGrad++;
      expect(r.maxAbsErr, r.op).toBeLessThanOrEqual(1e-5 * r.maxAbsGrad + 1e-12);
    }
    return { results, withGrad };
  };

  it('whole tiny model: 2 layers (dense + MoE), 8 experts of which 4 allowed, H=32', async () => {
    const { results, withGrad } = await modelCheck({ ...TINY, initializer_range: 0.3 }, TINY_ALLOWED, { batch: 2, seq: 16 });
    expect(results).toHaveLength(8); // 4 experts × {gate_up_proj, down_proj}
    expect(withGrad).toBeGreaterThanOrEqual(6);
  });

  it('MoE/dense/MoE with q LoRA, top-2, shared experts, YaRN: layer-0 experts see every op of layers 1–2 in backward', async () => {
    const { results, withGrad } = await modelCheck({ ...DEEP, initializer_range: 0.3 }, DEEP_ALLOWED, { batch: 2, seq: 12 });
    expect(results).toHaveLength(16);
    expect(withGrad).toBeGreaterThanOrEqual(14);
  });

  it('the same with recompute (activations rebuilt in backward) gives the same gradients', async () => {
    const a = await gradCheck({ op: 'model', config: { ...DEEP, initializer_range: 0.3 }, allowedExperts: DEEP_ALLOWED, seed: 9, maxCoords: 30, batch: 1, seq: 10 });
    const b = await gradCheck({ op: 'model', config: { ...DEEP, initializer_range: 0.3 }, allowedExperts: DEEP_ALLOWED, seed: 9, maxCoords: 30, batch: 1, seq: 10, recompute: true });
    expect(b.map((r) => r.op)).toEqual(a.map((r) => r.op));
    for (let i = 0; i < a.length; i++) {
      expect(b[i]!.maxAbsGrad).toBe(a[i]!.maxAbsGrad);
      expect(b[i]!.maxAbsErr).toBeLessThanOrEqual(1e-5 * b[i]!.maxAbsGrad + 1e-12);
    }
  });
});
