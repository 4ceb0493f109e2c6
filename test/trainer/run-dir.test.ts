// Start-point selection over real checkpoint directories written with src/checkpoint: baselines vs
// own checkpoints vs the final save, incomplete directories ignored, unusable files rejected.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { beginCheckpoint, expertFileName, ownCheckpointName, validatorCheckpointName, writeCheckpoint } from '../../src/checkpoint/dir.js';
import { tensorFromValues, type StateDict } from '../../src/checkpoint/tensor.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { RunDirectory } from '../../src/trainer/run-dir.js';
import { TRAINER_STATE_FILE } from '../../src/trainer/store.js';
import { ALICE } from './run-dir-helper.js';

let dir: string;
let rd: RunDirectory;
const allowed = { 1: [0, 2] };
const log = createLogger({ proc: 'test', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

function experts(v: number): StateDict {
  const sd: StateDict = new Map();
  for (const e of [0, 2]) {
    sd.set(`model.layers.1.mlp.experts.${e}.gate_up_proj`, tensorFromValues('float16', [2, 2], [v, v, v, v]));
    sd.set(`model.layers.1.mlp.experts.${e}.down_proj`, tensorFromValues('float16', [2, 1], [v, v]));
  }
  return sd;
}

async function own(parent: string, g: number, k: number, groupId = 0): Promise<void> {
  const p = await beginCheckpoint(parent, ownCheckpointName(g, k));
  await p.writePt(expertFileName(0), experts(k));
  writeFileSync(p.filePath(TRAINER_STATE_FILE), JSON.stringify({ version: 1, globalVer: g, innerOpt: k, groupId, loss: 1, optimizer: null, data: null, baseline: null, savedAt: '' }));
  await p.addFile(TRAINER_STATE_FILE);
  await p.commit({ expert_group: 0 });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cnm-rundir-'));
  rd = new RunDirectory({ ownDir: join(dir, 'checkpoints'), validatorDir: join(dir, 'validator_checkpoint'), finalDir: join(dir, 'final'), checkpointTopk: 2 }, 0, allowed, { hidden: 2, expertWidth: 1 }, log);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('RunDirectory', () => {
  it('orders by (global_ver, inner_opt); the final save wins a tie; incomplete directories do not exist', async () => {
    expect(await rd.newestOwn()).toBeNull();
    expect(await rd.newestBaseline()).toBeNull();
    await own(join(dir, 'checkpoints'), 5, 20);
    await own(join(dir, 'checkpoints'), 5, 40);
    // A checkpoint directory without its manifest (a writer killed before the end).
    mkdirSync(join(dir, 'checkpoints', ownCheckpointName(5, 60)));
    writeFileSync(join(dir, 'checkpoints', ownCheckpointName(5, 60), expertFileName(0)), 'partial');
    expect(await rd.newestOwn()).toMatchObject({ kind: 'own', globalVer: 5, innerOpt: 40 });
    await own(join(dir, 'final'), 5, 40);
    expect(await rd.newestOwn()).toMatchObject({ kind: 'final', innerOpt: 40 });
    await own(join(dir, 'checkpoints'), 5, 41);
    expect(await rd.newestOwn()).toMatchObject({ kind: 'own', innerOpt: 41 });

    await writeCheckpoint(join(dir, 'validator_checkpoint'), validatorCheckpointName(3, ALICE, 7), [{ file: expertFileName(0), stateDict: experts(9) }]);
    await writeCheckpoint(join(dir, 'validator_checkpoint'), validatorCheckpointName(4, ALICE, 6), [{ file: expertFileName(0), stateDict: experts(8) }]);
    const b = await rd.newestBaseline();
    expect(b).toMatchObject({ kind: 'baseline', globalVer: 7, innerOpt: 0 });
    expect(await rd.newestBaseline(new Set([b!.path]))).toMatchObject({ globalVer: 6 });
  });

  it('reads the expert file (refusing non-finite or foreign ones) and the trainer state of its own group only', async () => {
    const ref = (await rd.newestOwn())!;
    const sd = await rd.readModel(ref);
    expect([...sd.keys()].sort()).toEqual(['model.layers.1.mlp.experts.0.down_proj', 'model.layers.1.mlp.experts.0.gate_up_proj', 'model.layers.1.mlp.experts.2.down_proj', 'model.layers.1.mlp.experts.2.gate_up_proj']);
    expect((await rd.readState(ref))?.innerOpt).toBe(41);

    const nan = experts(1);
    nan.set('model.layers.1.mlp.experts.0.down_proj', tensorFromValues('float16', [2, 1], [NaN, 1]));
    const e = await writeCheckpoint(join(dir, 'validator_checkpoint'), validatorCheckpointName(5, ALICE, 9), [{ file: expertFileName(0), stateDict: nan }]);
    await expect(rd.readModel({ kind: 'baseline', path: e.path, globalVer: 9, innerOpt: 0 })).rejects.toMatchObject({ code: 'CNM_ERR_WEIGHTS', message: expect.stringContaining('NaN') });
    const other: StateDict = new Map([['model.layers.1.mlp.experts.5.down_proj', tensorFromValues('float16', [2, 1], [1, 1])]]);
    const f = await writeCheckpoint(join(dir, 'validator_checkpoint'), validatorCheckpointName(6, ALICE, 10), [{ file: expertFileName(0), stateDict: other }]);
    await expect(rd.readModel({ kind: 'baseline', path: f.path, globalVer: 10, innerOpt: 0 })).rejects.toMatchObject({ code: 'CNM_ERR_WEIGHTS' });

    await own(join(dir, 'checkpoints'), 5, 50, 3);
    expect(await rd.readState({ kind: 'own', path: join(dir, 'checkpoints', ownCheckpointName(5, 50)), globalVer: 5, innerOpt: 50 })).toBeNull();
  });
});
