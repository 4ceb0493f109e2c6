// bench:pt — does writing a .pt cost more than writing the same bytes raw?
//
// In the same run, alternating, best of N:
//   pt:  checkpoint.writePt(path, stateDict) — 1 GiB of fp16 tensors with the expert shard's shapes,
//        torch's zip layout (headers, 64-byte alignment, CRC-32 of every record, central directory),
//        fsync at the end;
//   raw: the same tensor bytes written sequentially to one file with fs writes, fsync at the end.
// Last line: `ratio <pt/raw throughput>` (target ≥ 0.8). Runs the built code (the npm script builds
// first). `--quick`: 256 MiB, 2 reps.
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { writePt } = await import(join(root, 'dist/checkpoint/index.js'));

const quick = process.argv.includes('--quick');
const TARGET = quick ? 256 << 20 : 1 << 30;
const REPS = quick ? 2 : 3;

const sd = new Map();
let bytes = 0;
for (let i = 0; bytes < TARGET; i++) {
  const shape = i % 2 ? [2048, 1408] : [2816, 2048];
  const n = Math.min(shape[0] * shape[1] * 2, TARGET - bytes);
  const rows = n / (shape[1] * 2);
  const s = [Math.floor(rows), shape[1]];
  const data = new Uint8Array(s[0] * s[1] * 2);
  randomFillSync(data);
  sd.set(`model.layers.${1 + (i >> 4)}.mlp.experts.${i % 16}.${i % 2 ? 'down_proj' : 'gate_up_proj'}`, { dtype: 'float16', shape: s, data });
  bytes += data.length;
}

async function raw(path) {
  const fh = await open(path, 'w');
  try {
    let pos = 0;
    for (const t of sd.values()) {
      const { bytesWritten } = await fh.write(t.data, 0, t.data.length, pos);
      pos += bytesWritten;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'cnm-bench-pt-'));
try {
  let ptBest = Infinity;
  let rawBest = Infinity;
  for (let r = 0; r < REPS; r++) {
    const rp = join(dir, 'raw.bin');
    let t0 = performance.now();
    await raw(rp);
    rawBest = Math.min(rawBest, (performance.now() - t0) / 1000);
    rmSync(rp);
    const pp = join(dir, 'model_expgroup_0.pt');
    t0 = performance.now();
    await writePt(pp, sd);
    ptBest = Math.min(ptBest, (performance.now() - t0) / 1000);
    if (r === REPS - 1) console.log(`pt file: ${(statSync(pp).size / 2 ** 20).toFixed(1)} MiB for ${(bytes / 2 ** 20).toFixed(1)} MiB of tensor data`);
    rmSync(pp);
  }
  const mb = (s) => (bytes / s / 1e6).toFixed(0);
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}, dir ${tmpdir()}`);
  console.log(`state dict: ${sd.size} fp16 tensors, best of ${REPS}, fsync included`);
  console.log(`pt  writePt:               ${ptBest.toFixed(3)} s  ${mb(ptBest)} MB/s`);
  console.log(`raw sequential fs writes:  ${rawBest.toFixed(3)} s  ${mb(rawBest)} MB/s`);
  console.log(`ratio ${(rawBest / ptBest).toFixed(3)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
