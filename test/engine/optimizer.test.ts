// Optimizer, schedule, loss scaling, accumulation and state round trips of the real engine, checked
// against values this test computes itself (float64) and against vectors/lr_schedule.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { createEngine, type Engine, type OptimizerState } from '../../src/trainer/engine.js';
import {
  DEEP,
  DEEP_ALLOWED,
  Rng,
  TINY,
  TINY_ALLOWED,
  byName,
  bytesF32,
  engineOptions,
  randomBatch,
  relErr,
  sameBytes,
  tinyEngine,
} from './helpers.js';

/** transformers' cosine-with-warmup multiplier, written here from PROTOCOL §10.1 (independent of the engine). */
function multiplier(step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  const progress = (step - warmup) / Math.max(1, total - warmup);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
}

async function zeroState(engine: Engine, step: number, scale = 1, goodSteps = 0): Promise<OptimizerState> {
  const s = await engine.exportOptimizerState();
  return { step, scale, goodSteps, tensors: s.tensors.map((t) => ({ ...t, data: new Uint8Array(t.data.length) })) };
}

describe('optimizer and state', () => {
  it('frozen weights stay bit-identical over 10 updates while every trainable tensor moves', async () => {
    const { engine } = await tinyEngine(DEEP, DEEP_ALLOWED, { optimizer: { lr: 1e-2, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1 } });
    const before = byName(await engine.exportWeights());
    const rng = new Rng(3);
    for (let s = 0; s < 10; s++) {
      await engine.trainStep(randomBatch(rng, DEEP.vocab_size, 2, 12));
      const o = await engine.optimizerStep();
      expect(o.skipped).toBe(false);
      expect(o.step).toBe(s + 1);
    }
    const after = await engine.exportWeights();
    let frozen = 0;
    let trained = 0;
    for (const t of after) {
      const b = before.get(t.name)!;
      if (t.name.includes('.mlp.experts.')) {
        expect(sameBytes(t.data, b.data), `${t.name} should have changed`).toBe(false);
        trained++;
      } else {
        expect(sameBytes(t.data, b.data), `${t.name} is frozen`).toBe(true);
        frozen++;
      }
    }
    expect(trained).toBe(16);
    expect(frozen).toBeGreaterThan(20);
    engine.dispose();
  });

  it('weights round-trip bit-exactly through export → import in float32, float16 and bfloat16', async () => {
    const { engine: a } = await tinyEngine(TINY, TINY_ALLOWED);
    const b = await createEngine(engineOptions(TINY, TINY_ALLOWED, { seed: 99 }));
    for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
      const out = await a.exportWeights({ dtype });
      expect(out.every((t) => t.dtype === dtype)).toBe(true);
      const r = await b.loadWeights(out);
      expect(r.loaded).toBe(out.length);
      expect(r.missing).toEqual([]);
      const back = byName(await b.exportWeights({ dtype }));
      for (const t of out) expect(sameBytes(back.get(t.name)!.data, t.data), `${dtype} ${t.name}`).toBe(true);
    }
    // 16-bit inputs reach float32 exactly and come back unchanged (incl. subnormals, max and -0).
    const name = 'model.layers.1.mlp.experts.3.down_proj';
    const shape = [32, 16];
    const half = new Uint16Array(512);
    const special = [0x0001, 0x03ff, 0x0400, 0x7bff, 0x8000, 0xfbff, 0x3c00, 0xbc01];
    for (let i = 0; i < half.length; i++) half[i] = i < special.length ? special[i]! : (i * 2654435761) & 0x7bff;
    const data = new Uint8Array(half.buffer);
    await b.loadWeights([{ name, dtype: 'float16', shape, data }]);
    const [h] = await b.exportWeights({ names: [name], dtype: 'float16' });
    expect(sameBytes(h!.data, data)).toBe(true);
    const [f] = await b.exportWeights({ names: [name] });
    expect(bytesF32(f!)[0]).toBe(2 ** -24);
    expect(bytesF32(f!)[3]).toBe(65504);
    expect(Object.is(bytesF32(f!)[4], -0)).toBe(true);
    a.dispose();
    b.dispose();
  });

  it('optimizer state round-trips: a second engine continues bit-identically', async () => {
    const opts = { optimizer: { lr: 5e-3, betas: [0.9, 0.95] as [number, number], eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1 }, precision: 'fp16-mixed' as const };
    const { engine: a, weights } = await tinyEngine(TINY, TINY_ALLOWED, opts);
    const rng = new Rng(5);
    for (let s = 0; s < 3; s++) {
      await a.trainStep(randomBatch(rng, TINY.vocab_size, 2, 10));
      await a.optimizerStep();
    }
    const state = await a.exportOptimizerState();
    expect(state.step).toBe(3);
    expect(state.scale).toBe(65536);
    expect(state.goodSteps).toBe(3);
    expect(state.tensors).toHaveLength(16);
    expect(state.tensors.every((t) => t.dtype === 'float32')).toBe(true);

    const { engine: b } = await tinyEngine(TINY, TINY_ALLOWED, opts);
    await b.loadWeights(await a.exportWeights({ trainableOnly: true }));
    await b.importOptimizerState(state);
    const back = await b.exportOptimizerState();
    expect(back.step).toBe(3);
    expect(back.goodSteps).toBe(3);
    const st = byName(state.tensors);
    for (const t of back.tensors) expect(sameBytes(t.data, st.get(t.name)!.data), t.name).toBe(true);

    const batch = randomBatch(rng, TINY.vocab_size, 2, 10);
    for (const e of [a, b]) {
      await e.trainStep(batch);
      const o = await e.optimizerStep();
      expect(o.step).toBe(4);
    }
    const wa = byName(await a.exportWeights({ trainableOnly: true }));
    for (const t of await b.exportWeights({ trainableOnly: true })) expect(sameBytes(t.data, wa.get(t.name)!.data)).toBe(true);
    expect(weights.length).toBeGreaterThan(0);
    a.dispose();
    b.dispose();
  });

  it('AdamW, LR schedule and clipping match an independent float64 computation for 5 updates', async () => {
    const lr0 = 0.05;
    const wd = 0.1;
    const [b1, b2] = [0.9, 0.95];
    const eps = 1e-8;
    const maxNorm = 0.02;
    const warmup = 2;
    const total = 8;
    const { engine } = await tinyEngine(TINY, TINY_ALLOWED, {
      optimizer: { lr: lr0, betas: [b1, b2], eps, weightDecay: wd, maxGradNorm: maxNorm },
      schedule: { warmupSteps: warmup, totalSteps: total },
    });
    const rng = new Rng(8);
    const m = new Map<string, Float64Array>();
    const v = new Map<string, Float64Array>();
    let clipped = 0;
    for (let k = 0; k < 5; k++) {
      await engine.trainStep(randomBatch(rng, TINY.vocab_size, 2, 12));
      await engine.trainStep(randomBatch(rng, TINY.vocab_size, 2, 12));
      const grads = await engine._exportGradients(); // ÷ GA = 2, before clipping
      const before = byName(await engine.exportWeights({ trainableOnly: true }));
      const o = await engine.optimizerStep();
      const after = byName(await engine.exportWeights({ trainableOnly: true }));

      let sq = 0;
      for (const g of grads) for (const x of bytesF32(g)) sq += x * x;
      const norm = Math.sqrt(sq);
      // The engine sums squares in float blocks of 4096 elements, then in double.
      expect(Math.abs(o.gradNorm - norm) / norm).toBeLessThan(1e-6);
      const coef = Math.min(1, maxNorm / (norm + 1e-6));
      if (coef < 1) clipped++;
      const lr = lr0 * multiplier(k, warmup, total);
      expect(Math.abs(o.lr - lr)).toBeLessThan(1e-15);
      expect(o.step).toBe(k + 1);
      const t = k + 1;
      const bc1 = 1 - b1 ** t;
      const bc2 = 1 - b2 ** t;
      for (const g of grads) {
        const gv = bytesF32(g);
        const p0 = bytesF32(before.get(g.name)!);
        const p1 = bytesF32(after.get(g.name)!);
        const mm = m.get(g.name) ?? new Float64Array(gv.length);
        const vv = v.get(g.name) ?? new Float64Array(gv.length);
        let maxDiff = 0;
        let maxStep = 0;
        for (let i = 0; i < gv.length; i++) {
          const gi = gv[i]! * coef;
          mm[i] = b1 * mm[i]! + (1 - b1) * gi;
          vv[i] = b2 * vv[i]! + (1 - b2) * gi * gi;
          const want = p0[i]! * (1 - lr * wd) - (lr / bc1) * (mm[i]! / (Math.sqrt(vv[i]!) / Math.sqrt(bc2) + eps));
          maxDiff = Math.max(maxDiff, Math.abs(p1[i]! - want));
          maxStep = Math.max(maxStep, Math.abs(want - p0[i]!));
        }
        m.set(g.name, mm);
        v.set(g.name, vv);
        // float32 storage: 1e-6 absolute on weights of size ~0.3 and steps of size ~lr.
        expect(maxDiff, `${g.name} update ${t}`).toBeLessThan(1e-6);
        if (lr > 0) expect(maxStep).toBeGreaterThan(1e-3);
      }
    }
    expect(clipped).toBeGreaterThanOrEqual(3);
    engine.dispose();
  });

  it('reports the learning rates of vectors/lr_schedule.json at each completed-step count', async () => {
    const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'engine', 'lr_schedule.json'), 'utf8')) as {
      cases: { warmup: number; total: number; step: number; multiplier: number; lr: number }[];
    };
    const settings = [...new Set(vectors.cases.map((c) => `${c.warmup}/${c.total}`))];
    expect(settings).toHaveLength(2);
    const batch = randomBatch(new Rng(1), TINY.vocab_size, 1, 8);
    for (const s of settings) {
      const [warmup, total] = s.split('/').map(Number) as [number, number];
      const engine = await createEngine(
        engineOptions(TINY, TINY_ALLOWED, { optimizer: { lr: 1e-5, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1 }, schedule: { warmupSteps: warmup, totalSteps: total } }),
      );
      for (const c of vectors.cases.filter((x) => x.warmup === warmup && x.total === total)) {
        await engine.importOptimizerState(await zeroState(engine, c.step));
        await engine.trainStep(batch);
        const o = await engine.optimizerStep();
        expect(o.skipped).toBe(false);
        expect(o.step).toBe(c.step + 1);
        expect(Math.abs(o.lr - c.lr), `warmup ${warmup} total ${total} step ${c.step}`).toBeLessThanOrEqual(1e-12 * Math.max(c.lr, 1e-5));
      }
      engine.dispose();
    }
  });

  it('fp16-mixed loss scaling: gradients do not depend on the scale; overflow skips and halves; 2000 good steps double', async () => {
    const batch = randomBatch(new Rng(4), TINY.vocab_size, 2, 12);
    const { engine: f32 } = await tinyEngine(TINY, TINY_ALLOWED);
    const { engine: f16 } = await tinyEngine(TINY, TINY_ALLOWED, { precision: 'fp16-mixed' });
    expect(f32.info().precision).toBe('fp32');
    await f32.trainStep(batch);
    await f16.trainStep(batch);
    const g32 = byName(await f32._exportGradients());
    for (const g of await f16._exportGradients()) expect(relErr(bytesF32(g), bytesF32(g32.get(g.name)!))).toBeLessThan(1e-6);
    const o32 = await f32.optimizerStep();
    const o16 = await f16.optimizerStep();
    expect([o32.scaleBefore, o32.scaleAfter]).toEqual([1, 1]);
    expect([o16.scaleBefore, o16.scaleAfter, o16.skipped]).toEqual([65536, 65536, false]);

    // Overflow: an lm_head 1e4× larger and a (finite) scale of 1e38 make the scaled gradients
    // overflow float32, as too large a scale overflows fp16 gradients on a GPU.
    const { engine: big, weights } = await tinyEngine(TINY, TINY_ALLOWED, { precision: 'fp16-mixed' });
    const head = weights.find((w) => w.name === 'lm_head.weight')!;
    await big.loadWeights([{ ...head, data: new Uint8Array(bytesF32(head).map((x) => x * 1e4).buffer) }]);
    const trainableBefore = byName(await big.exportWeights({ trainableOnly: true }));
    await big.importOptimizerState({ ...(await big.exportOptimizerState()), scale: 1e38 });
    const loss = await big.trainStep(batch);
    expect(Number.isFinite(loss.loss)).toBe(true);
    const over = await big.optimizerStep();
    expect(over.skipped).toBe(true);
    expect(over.step).toBe(0);
    expect(over.scaleBefore).toBe(1e38);
    expect(over.scaleAfter).toBe(5e37);
    expect(over.nonFinite.length).toBeGreaterThan(0);
    expect(over.nonFinite.every((n) => /^model\.layers\.1\.mlp\.experts\.\d+\.(gate_up|down)_proj$/.test(n))).toBe(true);
    for (const t of await big.exportWeights({ trainableOnly: true })) expect(sameBytes(t.data, trainableBefore.get(t.name)!.data)).toBe(true);
    const after = await big.exportOptimizerState();
    expect([after.step, after.scale, after.goodSteps]).toEqual([0, 5e37, 0]);
    big.dispose();

    // Growth: the 2000th consecutive good update doubles the scale.
    await f16.importOptimizerState({ ...(await f16.exportOptimizerState()), scale: 1024, goodSteps: 1999 });
    await f16.trainStep(batch);
    const grow = await f16.optimizerStep();
    expect([grow.skipped, grow.scaleBefore, grow.scaleAfter]).toEqual([false, 1024, 2048]);
    expect((await f16.exportOptimizerState()).goodSteps).toBe(0);

    // Without a scaler the scale is 1 and cannot be imported as anything else.
    await expect(f32.importOptimizerState({ ...(await f32.exportOptimizerState()), scale: 2 })).rejects.toMatchObject({ code: 'CNM_ERR_ENGINE_INPUT' });
    f32.dispose();
    f16.dispose();
  });

  it('gradient accumulation divides by the number of micro-batches (or accumulationSteps); evalLoss accumulates nothing', async () => {
    const rng = new Rng(12);
    const b1 = randomBatch(rng, TINY.vocab_size, 2, 10);
    const b2 = randomBatch(rng, TINY.vocab_size, 1, 14);
    const { engine: a } = await tinyEngine(TINY, TINY_ALLOWED);
    const { engine: b } = await tinyEngine(TINY, TINY_ALLOWED);
    const l1 = await a.trainStep(b1);
    const e1 = await a.evalLoss(b1);
    expect(Math.abs(e1.loss - l1.loss)).toBeLessThan(1e-12);
    expect(e1.tokens).toBe(l1.tokens);
    const g1 = byName(await a._exportGradients());
    await a.trainStep(b2);
    const g12 = await a._exportGradients();
    const g12by4 = byName(await a._exportGradients({ accumulationSteps: 4 }));
    await b.trainStep(b2);
    const g2 = byName(await b._exportGradients());
    for (const g of g12) {
      const x = bytesF32(g);
      const x1 = bytesF32(g1.get(g.name)!);
      const x2 = bytesF32(g2.get(g.name)!);
      const x4 = bytesF32(g12by4.get(g.name)!);
      const mean = x.map((_, i) => (x1[i]! + x2[i]!) / 2);
      expect(relErr(x, mean), g.name).toBeLessThan(1e-6);
      expect(relErr(x4, x.map((y) => y / 2)), g.name).toBeLessThan(1e-6);
    }
    await a.optimizerStep();
    // No micro-batch since the last update: nothing to apply.
    await a.evalLoss(b1);
    const idle = await a.optimizerStep();
    expect(idle.skipped).toBe(true);
    expect(idle.step).toBe(1);
    // A batch without any scored position: NaN loss, zero tokens, no gradient.
    const empty = { ...b1, labels: new Int32Array(b1.labels.length).fill(-100) };
    const r = await b.trainStep(empty);
    expect(r.tokens).toBe(0);
    expect(Number.isNaN(r.loss)).toBe(true);
    a.dispose();
    b.dispose();
  });
});
