// Builds a real run directory for trainer tests: a tiny DeepSeek-V2-shaped base model (config.json
// + model.safetensors), an expert-group folder, a config.yaml and a synthetic math data source.
import { mkdirSync, mkdtempSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConfigFile, type ConfigPatch, type MinerConfig } from '../../src/config/index.js';
import { writeCheckpoint, validatorCheckpointName, expertFileName } from '../../src/checkpoint/dir.js';
import type { StateDict } from '../../src/checkpoint/tensor.js';
import type { ExpertAssignment } from '../../src/protocol/experts.js';
import type { DeepseekV2Arch } from '../../src/trainer/model-config.js';
import { expertGroupStateDict, tinyArch, tinyAssignment, tinyWeights, writeExpertGroupFolder, writeTinyModel } from '../../src/trainer/tiny-model.js';

/** A valid SS58 address (Alice) for validator folder names. */
export const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';

export interface TestRun {
  dir: string;
  config: MinerConfig;
  arch: DeepseekV2Arch;
  assignment: ExpertAssignment;
  base: StateDict;
}

// initializer_range 0.1: with only the experts trainable, the frozen lm_head's scale bounds how far
// the logits can move; at DeepSeek's 0.02 the tiny model's loss can barely drop.
export const TINY = { hidden: 32, layers: 2, experts: 8, expertWidth: 16, vocab: 320, initializerRange: 0.1 };

export async function makeRun(patch: ConfigPatch = {}, name = 'cnm-trainer-'): Promise<TestRun> {
  const dir = mkdtempSync(join(tmpdir(), name));
  const { arch, weights } = await writeTinyModel(join(dir, 'base'), { ...TINY, seed: 1 });
  const assignment = tinyAssignment(arch, 0);
  await writeExpertGroupFolder(join(dir, 'expert_groups', 'exp_tiny'), 0, assignment);
  const { config } = await createConfigFile(dir, {
    ...patch,
    model: { base_path: 'base', ...patch.model },
    task: { expert_group_name: 'exp_tiny', ...patch.task },
    data: { sources: [{ type: 'synthetic', seed: 1, weight: 1 }], sequence_length: 64, per_device_train_batch_size: 2, ...patch.data },
    local_par: { gradient_accumulation_steps: 2, ...patch.local_par },
    ckpt: { checkpoint_interval: 4, checkpoint_topk: 3, ...patch.ckpt },
    opt: { lr: 0.01, weight_decay: 0, ...patch.opt },
    sched: { warmup_steps: 0, total_steps: 10000, ...patch.sched },
    trainer: { backend: 'cpu', precision: 'fp32', threads: 1, ...patch.trainer },
    devnet: { enabled: true, ...patch.devnet },
  });
  return { dir, config, arch, assignment, base: weights };
}

/**
 * Publishes a validator baseline atomically: written beside the validator directory, then renamed
 * in (a synchronous rename, so a test can drop it at an exact point of the loop).
 */
export async function stageBaseline(run: TestRun, globalVer: number, seed: number): Promise<{ publish: () => void; experts: StateDict; name: string }> {
  const weights = tinyWeights(tinyArch(TINY), { seed, expertFormat: 'connito' });
  const experts = expertGroupStateDict(weights, run.assignment, run.arch);
  const name = validatorCheckpointName(1, ALICE, globalVer);
  const staging = join(run.dir, 'staging');
  await writeCheckpoint(staging, name, [{ file: expertFileName(0), stateDict: experts }], { expert_group: 0 });
  const publish = (): void => {
    mkdirSync(run.config.ckpt.validator_checkpoint_path, { recursive: true });
    renameSync(join(staging, name), join(run.config.ckpt.validator_checkpoint_path, name));
  };
  return { experts, name, publish };
}
