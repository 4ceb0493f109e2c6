// Child process for the cross-process checkpoint tests (runs the built dist/, like production).
//   child.mjs write DIR START   write globalver_1_inneropt_<START…> forever, pruning to 3
//   child.mjs pin CKPT_DIR      pin a checkpoint, print "pinned", then wait (or exit if EXIT=1)
import { beginCheckpoint, pinCheckpoint, pruneCheckpoints } from '../../dist/checkpoint/index.js';

const [mode, target, start] = process.argv.slice(2);

/** Deterministic content: every element of checkpoint K's tensors has the value K (fp16 bits). */
export function contentFor(k) {
  const sd = new Map();
  for (let i = 0; i < 4; i++) {
    const data = new Uint8Array(1 << 20);
    const v = new DataView(data.buffer);
    for (let j = 0; j < data.length; j += 2) v.setUint16(j, (k * 7 + i) & 0x7bff, true);
    sd.set(`model.layers.${i + 1}.mlp.experts.${i}.gate_up_proj`, { dtype: 'float16', shape: [512, 1024], data });
  }
  return sd;
}

if (mode === 'write') {
  process.stdout.write('ready\n');
  for (let k = Number(start); ; k++) {
    const p = await beginCheckpoint(target, `globalver_1_inneropt_${k}`);
    await p.writePt('model_expgroup_0.pt', contentFor(k));
    await p.commit({ expert_group: 0, run_id: 'kill-test' });
    await pruneCheckpoints(target, 3);
  }
} else if (mode === 'pin') {
  await pinCheckpoint(target);
  process.stdout.write('pinned\n');
  if (process.env.EXIT === '1') process.exit(0);
  setInterval(() => {}, 1 << 30);
}
