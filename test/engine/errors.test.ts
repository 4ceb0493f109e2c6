// Loading without a GPU, backend selection, and bad input: every bad call rejects with an
// EngineError naming the tensor / argument, the expected and the given value, changes nothing, and
// leaves the engine usable.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { createEngine, EngineError, type Engine, type EngineTensor } from '../../src/trainer/engine.js';
import { loadNativeAddon, loadNativeAddonFrom, NativeAddonError } from '../../src/trainer/native.js';
import { Rng, TINY, TINY_ALLOWED, engineOptions, f32bytes, randomBatch, sameBytes, tinyEngine } from './helpers.js';

async function rejectsWith(p: Promise<unknown>, code: string, ...parts: (string | RegExp)[]): Promise<EngineError> {
  const e = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(EngineError);
  const err = e as EngineError;
  expect(err.code).toBe(code);
  for (const part of parts) expect(err.message).toMatch(part);
  return err;
}

async function stillTrains(engine: Engine) {
  const r = await engine.trainStep(randomBatch(new Rng(1), TINY.vocab_size, 1, 8));
  expect(Number.isFinite(r.loss)).toBe(true);
}

describe('backend selection without a GPU', () => {
  it("'auto' runs on the CPU and says why; info() describes the engine", async () => {
    const engine = await createEngine(engineOptions(TINY, TINY_ALLOWED, { backend: 'auto' }));
    const info = engine.info();
    expect(info.backend).toBe('cpu');
    expect(info.reason).toMatch(/CUDA/);
    expect(info.reason).toMatch(/CPU backend/);
    expect(info.device).toMatch(/threads/);
    expect(info.threads).toBe(2);
    // 4 experts × (gate_up [32, 32] + down [32, 16]).
    expect(info.trainableParams).toBe(4 * (2 * 16 * 32 + 32 * 16));
    const all = await engine.exportWeights();
    expect(info.totalParams).toBe(all.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0));
    expect(info.memoryBytes).toBeGreaterThanOrEqual(4 * info.totalParams);
    // Expert keys exist only for the allowed experts.
    const experts = all.filter((t) => t.name.includes('.mlp.experts.')).map((t) => t.name);
    expect(experts).toHaveLength(8);
    expect(new Set(experts.map((n) => n.split('.')[5]))).toEqual(new Set(['1', '3', '4', '6']));
    engine.dispose();
  });

  it("'cuda' is refused with the reason and possible solutions", async () => {
    const probe = loadNativeAddon().probeBackends();
    expect(probe.cudaAvailable).toBe(false);
    await rejectsWith(createEngine(engineOptions(TINY, TINY_ALLOWED, { backend: 'cuda' })), 'CNM_ERR_ENGINE_BACKEND', /backend 'cuda' is not available/, /Possible solutions/);
  });

  it('the loader throws one error with possible solutions when no candidate loads', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cnm-loader-'));
    try {
      const bad = join(dir, 'connito_native.node');
      writeFileSync(bad, 'not a shared object');
      let err: unknown;
      try {
        loadNativeAddonFrom([join(dir, 'missing.node'), bad]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NativeAddonError);
      const e = err as NativeAddonError;
      expect(e.code).toBe('CNM_ERR_NATIVE_LOAD');
      expect(e.message).toContain(`${join(dir, 'missing.node')}: not found`);
      expect(e.message).toContain(bad);
      expect(e.message).toMatch(/Possible solutions:\n {2}- rebuild the addon/);
      expect(e.tried).toEqual([join(dir, 'missing.node'), bad]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bad options', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['missing hidden_size', { config: { ...TINY, hidden_size: undefined } }, /config\.hidden_size: required/],
    ['unsupported activation', { config: { ...TINY, hidden_act: 'gelu' } }, /config\.hidden_act: .*'silu'.*got 'gelu'/],
    ['odd rope dim', { config: { ...TINY, qk_rope_head_dim: 5 } }, /qk_rope_head_dim must be a positive even integer/],
    ['unknown rope type', { config: { ...TINY, rope_scaling: { type: 'longrope' } } }, /rope_scaling\.type: .*'yarn'.*got 'longrope'/],
    ['expert id out of range', { allowedExperts: { 1: [1, 8] } }, /allowedExperts\[1\]: expert id 8 is outside \[0, 8\)/],
    ['dense layer in allowedExperts', { allowedExperts: { 0: [1], 1: [2] } }, /layer 0 is a dense layer/],
    ['MoE layer without experts', { allowedExperts: {} }, /MoE layer 1 needs at least 1 allowed expert/],
    ['duplicate expert', { allowedExperts: { 1: [2, 2] } }, /expert id 2 is listed twice/],
    ['bad precision', { precision: 'fp8' }, /precision: expected 'fp32', 'fp16-mixed' or 'bf16-mixed', got 'fp8'/],
    ['bad betas', { optimizer: { lr: 1e-3, betas: [0.9, 1.5], eps: 1e-8, weightDecay: 0, maxGradNorm: 1 } }, /optimizer\.betas\[1\]: expected a number in \[0, 1\), got 1\.5/],
    ['bad schedule', { schedule: { warmupSteps: -1, totalSteps: 10 } }, /schedule\.warmupSteps: expected an integer >= 0/],
  ];
  for (const [what, over, msg] of cases) {
    it(what, async () => {
      await rejectsWith(createEngine({ ...engineOptions(TINY, TINY_ALLOWED), ...over } as never), 'CNM_ERR_ENGINE_CONFIG', msg);
    });
  }
});

describe('bad calls leave the engine unchanged and usable', () => {
  it('trainStep / evalLoss inputs', async () => {
    const { engine } = await tinyEngine(TINY, TINY_ALLOWED);
    const ok = randomBatch(new Rng(2), TINY.vocab_size, 2, 8);
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ tokens: Int32Array.from(ok.tokens, (t, i) => (i === 5 ? 64 : t)) }, /tokens\[5\] = 64 is out of range \[0, vocab_size = 64\)/],
      [{ tokens: Int32Array.from(ok.tokens, (t, i) => (i === 0 ? -1 : t)) }, /tokens\[0\] = -1 is out of range/],
      [{ tokens: ok.tokens.slice(1) }, /tokens: length 15 does not match batch·seq = 2·8 = 16/],
      [{ labels: ok.labels.slice(0, 10) }, /labels: length 10 does not match batch·seq = 2·8 = 16/],
      [{ labels: Int32Array.from(ok.labels, (t, i) => (i === 3 ? 70 : t)) }, /labels\[3\] = 70 is out of range: expected -100 or \[0, vocab_size = 64\)/],
      [{ tokens: Float32Array.from(ok.tokens) }, /tokens: expected an Int32Array, got a Float32Array/],
      [{ labels: [...ok.labels] }, /labels: expected an Int32Array, got an array/],
      [{ batch: 0 }, /batch: expected an integer >= 1, got 0/],
      [{ seq: 2.5 }, /seq: expected an integer >= 1, got 2\.5/],
      [{ batch: 1, seq: 5000, tokens: new Int32Array(5000), labels: new Int32Array(5000) }, /seq: 5000 exceeds max_position_embeddings 4096/],
    ];
    for (const [over, msg] of bad) {
      await rejectsWith(engine.trainStep({ ...ok, ...over } as never), 'CNM_ERR_ENGINE_INPUT', msg);
      await rejectsWith(engine.evalLoss({ ...ok, ...over } as never), 'CNM_ERR_ENGINE_INPUT', msg);
    }
    // Nothing was accumulated by the rejected calls.
    const idle = await engine.optimizerStep();
    expect(idle.skipped).toBe(true);
    await stillTrains(engine);
    engine.dispose();
  });

  it('loadWeights: shape, dtype, size, NaN, duplicates — all or nothing', async () => {
    const { engine } = await tinyEngine(TINY, TINY_ALLOWED);
    const before = await engine.exportWeights();
    const norm = before.find((t) => t.name === 'model.norm.weight')!;
    const down = before.find((t) => t.name === 'model.layers.1.mlp.experts.4.down_proj')!;
    const good: EngineTensor = { ...norm, data: f32bytes(new Float32Array(32).fill(0.5)) };
    const nan = new Float32Array(512);
    nan[77] = Number.NaN;
    const inf16 = new Uint16Array(512);
    inf16[9] = 0x7c00;
    const cases: [EngineTensor, RegExp][] = [
      [{ ...down, shape: [16, 32] }, /tensor 'model\.layers\.1\.mlp\.experts\.4\.down_proj': shape \[16, 32\] does not match the model's \[32, 16\]/],
      [{ ...down, dtype: 'int64' as never }, /dtype 'int64' is not supported \(expected float32, float16 or bfloat16\)/],
      [{ ...down, data: down.data.slice(4) }, /2044 bytes given, expected 2048 for shape \[32, 16\] float32/],
      [{ ...down, data: f32bytes(nan) }, /down_proj': element 77 is not finite/],
      [{ ...down, dtype: 'float16', data: new Uint8Array(inf16.buffer) }, /element 9 is not finite/],
      [{ ...down, data: new Float32Array(512) as never }, /data: expected a Uint8Array of raw little-endian bytes, got a Float32Array/],
    ];
    for (const [t, msg] of cases) await rejectsWith(engine.loadWeights([good, t]), 'CNM_ERR_ENGINE_INPUT', msg);
    await rejectsWith(engine.loadWeights([good, good]), 'CNM_ERR_ENGINE_INPUT', /'model\.norm\.weight' is given twice/);
    // The valid tensor of each failed call was not applied either.
    const after = await engine.exportWeights();
    for (let i = 0; i < before.length; i++) expect(sameBytes(after[i]!.data, before[i]!.data), before[i]!.name).toBe(true);
    // Other experts' keys and unknown names are ignored, not errors.
    const r = await engine.loadWeights([
      good,
      { ...down, name: 'model.layers.1.mlp.experts.5.down_proj' },
      { ...norm, name: 'model.layers.0.self_attn.rotary_emb.inv_freq' },
    ]);
    expect(r.loaded).toBe(1);
    expect(r.ignored).toEqual(['model.layers.1.mlp.experts.5.down_proj', 'model.layers.0.self_attn.rotary_emb.inv_freq']);
    expect(r.missing).toEqual([]);
    await stillTrains(engine);
    engine.dispose();
  });

  it('exportWeights and importOptimizerState validate too', async () => {
    const { engine } = await tinyEngine(TINY, TINY_ALLOWED);
    await rejectsWith(engine.exportWeights({ names: ['model.layers.1.mlp.experts.0.down_proj'] }), 'CNM_ERR_ENGINE_INPUT', /no tensor named 'model\.layers\.1\.mlp\.experts\.0\.down_proj'/);
    await rejectsWith(engine.exportWeights({ dtype: 'float64' as never }), 'CNM_ERR_ENGINE_INPUT', /dtype 'float64' is not supported/);
    await engine.trainStep(randomBatch(new Rng(3), TINY.vocab_size, 1, 8));
    await engine.optimizerStep();
    const state = await engine.exportOptimizerState();
    const t0 = state.tensors[0]!;
    const negative = new Float32Array(t0.data.length / 4);
    negative[2] = -1;
    const sqName = state.tensors.find((t) => t.name.endsWith('.exp_avg_sq'))!.name;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ tensors: state.tensors.slice(1) }, new RegExp(`tensor '${t0.name.replace(/\./g, '\\.')}' is missing`)],
      [{ tensors: [...state.tensors, { ...t0, name: 'lm_head.weight.exp_avg' }] }, /unexpected tensor 'lm_head\.weight\.exp_avg'/],
      [{ tensors: state.tensors.map((t, i) => (i === 0 ? { ...t, shape: [1, 2] } : t)) }, /shape \[1, 2\], expected \[32, 32\]/],
      [{ tensors: state.tensors.map((t) => (t.name === sqName ? { ...t, data: f32bytes(negative.slice(0, t.data.length / 4)) } : t)) }, /exp_avg_sq must be >= 0/],
      [{ step: -1 }, /step must be an integer >= 0/],
      [{ scale: 0 }, /scale must be a finite number > 0/],
    ];
    for (const [over, msg] of cases) await rejectsWith(engine.importOptimizerState({ ...state, ...over } as never), 'CNM_ERR_ENGINE_INPUT', msg);
    const again = await engine.exportOptimizerState();
    expect(again.step).toBe(state.step);
    for (let i = 0; i < again.tensors.length; i++) expect(sameBytes(again.tensors[i]!.data, state.tensors[i]!.data)).toBe(true);
    await stillTrains(engine);
    engine.dispose();
  });

  it('dispose is idempotent; later calls throw CNM_ERR_ENGINE_DISPOSED', async () => {
    const { engine } = await tinyEngine(TINY, TINY_ALLOWED);
    const running = engine.trainStep(randomBatch(new Rng(4), TINY.vocab_size, 1, 8));
    engine.dispose();
    engine.dispose();
    // Queued before dispose but not started: refused cleanly, no crash.
    await rejectsWith(running, 'CNM_ERR_ENGINE_DISPOSED', /engine\.trainStep\(\): the engine is disposed/);
    expect(() => engine.info()).toThrow(/disposed/);
    await rejectsWith(engine.exportWeights(), 'CNM_ERR_ENGINE_DISPOSED', /createEngine\(\)/);
    await rejectsWith(engine.optimizerStep(), 'CNM_ERR_ENGINE_DISPOSED', /optimizerStep/);
  });
});
