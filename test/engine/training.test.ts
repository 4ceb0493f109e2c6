// The engine learns: a small model whose only trainable tensors are its routed experts is trained on
// a repeating synthetic token sequence and must at least halve its loss within 300 updates.
import { describe, expect, it } from 'vitest';

import { TINY, TINY_ALLOWED, tinyEngine } from './helpers.js';

describe('training', () => {
  it('halves the loss on a repeating sequence within 300 updates (experts only, frozen random backbone)', async () => {
    const { engine } = await tinyEngine(TINY, TINY_ALLOWED, {
      optimizer: { lr: 1e-2, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.0, maxGradNorm: 1.0 },
      schedule: { warmupSteps: 10, totalSteps: 300 },
    });
    // A period-11 pattern over 11 distinct ids; rows start at different phases.
    const period = [3, 17, 42, 8, 8, 29, 51, 0, 63, 12, 35];
    const seq = 32;
    const batch = 2;
    const make = (phase: number) => {
      const tokens = new Int32Array(batch * seq);
      for (let b = 0; b < batch; b++)
        for (let t = 0; t < seq; t++) tokens[b * seq + t] = period[(phase + 5 * b + t) % period.length]!;
      return { tokens, labels: tokens.slice(), batch, seq };
    };
    const heldOut = make(7);
    const initial = (await engine.evalLoss(heldOut)).loss;
    expect(initial).toBeGreaterThan(2);
    let reachedAt = -1;
    let last = initial;
    for (let step = 1; step <= 300; step++) {
      await engine.trainStep(make(step % period.length));
      const o = await engine.optimizerStep();
      expect(o.skipped).toBe(false);
      if (step % 10 === 0) {
        last = (await engine.evalLoss(heldOut)).loss;
        if (last <= 0.5 * initial) {
          reachedAt = step;
          break;
        }
      }
    }
    expect(reachedAt, `held-out loss ${initial.toFixed(3)} → ${last.toFixed(3)}`).toBeGreaterThan(0);
    expect(reachedAt).toBeLessThanOrEqual(300);
    engine.dispose();
  });
});
