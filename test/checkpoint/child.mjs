// Child process for the cross-process checkpoint tests (runs the built dist/, like production).
//   child.mjs write DIR START   write globalver_1_inneropt_<START…> forever, pruning to 3
//   child.mjs pin CKPT_DIR      pin a checkpoint, print "pinned", then wait until killed
//   child.mjs hold DIR NAME     begin checkpoint NAME (never committed), print "holding", wait
import { beginCheckpoint, pinCheckpoint, pruneCheckpoints } from '../../dist/checkpoint/index.js';
import { contentFor } from './content.mjs';

const [mode, target, start] = process.argv.slice(2);

if (mode === 'write') {
  process.stdout.write('ready\n');
  for (let k = Number(start); ; k++) {
    const p = await beginCheckpoint(target, `globalver_1_inneropt_${k}`);
    await p.writePt('model_expgroup_0.pt', contentFor(k));
    await p.commit({ expert_group: 0, run_id: 'kill-test' });
    await pruneCheckpoints(target, 3);
  }
} else if (mode === 'hold') {
  const p = await beginCheckpoint(target, start);
  await p.writePt('model_expgroup_0.pt', contentFor(1));
  process.stdout.write('holding\n');
  setInterval(() => {}, 1 << 30);
} else if (mode === 'pin') {
  await pinCheckpoint(target);
  process.stdout.write('pinned\n');
  setInterval(() => {}, 1 << 30);
}
