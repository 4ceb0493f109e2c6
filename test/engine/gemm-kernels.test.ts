// Every GEMM microkernel the addon can pick (AVX-512, AVX2+FMA, portable C++) against a double
// reference, and the same training step through each of them. The kernel is chosen once per
// process from CPUID, and CONNITO_GEMM_KERNEL forces a narrower one, so each runs in a child.
// Tolerance: max |c − ref| / max |ref| < 1e-5 per transpose combination (measured ≤ 1e-6); losses
// and gradients of the step agree across kernels to 1e-5 relative.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { packageRoot } from '../../src/trainer/native.js';
import { TINY, TINY_ALLOWED, engineOptions } from './helpers.js';

const addonPath = join(packageRoot(), 'build', 'Release', 'connito_native.node');

interface ChildResult {
  kernel: string;
  gemm: { op: string; checked: number; maxRelErr: number }[];
  loss: number;
  grads: number[];
}

// Runs in a child: loads the addon under the forced kernel, checks the GEMM, takes one train step.
const CHILD = `
const addon = require(process.env.ADDON);
(async () => {
  const gemm = await addon._gradCheck({ op: 'gemm', seed: 4 });
  const engine = await addon.createEngine(JSON.parse(process.env.OPTS));
  const B = 2, S = 24, V = ${TINY.vocab_size};
  const tokens = new Int32Array(B * S).map((_, i) => (i * 7919 + 13) % V);
  const labels = tokens.map((t, i) => (i % 9 === 0 ? -100 : t));
  const r = await engine.trainStep({ tokens, labels, batch: B, seq: S });
  const grads = [];
  for (const g of await engine._exportGradients()) {
    const f = new Float32Array(new Uint8Array(g.data).buffer);
    let s = 0, s2 = 0;
    for (let i = 0; i < f.length; i++) { s += f[i] * ((i % 7) - 3); s2 += Math.abs(f[i]); }
    grads.push(s, s2);
  }
  process.stdout.write(JSON.stringify({ kernel: addon.probeBackends().gemmKernel, gemm, loss: r.loss, grads }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

function runWith(kernel: string | undefined): ChildResult {
  const env: NodeJS.ProcessEnv = { ...process.env, ADDON: addonPath, OPTS: JSON.stringify(engineOptions(TINY, TINY_ALLOWED)) };
  if (kernel) env.CONNITO_GEMM_KERNEL = kernel;
  else delete env.CONNITO_GEMM_KERNEL;
  const out = execFileSync(process.execPath, ['-e', CHILD], { env, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out) as ChildResult;
}

describe('GEMM kernels', () => {
  it('each kernel matches a float64 GEMM and gives the same training step', () => {
    const auto = runWith(undefined);
    const avx2 = runWith('avx2');
    const generic = runWith('generic');
    expect(generic.kernel).toBe('generic');
    // On an x86 CPU without AVX2 the forced 'avx2' falls back to the portable kernel.
    expect(['avx2', 'generic']).toContain(avx2.kernel);
    expect(['avx512', 'avx2', 'generic']).toContain(auto.kernel);
    for (const r of [auto, avx2, generic]) {
      expect(r.gemm.map((g) => g.op)).toEqual(['gemm.NN', 'gemm.TN', 'gemm.NT', 'gemm.TT']);
      for (const g of r.gemm) {
        expect(g.checked).toBeGreaterThan(100_000);
        expect(g.maxRelErr, `${r.kernel} ${g.op}`).toBeLessThan(1e-5);
      }
    }
    for (const r of [avx2, generic]) {
      expect(Math.abs(r.loss - auto.loss) / auto.loss, r.kernel).toBeLessThan(1e-5);
      const scale = Math.max(...auto.grads.map(Math.abs));
      for (let i = 0; i < auto.grads.length; i++) expect(Math.abs(r.grads[i]! - auto.grads[i]!) / scale, `${r.kernel} grad ${i}`).toBeLessThan(1e-5);
    }
  });
});
