// Pure mappings of the trainer: config.yaml → trainer settings, the architecture file, the
// expert-group folder, weight assembly helpers, the tiny model generator.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { allowedExperts, groupExpertKeys, isGroupExpertKey, loadExpertGroup } from '../../src/trainer/experts.js';
import { applyConnitoOverrides, readArch } from '../../src/trainer/model-config.js';
import { trainerSettings } from '../../src/trainer/settings.js';
import { parseTrainerState } from '../../src/trainer/store.js';
import { archTensorShapes, tinyArch, tinyAssignment, tinyWeights } from '../../src/trainer/tiny-model.js';
import { convertHfExperts, filterNeeded, isNeededKey } from '../../src/trainer/weights.js';
import { numel } from '../../src/checkpoint/tensor.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cnm-settings-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('trainer settings from config.yaml', () => {
  it('maps the reference sections and ours, with absolute paths', () => {
    const { config } = parseConfig(
      {
        model: { base_path: 'base' },
        data: { sources: [{ type: 'synthetic', seed: 3 }, { type: 'jsonl', path: 'data/a.jsonl', weight: 2 }], sequence_length: 128, per_device_train_batch_size: 2, rank: 1, world_size: 4 },
        local_par: { gradient_accumulation_steps: 3 },
        ckpt: { checkpoint_interval: 5 },
        opt: { lr: 0.01 },
        trainer: { backend: 'cpu', precision: 'fp32' },
      },
      { runDir: dir, configFile: join(dir, 'config.yaml') },
    );
    const s = trainerSettings(config, dir, {});
    expect(s.basePath).toBe(join(dir, 'base'));
    expect(s.ownDir).toBe(join(dir, 'checkpoints'));
    expect(s.validatorDir).toBe(join(dir, 'validator_checkpoint'));
    expect(s.finalDir).toBe(join(dir, 'final'));
    expect(s.taskPath).toBe(join(dir, 'expert_groups', 'exp_math'));
    expect(s.gradientAccumulation).toBe(3);
    expect(s.checkpointInterval).toBe(5);
    expect(s.engine).toMatchObject({ backend: 'cpu', precision: 'fp32', optimizer: { lr: 0.01, betas: [0.9, 0.95], weightDecay: 0.1, maxGradNorm: 1 } });
    expect(s.data.sources).toEqual([
      { kind: 'synthetic-math', name: 'synthetic-3', weight: 1, seed: 3 },
      { kind: 'jsonl', name: 'a.jsonl', path: join(dir, 'data', 'a.jsonl'), weight: 2, textColumn: 'text' },
    ]);
    expect(s.data).toMatchObject({ sequenceLength: 128, batchSize: 2, rank: 1, worldSize: 4, tokenizer: { kind: 'auto', dir: join(dir, 'base') } });
  });

  it('data.tokenizer_path names a tokenizer.json file (or its directory)', () => {
    const loc = { runDir: dir, configFile: join(dir, 'config.yaml') };
    const src = { sources: [{ type: 'synthetic' }] };
    const f = trainerSettings(parseConfig({ data: { ...src, tokenizer_path: 'tok/my-tokenizer.json' } }, loc).config, dir, {});
    expect(f.data.tokenizer).toEqual({ kind: 'hf', file: join(dir, 'tok', 'my-tokenizer.json') });
    const d = trainerSettings(parseConfig({ data: { ...src, tokenizer_path: 'tok' } }, loc).config, dir, {});
    expect(d.data.tokenizer).toEqual({ kind: 'hf', dir: join(dir, 'tok') });
  });

  it('no data source is a config error that shows how to add one', () => {
    const { config } = parseConfig({}, { runDir: dir, configFile: join(dir, 'config.yaml') });
    expect(() => trainerSettings(config, dir, {})).toThrow(expect.objectContaining({ code: 'CNM_ERR_TRAINER_CONFIG', message: expect.stringContaining('data.sources') }));
  });
});

describe('architecture and expert group', () => {
  it('reads config.json, rejects a non-DeepSeek file, applies the Connito overrides', () => {
    const f = join(dir, 'config.json');
    writeFileSync(f, JSON.stringify(tinyArch()));
    const a = readArch(f);
    expect(a.hidden_size).toBe(32);
    const o = applyConnitoOverrides(a, { partialTopk: 1, sequenceLength: 128 });
    expect(o).toMatchObject({ num_experts_per_tok: 1, max_position_embeddings: 128, topk_group: 1, norm_topk_prob: true });
    writeFileSync(f, JSON.stringify({ model_type: 'llama', hidden_size: 32 }));
    expect(() => readArch(f)).toThrow(expect.objectContaining({ code: 'CNM_ERR_MODEL_CONFIG', message: expect.stringContaining('vocab_size') }));
    expect(() => readArch(join(dir, 'missing.json'))).toThrow(expect.objectContaining({ code: 'CNM_ERR_MODEL_CONFIG', message: expect.stringContaining('model.base_path') }));
  });

  it('loads the task folder and keeps the org ids of existing MoE layers only', () => {
    const t = join(dir, 'exp_tiny');
    mkdirSync(t);
    writeFileSync(join(t, 'config.yaml'), 'group_id: 3\ndata:\n  sequence_length: 100\n');
    // Layer 0 is dense and layer 5 does not exist: both ignored, as in the reference.
    writeFileSync(join(t, 'expert_assignment.json'), JSON.stringify({ '0': [[0, 1]], '1': [[0, 6], [1, 2], [2, 4], [3, 0]], '5': [[0, 3]] }));
    const g = loadExpertGroup(t);
    expect(g.groupId).toBe(3);
    const allowed = allowedExperts(g.assignment, tinyArch(), 'x');
    expect(allowed).toEqual({ 1: [0, 2, 4, 6] });
    expect(groupExpertKeys(allowed)).toEqual([
      'model.layers.1.mlp.experts.0.gate_up_proj',
      'model.layers.1.mlp.experts.0.down_proj',
      'model.layers.1.mlp.experts.2.gate_up_proj',
      'model.layers.1.mlp.experts.2.down_proj',
      'model.layers.1.mlp.experts.4.gate_up_proj',
      'model.layers.1.mlp.experts.4.down_proj',
      'model.layers.1.mlp.experts.6.gate_up_proj',
      'model.layers.1.mlp.experts.6.down_proj',
    ]);
    writeFileSync(join(t, 'expert_assignment.json'), JSON.stringify({ '1': [[0, 9]] }));
    expect(() => allowedExperts(loadExpertGroup(t).assignment, tinyArch(), 'x')).toThrow(expect.objectContaining({ code: 'CNM_ERR_EXPERT_ASSIGNMENT' }));
    expect(() => loadExpertGroup(join(dir, 'nope'))).toThrow(expect.objectContaining({ code: 'CNM_ERR_EXPERT_ASSIGNMENT', message: expect.stringContaining('expert_assignment.json') }));
  });
});

describe('tiny model and weight assembly', () => {
  it('is deterministic, has the reference key layout and shapes', () => {
    const a = tinyArch();
    const w1 = tinyWeights(a, { seed: 1 });
    const w2 = tinyWeights(a, { seed: 1 });
    const w3 = tinyWeights(a, { seed: 2 });
    expect([...w1.keys()]).toEqual(archTensorShapes(a).map(([n]) => n));
    for (const [k, t] of w1) {
      expect(Buffer.from(t.data).equals(Buffer.from(w2.get(k)!.data))).toBe(true);
      expect(t.dtype).toBe('float16');
      expect(t.data.byteLength).toBe(numel(t.shape) * 2);
    }
    expect(Buffer.from(w1.get('lm_head.weight')!.data).equals(Buffer.from(w3.get('lm_head.weight')!.data))).toBe(false);
    expect(w1.get('model.layers.1.mlp.experts.7.gate_up_proj')!.shape).toEqual([32, 32]);
    expect(w1.get('model.layers.1.mlp.experts.7.down_proj')!.shape).toEqual([32, 16]);
    expect(w1.get('model.layers.1.mlp.gate.weight')!.shape).toEqual([8, 32]);
    expect(w1.has('model.layers.0.mlp.gate_proj.weight')).toBe(true);
    const allowed = allowedExperts(tinyAssignment(a, 0), a, 'tiny');
    expect(allowed).toEqual({ 1: [0, 2, 4, 6] });
  });

  it('converts HF expert matrices to gate_up_proj = [gate; up] and keeps only what the group needs', () => {
    const a = tinyArch();
    const hf = tinyWeights(a, { seed: 4, expertFormat: 'hf' });
    const allowed = { 1: [2, 4] };
    const sd = convertHfExperts(filterNeeded(hf, allowed), 'base');
    expect(sd.has('model.layers.1.mlp.experts.3.gate_up_proj')).toBe(false);
    const gu = sd.get('model.layers.1.mlp.experts.2.gate_up_proj')!;
    expect(gu.shape).toEqual([32, 32]);
    const gate = hf.get('model.layers.1.mlp.experts.2.gate_proj.weight')!;
    const up = hf.get('model.layers.1.mlp.experts.2.up_proj.weight')!;
    expect(Buffer.from(gu.data).equals(Buffer.concat([gate.data, up.data]))).toBe(true);
    expect(sd.get('model.layers.1.mlp.experts.4.down_proj')!.shape).toEqual([32, 16]);
    expect(sd.has('model.layers.1.mlp.shared_experts.up_proj.weight')).toBe(true);
    expect(isNeededKey('model.layers.1.mlp.experts.5.down_proj', allowed)).toBe(false);
    expect(isGroupExpertKey('model.layers.1.mlp.shared_experts.down_proj.weight', allowed)).toBe(false);
  });

  it('trainer_state.json is validated before use', () => {
    expect(parseTrainerState({ version: 2 }).ok).toBe(false);
    expect(parseTrainerState({ version: 1, globalVer: 1, innerOpt: -1, groupId: 0, loss: null, optimizer: null, data: null, baseline: null }).ok).toBe(false);
    expect(parseTrainerState({ version: 1, globalVer: 1, innerOpt: 4, groupId: 0, loss: 2.5, optimizer: { step: 4, scale: 1, goodSteps: 4 }, data: null, baseline: null, savedAt: '' }).ok).toBe(true);
  });
});
