// bench:hash — is our model hash at least as fast as the reference's Python hashing?
//
// Builds a synthetic fp16 expert shard (the real file's tensor shapes, random bytes), then in the same
// run measures:
//   ours:   protocol.modelHash(stateDict) — sorted keys, key ‖ tensor bytes streamed into BLAKE2b-192
//           (hash-wasm), one tensor at a time;
//   python: hashlib.blake2b(preimage, digest_size=24) in /usr/bin/python3 over the exact same preimage
//           bytes (read into memory before the clock starts; one call, its best case).
// Both digests must be equal. Best of N alternating repetitions each. Last line: `ratio <ours/python throughput>`
// (target ≥ 1.0). Runs the built code (the npm script builds first). `--quick`: 256 MiB, 3 reps.
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { modelHash, toHex, serializeStateDict } = await import(join(root, 'dist/protocol/index.js'));

const quick = process.argv.includes('--quick');
const TARGET = quick ? 256 << 20 : 1 << 30;
const REPS = quick ? 3 : 5;

// model.layers.L.mlp.experts.E.{gate_up_proj [2816, 2048], down_proj [2048, 1408]} fp16, as in §7.2.
const sd = new Map();
let bytes = 0;
for (let i = 0; bytes < TARGET; i++) {
  const L = 1 + Math.floor(i / 8);
  const E = 8 * (L % 8) + (i % 8);
  for (const [name, shape] of [['gate_up_proj', [2816, 2048]], ['down_proj', [2048, 1408]]]) {
    const data = new Uint8Array(shape[0] * shape[1] * 2);
    randomFillSync(data);
    sd.set(`model.layers.${L}.mlp.experts.${E}.${name}`, { dtype: 'float16', shape, data });
    bytes += data.length;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'cnm-bench-hash-'));
try {
  // The exact preimage, for Python.
  const pre = join(dir, 'preimage.bin');
  const fd = openSync(pre, 'w');
  let preLen = 0;
  for await (const chunk of serializeStateDict(sd)) {
    writeSync(fd, chunk);
    preLen += chunk.length;
  }
  closeSync(fd);

  // Alternate the two so both see the same machine load (2 shared cores); keep the best of each.
  const pyScript = `
import hashlib, sys, time
data = open(sys.argv[1], "rb").read()
t = time.perf_counter()
digest = hashlib.blake2b(data, digest_size=24).hexdigest()
print(digest, time.perf_counter() - t)
`;
  let oursBest = Infinity;
  let pyBest = Infinity;
  let ours = '';
  let pyDigest = '';
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    ours = toHex(await modelHash(sd));
    oursBest = Math.min(oursBest, (performance.now() - t0) / 1000);
    const [d, secs] = execFileSync('/usr/bin/python3', ['-c', pyScript, pre], { encoding: 'utf8' }).trim().split(' ');
    pyDigest = d;
    pyBest = Math.min(pyBest, Number(secs));
  }

  if (pyDigest !== ours) {
    console.error(`digest mismatch: ours ${ours} python ${pyDigest}`);
    process.exit(1);
  }
  const mb = (s) => (preLen / s / 1e6).toFixed(0);
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}`);
  console.log(`state dict: ${sd.size} fp16 tensors, preimage ${(preLen / 2 ** 20).toFixed(0)} MiB, best of ${REPS}`);
  console.log(`digest: ${ours} (python agrees)`);
  console.log(`ours   modelHash (hash-wasm BLAKE2b-192): ${oursBest.toFixed(3)} s  ${mb(oursBest)} MB/s`);
  console.log(`python hashlib.blake2b(digest_size=24):   ${pyBest.toFixed(3)} s  ${mb(pyBest)} MB/s`);
  console.log(`ratio ${(pyBest / oursBest).toFixed(3)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
