// The CPU engine against an independent PyTorch reference (test/reference/deepseek_v2_ref.py,
// torch 1.13 through /usr/bin/python3, autograd, written from PROTOCOL §9): same weights, same
// batches. The weights go to Python as raw float32 files plus JSON; nothing is unpickled.
//
// Tolerances (fp32 on both sides):
//   loss: relative 1e-5;
//   gradient of every trainable expert tensor: max|ours − ref| / max|ref| ≤ 1e-4;
//   optimizer replay (GA = 2, clipping active, warmup + cosine LR, weight decay): lr per step to
//   1e-12, grad norm per step 1e-4 relative, micro-batch losses 1e-5 relative, final expert weights
//   max|ours − ref| ≤ 1e-4 · max|ref| (Adam normalises the update, so tiny-gradient coordinates
//   can move by up to lr·(relative gradient error), well inside this bound).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { DeepseekV2Config } from '../../src/trainer/engine.js';
import {
  DEEP,
  DEEP_ALLOWED,
  Rng,
  TINY,
  TINY_ALLOWED,
  bytesF32,
  randomBatch,
  relErr,
  tinyEngine,
  type TokenBatch,
} from './helpers.js';

const PY = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '..', 'reference', 'deepseek_v2_ref.py');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const OPT = { lr: 1e-2, betas: [0.9, 0.95] as [number, number], eps: 1e-8, weightDecay: 0.1, maxGradNorm: 0.05 };
const SCHED = { warmupSteps: 2, totalSteps: 10 };

async function compare(config: DeepseekV2Config, allowed: Record<number, number[]>, seed: number) {
  const { engine, weights } = await tinyEngine(config, allowed, { optimizer: OPT, schedule: SCHED }, seed);
  const rng = new Rng(seed + 1);
  const batches: TokenBatch[] = [];
  for (let i = 0; i < 7; i++) batches.push(randomBatch(rng, config.vocab_size, 2, 16));
  const replay = [
    [1, 2],
    [3, 4],
    [5, 6],
  ];

  // Python side.
  const dir = mkdtempSync(join(tmpdir(), 'cnm-engine-ref-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'w'));
  const tensors = weights.map((t, i) => {
    const file = join('w', `${i}.bin`);
    writeFileSync(join(dir, file), t.data);
    return { name: t.name, shape: t.shape, file };
  });
  const plain = (b: TokenBatch) => ({ batch: b.batch, seq: b.seq, tokens: [...b.tokens], labels: [...b.labels] });
  writeFileSync(
    join(dir, 'case.json'),
    JSON.stringify({ config, allowedExperts: allowed, tensors, batches: batches.map(plain), optimizer: OPT, schedule: SCHED, replay }),
  );
  execFileSync(PY, [SCRIPT, dir], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  const ref = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as {
    loss: number;
    tokens: number;
    steps: { lr: number; grad_norm: number; losses: number[] }[];
  };
  const refTensor = (sub: string, name: string) => {
    const buf = readFileSync(join(dir, sub, `${name}.bin`));
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  };

  // Engine side: loss and gradients of batch 0.
  const first = await engine.trainStep(batches[0]!);
  expect(first.tokens).toBe(ref.tokens);
  expect(Math.abs(first.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
  const grads = await engine._exportGradients();
  const trainable = weights.filter((w) => w.name.includes('.mlp.experts.'));
  expect(grads.map((g) => g.name).sort()).toEqual(trainable.map((w) => w.name).sort());
  let nonZero = 0;
  for (const g of grads) {
    const r = refTensor('grad', g.name);
    const err = relErr(bytesF32(g), r);
    expect(err, `gradient of ${g.name}`).toBeLessThan(1e-4);
    if (r.some((x) => x !== 0)) nonZero++;
  }
  // The batch reaches most experts (a test where no expert gets a token would prove little).
  expect(nonZero).toBeGreaterThanOrEqual(trainable.length - 2);

  // Discard batch 0's gradient: an update with lr 0 is not what we want, so rebuild the engine.
  engine.dispose();
  const { engine: e2 } = await tinyEngine(config, allowed, { optimizer: OPT, schedule: SCHED }, seed);
  for (let s = 0; s < replay.length; s++) {
    const losses: number[] = [];
    for (const bi of replay[s]!) losses.push((await e2.trainStep(batches[bi]!)).loss);
    const o = await e2.optimizerStep();
    const want = ref.steps[s]!;
    expect(o.skipped).toBe(false);
    expect(o.step).toBe(s + 1);
    expect(Math.abs(o.lr - want.lr)).toBeLessThan(1e-12);
    expect(Math.abs(o.gradNorm - want.grad_norm) / want.grad_norm).toBeLessThan(1e-4);
    for (let i = 0; i < losses.length; i++) expect(Math.abs(losses[i]! - want.losses[i]!) / want.losses[i]!).toBeLessThan(1e-5);
  }
  // The replay clipped (the test would not exercise clipping otherwise).
  expect(ref.steps.some((s) => s.grad_norm > OPT.maxGradNorm)).toBe(true);
  const finals = await e2.exportWeights({ trainableOnly: true });
  for (const t of finals) {
    const r = refTensor('final', t.name);
    expect(relErr(bytesF32(t), r), `weights of ${t.name} after 3 updates`).toBeLessThan(1e-4);
  }
  e2.dispose();
}

describe('CPU engine vs the PyTorch reference (fp32)', () => {
  it('the issue tiny model (dense + MoE, 8 experts / 4 allowed, H=32): loss, expert gradients, 3 AdamW updates', async () => {
    await compare(TINY, TINY_ALLOWED, 101);
  });

  it('MoE/dense/MoE with q LoRA, top-2, scaled routing, 2 shared experts, YaRN ramp and attention factor', async () => {
    await compare(DEEP, DEEP_ALLOWED, 202);
  });
});
