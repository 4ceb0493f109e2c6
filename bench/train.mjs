// bench:train — does the data pipeline keep the engine busy?
//
// Measures, in the same run and on the same micro-batches:
//   engine: tokens/s of the engine alone (trainStep ×GA + optimizerStep) over batches prepared in
//           advance (no data work on the clock);
//   loop:   tokens/s of the whole training loop (src/trainer/loop.ts) with the data pipeline in its
//           worker thread (reading, tokenising with a Hugging Face tokenizer.json, batching) and
//           the same engine configuration.
// Last line: `ratio <loop/engine>` (target ≥ 0.95). Runs the built code: `npm run build` first
// (the npm script does). `--quick` for a short run.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import os from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'dist', p);
// The trainer child runs with passive OpenMP waiting (src/trainer/main.ts, before the addon loads):
// measure both modes in that same setting.
const { setOpenMpWaitPolicy } = await import(dist('trainer/main.js'));
setOpenMpWaitPolicy();
const { createEngine } = await import(dist('trainer/engine.js'));
const { TrainingLoop } = await import(dist('trainer/loop.js'));
const { startDataLoader } = await import(dist('trainer/data/loader.js'));
const { StopRequest } = await import(dist('trainer/stop.js'));
const { tinyArch, tinyWeights, tinyAssignment } = await import(dist('trainer/tiny-model.js'));
const { allowedExperts } = await import(dist('trainer/experts.js'));
const { applyConnitoOverrides } = await import(dist('trainer/model-config.js'));
const { toEngineEntries } = await import(dist('trainer/weights.js'));
const { createLogger } = await import(dist('telemetry/logger.js'));

const quick = process.argv.includes('--quick');
const GA = 2;
const STEPS = quick ? 4 : 24; // optimizer steps measured per repetition
const WARMUP = 1;
const REPS = quick ? 1 : 6; // interleaved; best of each (the machine is shared)

// Mid-size (the bench:engine proportions at H=512): a real miner's step is far heavier still, so
// this is the hard case for the pipeline — its per-batch CPU cost is a larger share here.
const arch = tinyArch({ hidden: 512, layers: 4, experts: 16, expertWidth: 352, vocab: 512, heads: 8, seed: 1 });
const seq = 256;
const batch = 2;
const engineArch = applyConnitoOverrides(arch, { partialTopk: 1, sequenceLength: seq });
const allowed = allowedExperts(tinyAssignment(arch, 0), arch, 'bench');
const weights = toEngineEntries(tinyWeights(arch, { seed: 1, dtype: 'float16', expertFormat: 'connito' }), 'bench');
const tokDir = join(root, 'test', 'fixtures', 'trainer', 'tokenizer');
const pipeline = {
  sources: [
    { kind: 'synthetic-math', name: 'math', weight: 3, seed: 1, problems: 12 },
    { kind: 'synthetic-math', name: 'math2', weight: 1, seed: 2, problems: 12 },
  ],
  tokenizer: { kind: 'hf', dir: tokDir },
  sequenceLength: seq,
  batchSize: batch,
  rank: 0,
  worldSize: 1,
  seed: 5,
  vocabSize: arch.vocab_size,
};
const engineOpts = {
  config: engineArch,
  allowedExperts: allowed,
  backend: 'cpu',
  precision: 'fp32',
  optimizer: { lr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1 },
  schedule: { warmupSteps: 0, totalSteps: 10000 },
};

async function freshEngine() {
  const e = await createEngine(engineOpts);
  await e.loadWeights(weights);
  return e;
}

/** Engine alone on prepared batches. */
async function benchEngine(batches) {
  const e = await freshEngine();
  let i = 0;
  const step = async () => {
    let tokens = 0;
    for (let m = 0; m < GA; m++) {
      const b = batches[i++];
      tokens += (await e.trainStep({ tokens: b.tokens, labels: b.labels, batch: b.batch, seq: b.seq })).tokens;
    }
    await e.optimizerStep();
    return tokens;
  };
  for (let w = 0; w < WARMUP; w++) await step();
  const t0 = performance.now();
  let tokens = 0;
  for (let s = 0; s < STEPS; s++) tokens += await step();
  const dt = (performance.now() - t0) / 1000;
  e.dispose();
  return tokens / dt;
}

let lastWaitFraction = 0;
/** The whole loop: worker-thread data pipeline + engine + loop bookkeeping. */
async function benchLoop() {
  const e = await freshEngine();
  const loader = await startDataLoader(pipeline, null); // the trainer's defaults
  // Starvation, measured directly: time the loop spends waiting for the next batch.
  let waiting = 0;
  let counting = false;
  const data = {
    tokenizer: loader.tokenizer,
    next: async (signal) => {
      const t = performance.now();
      const b = await loader.next(signal);
      if (counting) waiting += performance.now() - t;
      return b;
    },
    stats: () => loader.stats(),
    drainEvents: () => loader.drainEvents(),
    close: () => loader.close(),
  };
  const stop = new StopRequest();
  const log = createLogger({ proc: 'bench', level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  let t0 = 0;
  let tokensAtStart = 0;
  let last = null;
  const loop = new TrainingLoop(
    { gradientAccumulation: GA, checkpointInterval: 1e9, expertGroup: 'bench', groupId: 0, tokensPerStep: GA * batch * seq },
    {
      log,
      stop,
      setActivity: () => {},
      send: (m) => {
        if (m.type !== 'progress') return;
        if (m.innerOptStep === WARMUP) {
          t0 = performance.now();
          tokensAtStart = m.totalTokens;
          counting = true;
        }
        if (m.innerOptStep === WARMUP + STEPS) {
          last = { t: performance.now(), tokens: m.totalTokens };
          stop.request('bench');
        }
      },
      save: async () => '',
      newerBaseline: async () => null,
      prepareBaseline: async () => {},
      rebuild: async () => e,
    },
    { engine: e, data, globalVer: 0, innerOpt: 0, dataState: null, source: 'bench', baselinePath: null },
  );
  await loop.run();
  await data.close();
  e.dispose();
  lastWaitFraction = waiting / (last.t - t0);
  return (last.tokens - tokensAtStart) / ((last.t - t0) / 1000);
}

// The same micro-batches for the engine-alone run: the pipeline inline, prepared before timing.
const inline = await startDataLoader(pipeline, null, { inline: true });
const batches = [];
for (let i = 0; i < (WARMUP + STEPS) * GA; i++) batches.push(await inline.next());
await inline.close();

// Headroom: the pipeline alone, inline on this thread.
{
  const l = await startDataLoader(pipeline, null, { inline: true });
  const t0 = performance.now();
  let toks = 0;
  for (let i = 0; i < 200; i++) toks += (await l.next()).tokens.length;
  await l.close();
  console.log(`pipeline_alone_tokens_per_s ${(toks / ((performance.now() - t0) / 1000)).toFixed(0)} (one thread, incl. padding)`);
}
console.log(`OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY ?? '(default)'}`);
console.log(`machine ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'cpu'}; model H=${arch.hidden_size} L=${arch.num_hidden_layers} E=${arch.n_routed_experts} (8 trained) seq=${seq} batch=${batch} GA=${GA}; tokenizer ${JSON.parse(readFileSync(join(tokDir, 'expected.json'), 'utf8')).vocab_size}-token BPE`);
let bestEngine = 0;
let bestLoop = 0;
const pairs = [];
const waits = [];
for (let r = 0; r < REPS; r++) {
  // Alternate which mode goes first so a burst of outside load does not always hit the same one.
  const [en, lo] = r % 2 === 0 ? [await benchEngine(batches), await benchLoop()] : await benchLoop().then(async (l) => [await benchEngine(batches), l]);
  waits.push(lastWaitFraction);
  console.log(`rep ${r + 1}: engine ${en.toFixed(0)} tok/s, loop ${lo.toFixed(0)} tok/s, ratio ${(lo / en).toFixed(3)}, loop waited for data ${(100 * lastWaitFraction).toFixed(2)} % of the time`);
  bestEngine = Math.max(bestEngine, en);
  bestLoop = Math.max(bestLoop, lo);
  pairs.push(lo / en);
}
pairs.sort((a, b) => a - b);
console.log(`load_average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`data_wait_fraction_max ${Math.max(...waits).toFixed(4)}`);
console.log(`median_pair_ratio ${pairs[Math.floor(pairs.length / 2)].toFixed(3)}`);
console.log(`engine_tokens_per_s ${bestEngine.toFixed(0)}`);
console.log(`loop_tokens_per_s ${bestLoop.toFixed(0)}`);
console.log(`ratio ${(bestLoop / bestEngine).toFixed(3)}`);
