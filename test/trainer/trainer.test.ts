// The trainer in-process with the real engine (native addon, CPU) on the tiny model: training lowers
// the loss, checkpoints at the interval with exactly the group's expert keys, exact resume after a
// clean stop, baseline reloads picked up within one optimizer step (checked by model hash).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { listCheckpoints, readCheckpoint, expertFileName, validatorCheckpointName, writeCheckpoint } from '../../src/checkpoint/dir.js';
import { tensorFromValues } from '../../src/checkpoint/tensor.js';
import { readPt } from '../../src/checkpoint/pt.js';
import { modelHashHex } from '../../src/protocol/hashing.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createEngine } from '../../src/trainer/engine.js';
import type { EngineCreateOptions, TrainingEngine } from '../../src/trainer/engine-port.js';
import { groupExpertKeys } from '../../src/trainer/experts.js';
import type { ChildMessage, ProgressMessage } from '../../src/trainer/ipc.js';
import { StopRequest } from '../../src/trainer/stop.js';
import { runTrainer } from '../../src/trainer/trainer.js';
import type { StateDict } from '../../src/checkpoint/tensor.js';
import { writeConfig } from '../../src/config/index.js';
import { ALICE, makeRun, stageBaseline, type TestRun } from './run-dir-helper.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Harness {
  logs: Array<Record<string, unknown>>;
  messages: ChildMessage[];
  progress: ProgressMessage[];
  engines: Array<{ engine: TrainingEngine; initialExpertHash: string; disposed: boolean }>;
}

/**
 * Runs the trainer until `until(progress)` returns true (then requests a stop, as SIGTERM would).
 * The engine factory is the real createEngine, decorated to record the hash of the expert weights
 * each engine starts from and whether it was disposed.
 */
async function train(run: TestRun, until: (p: ProgressMessage, h: Harness) => boolean): Promise<Harness & { result: Awaited<ReturnType<typeof runTrainer>> }> {
  const h: Harness = { logs: [], messages: [], progress: [], engines: [] };
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim()) h.logs.push(JSON.parse(line));
      cb();
    },
  });
  const log = createLogger({ proc: 'trainer', level: 'debug', destination: sink });
  const stop = new StopRequest();
  const keys = groupExpertKeys({ 1: [0, 2, 4, 6] });
  const factory = async (o: EngineCreateOptions): Promise<TrainingEngine> => {
    const engine = await createEngine(o as unknown as Parameters<typeof createEngine>[0]);
    const rec = { engine: engine as unknown as TrainingEngine, initialExpertHash: '', disposed: false };
    h.engines.push(rec);
    // A decorator around the real engine: records the expert weights each engine starts from.
    return {
      loadWeights: async (entries) => {
        const r = await engine.loadWeights(entries);
        const w = await engine.exportWeights({ names: keys, dtype: 'float16' });
        rec.initialExpertHash = await modelHashHex(new Map(w.map((x) => [x.name, { dtype: x.dtype, shape: x.shape, data: x.data }])));
        return r;
      },
      exportWeights: (f) => engine.exportWeights(f),
      trainStep: (b) => engine.trainStep(b),
      optimizerStep: () => engine.optimizerStep(),
      evalLoss: (b) => engine.evalLoss(b),
      exportOptimizerState: () => engine.exportOptimizerState(),
      importOptimizerState: (st) => engine.importOptimizerState(st),
      info: () => engine.info(),
      dispose: () => {
        rec.disposed = true;
        engine.dispose();
      },
    };
  };
  const result = await runTrainer(
    run.config,
    run.dir,
    {
      log,
      stop,
      send: (m) => {
        h.messages.push(m);
        if (m.type === 'progress') {
          h.progress.push(m);
          if (until(m, h)) stop.request('test');
        }
      },
      setActivity: () => undefined,
      onReady: () => undefined,
    },
    { createEngine: factory, loader: { prefetch: 2 } },
  );
  return { ...h, result };
}

const byMsg = (h: Harness, msg: string) => h.logs.filter((l) => l.msg === msg);

async function expertsOf(dir: string): Promise<StateDict> {
  return readPt(join(dir, expertFileName(0)));
}

describe('trainer (real engine, tiny model)', () => {
  it('lowers the loss; checkpoints at the interval hold exactly the group expert keys (fp16, reference names); the base model is untouched', async () => {
    const run = await makeRun({ ckpt: { checkpoint_interval: 4, checkpoint_topk: 2 } });
    dirs.push(run.dir);
    const baseHash = createHash('sha256').update(readFileSync(join(run.dir, 'base', 'model.safetensors'))).digest('hex');
    const h = await train(run, (p) => (p.innerOptStep ?? 0) >= 24);

    const losses = h.progress.map((p) => p.loss);
    expect(losses.length).toBe(24);
    const head = losses.slice(0, 3).reduce((a, b) => a + b) / 3;
    const tail = losses.slice(-3).reduce((a, b) => a + b) / 3;
    expect(tail).toBeLessThan(head * 0.85);

    const saved = h.messages.filter((m) => m.type === 'checkpoint');
    expect(saved.map((m) => (m as { innerOpt: number }).innerOpt)).toEqual([4, 8, 12, 16, 20, 24]);
    const own = await listCheckpoints(run.config.ckpt.checkpoint_path);
    expect(own.map((c) => c.name)).toEqual(['globalver_0_inneropt_24', 'globalver_0_inneropt_20']); // top-k = 2
    const keys = groupExpertKeys({ 1: [0, 2, 4, 6] });
    let previous: string | null = null;
    for (const c of own) {
      await readCheckpoint(c.path, { verifyHashes: true });
      const sd = await readPt(join(c.path, expertFileName(0)));
      expect(sd.layout).toBe('model_state_dict');
      expect([...sd.keys()]).toEqual(keys);
      for (const [k, t] of sd) {
        expect(t.dtype).toBe('float16');
        expect(t.shape).toEqual(k.endsWith('gate_up_proj') ? [32, 32] : [32, 16]);
      }
      const hash = await modelHashHex(sd);
      expect(hash).not.toBe(previous); // the experts changed between checkpoints
      previous = hash;
    }
    // Independent check with PyTorch (Debian's python3-torch): the wire file loads with torch.load,
    // holds exactly the group keys in float16, and equals the fp32 masters rounded to half.
    const py = spawnSync('/usr/bin/python3', ['-c', [
      'import sys, torch',
      'sd = torch.load(sys.argv[1] + "/model_expgroup_0.pt")["model_state_dict"]',
      'm = torch.load(sys.argv[1] + "/trainable_fp32.pt")["model_state_dict"]',
      'assert all(v.dtype == torch.float16 for v in sd.values())',
      'assert all(torch.equal(m[k].half(), v) for k, v in sd.items())',
      'print(" ".join(sd.keys()))',
    ].join('\n'), own[0]!.path], { encoding: 'utf8' });
    expect(py.stderr).toBe('');
    expect(py.stdout.trim().split(' ')).toEqual(keys);
    // Shared weights never leave the base model: not in any checkpoint, and its file is unchanged.
    expect(createHash('sha256').update(readFileSync(join(run.dir, 'base', 'model.safetensors'))).digest('hex')).toBe(baseHash);
    const fin = await listCheckpoints(run.config.ckpt.final_path);
    expect(fin.map((c) => c.name)).toEqual(['globalver_0_inneropt_24']);

    // The guide's log lines.
    expect(byMsg(h, '(0) Setup training')).toHaveLength(1);
    const ok = byMsg(h, 'setup_training: success!')[0]!;
    expect(ok).toMatchObject({ backend: 'cpu', tokens_per_step: 2 * 2 * 64, experts: 4 });
    expect(ok.trainable_params).toBe(4 * (32 * 32 + 32 * 16));
    expect(byMsg(h, 'batch loss')[0]).toMatchObject({ inner_opt_step: 0 });
    expect(byMsg(h, '(1) Start epoch training')[0]).toMatchObject({ gradient_accumulation_steps: 2, inner_opt_step: 1, is_inner_optimizer_step: true, step: 2 });
    expect(Object.keys(byMsg(h, 'GradScaler for optimizer step')[0]!)).toEqual(expect.arrayContaining(['grad_norm', 'grad_sum', 'scale_before', 'scale_after', 'skipped']));
    expect(byMsg(h, 'Checkpoint saved')[0]).toMatchObject({ checkpoint_interval: 4, inner_opt_step: 4 });
    expect(h.engines.every((e) => e.disposed)).toBe(true);
  });

  it('resumes a clean stop exactly: same weights, optimizer state and data position as an uninterrupted run', async () => {
    const patch = { ckpt: { checkpoint_interval: 100 } };
    const a = await makeRun(patch, 'cnm-resume-a-');
    const b = await makeRun(patch, 'cnm-resume-b-');
    dirs.push(a.dir, b.dir);
    await train(a, (p) => p.innerOptStep === 7);
    await train(b, (p) => p.innerOptStep === 3);
    const stopped = await listCheckpoints(b.config.ckpt.final_path);
    expect(stopped.map((c) => c.name)).toEqual(['globalver_0_inneropt_3']);
    const resumed = await train(b, (p) => p.innerOptStep === 7);
    expect(byMsg(resumed, 'starting from checkpoint')[0]).toMatchObject({ kind: 'final', inner_opt: 3 });
    expect(resumed.progress[0]!.innerOptStep).toBe(4);

    const fa = (await listCheckpoints(a.config.ckpt.final_path))[0]!;
    const fb = (await listCheckpoints(b.config.ckpt.final_path))[0]!;
    expect(fb.name).toBe('globalver_0_inneropt_7');
    expect(await modelHashHex(await expertsOf(fb.path))).toBe(await modelHashHex(await expertsOf(fa.path)));
    const optA = readFileSync(join(fa.path, 'inner_optimizer.pt'));
    const optB = readFileSync(join(fb.path, 'inner_optimizer.pt'));
    expect(optB.equals(optA)).toBe(true);
    const stA = JSON.parse(readFileSync(join(fa.path, 'trainer_state.json'), 'utf8'));
    const stB = JSON.parse(readFileSync(join(fb.path, 'trainer_state.json'), 'utf8'));
    expect(stB.data).toEqual(stA.data);
    expect(stB.optimizer).toEqual(stA.optimizer);
  });

  it('picks up a newer baseline within one optimizer step, saves what was due, continues from its weights; reloads leak no engine', async () => {
    const run = await makeRun({ ckpt: { checkpoint_interval: 100 } });
    dirs.push(run.dir);
    const b1 = await stageBaseline(run, 100, 11);
    const b2 = await stageBaseline(run, 200, 12);
    const h = await train(run, (p, hh) => {
      if (p.globalVer === 0 && p.innerOptStep === 3) b1.publish();
      if (p.globalVer === 100 && p.innerOptStep === 2) b2.publish();
      return p.globalVer === 200 && p.innerOptStep === 2 && hh.engines.length === 3;
    });
    const reloads = byMsg(h, 'Should reload model');
    expect(reloads.map((r) => (r.current_model_meta as { inner_opt: number }).inner_opt)).toEqual([3, 2]);
    expect(reloads.map((r) => (r.baseline as { global_ver: number }).global_ver)).toEqual([100, 200]);
    // The steps trained since the last checkpoint were saved before switching.
    expect(existsSync(join(run.config.ckpt.checkpoint_path, 'globalver_0_inneropt_3'))).toBe(true);
    expect(existsSync(join(run.config.ckpt.checkpoint_path, 'globalver_100_inneropt_2'))).toBe(true);
    // Each rebuilt engine starts from exactly the baseline's expert weights.
    expect(h.engines).toHaveLength(3);
    expect(h.engines[1]!.initialExpertHash).toBe(await modelHashHex(b1.experts));
    expect(h.engines[2]!.initialExpertHash).toBe(await modelHashHex(b2.experts));
    expect(h.engines.every((e) => e.disposed)).toBe(true);
    // Training went on from the new baseline: progress counts from 1 again under the new version.
    const after = h.progress.filter((p) => p.globalVer === 100).map((p) => p.innerOptStep);
    expect(after).toEqual([1, 2]);
    const fin = (await listCheckpoints(run.config.ckpt.final_path))[0]!;
    expect(fin.name).toBe('globalver_200_inneropt_2');
    expect(await modelHashHex(await expertsOf(fin.path))).not.toBe(await modelHashHex(b2.experts));
  });

  it('a newer baseline that cannot be used (another group\'s file) is logged and skipped; training goes on and takes the next good one', async () => {
    const run = await makeRun({ ckpt: { checkpoint_interval: 100 } });
    dirs.push(run.dir);
    const staging = join(run.dir, 'staging-bad');
    const badName = validatorCheckpointName(2, ALICE, 50);
    const other = new Map([['model.layers.1.mlp.experts.1.down_proj', tensorFromValues('float16', [32, 16], new Array(512).fill(0.5))]]);
    await writeCheckpoint(staging, badName, [{ file: expertFileName(1), stateDict: other }], { expert_group: 1 });
    const good = await stageBaseline(run, 60, 13);
    const h = await train(run, (p) => {
      if (p.globalVer === 0 && p.innerOptStep === 2) {
        mkdirSync(run.config.ckpt.validator_checkpoint_path, { recursive: true });
        renameSync(join(staging, badName), join(run.config.ckpt.validator_checkpoint_path, badName));
      }
      if (p.globalVer === 0 && p.innerOptStep === 4) good.publish();
      return p.globalVer === 60 && p.innerOptStep === 1;
    });
    const bad = byMsg(h, 'baseline cannot be loaded; training continues on the current weights');
    expect(bad).toHaveLength(1);
    expect(bad[0]!.error).toContain('model_expgroup_0.pt');
    expect(h.progress.filter((p) => p.globalVer === 0).map((p) => p.innerOptStep)).toEqual([1, 2, 3, 4]);
    expect(h.engines).toHaveLength(2);
    expect(h.engines[1]!.initialExpertHash).toBe(await modelHashHex(good.experts));
  });

  it('non-finite weights are never saved: the run ends with CNM_ERR_NON_FINITE and the last good checkpoint stays selected', async () => {
    const run = await makeRun({ ckpt: { checkpoint_interval: 2 } });
    dirs.push(run.dir);
    await train(run, (p) => p.innerOptStep === 2);
    const good = (await listCheckpoints(run.config.ckpt.checkpoint_path)).map((c) => c.name);
    expect(good).toEqual(['globalver_0_inneropt_2']);
    // lr 1e6: AdamW moves every weight by ~1e6 per step, beyond float16's range (65504).
    const { config } = await writeConfig(run.dir, { opt: { lr: 1e6 } });
    await expect(train({ ...run, config }, () => false)).rejects.toMatchObject({ code: 'CNM_ERR_NON_FINITE', message: expect.stringContaining('last good checkpoint') });
    const after = await listCheckpoints(run.config.ckpt.checkpoint_path);
    expect(after.map((c) => c.name)).toEqual(good);
    await readCheckpoint(after[0]!.path, { verifyHashes: true });
    expect(existsSync(join(run.config.ckpt.checkpoint_path, '.tmp_globalver_0_inneropt_4'))).toBe(false);
  });
});
