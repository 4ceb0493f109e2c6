// Checkpoint directories: atomic creation, manifests, the reference's selection order, retention with
// cross-process pins, start-up clean-up, and a writer SIGKILLed at random points.
// Child processes run the built dist/ (npm test builds first).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MANIFEST_FILE,
  beginCheckpoint,
  cleanupCheckpointDir,
  isPinned,
  listCheckpoints,
  openExpertFile,
  parseCheckpointName,
  pinBestCheckpoint,
  pinCheckpoint,
  pruneCheckpoints,
  readCheckpoint,
  selectBestCheckpoint,
  validatorCheckpointName,
  writeCheckpoint,
} from '../../src/checkpoint/dir.js';
import { CheckpointError } from '../../src/checkpoint/errors.js';
import { readPt } from '../../src/checkpoint/pt.js';
import { type StateDict, tensorFromValues } from '../../src/checkpoint/tensor.js';
import { modelHashHex } from '../../src/protocol/hashing.js';
import { prng, tempDir } from './helpers.js';

const CHILD = join(import.meta.dirname, 'child.mjs');
const HK = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const tmp = tempDir('ckpt-dir');
afterAll(() => tmp.cleanup());
let seq = 0;
const fresh = (label: string) => {
  const p = join(tmp.path, `${label}-${seq++}`);
  mkdirSync(p, { recursive: true });
  return p;
};

function sd(v: number): StateDict {
  return new Map([
    ['model.layers.1.mlp.experts.8.gate_up_proj', tensorFromValues('float16', [2, 2], [v, v + 1, v + 2, v + 3])],
    ['model.layers.1.mlp.experts.8.down_proj', tensorFromValues('float16', [2], [v, -v])],
  ]);
}

async function own(dir: string, g: number, k: number, v = k): Promise<void> {
  await writeCheckpoint(dir, `globalver_${g}_inneropt_${k}`, [{ file: 'model_expgroup_0.pt', stateDict: sd(v) }], { expert_group: 0 });
}

function startChild(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
}

async function waitFor(child: ChildProcess, text: string): Promise<void> {
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes(text)) resolve();
    });
    child.on('exit', (code) => (out.includes(text) ? resolve() : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

describe('writing and reading', () => {
  it('publishes a directory with the files and a manifest, atomically named', async () => {
    const dir = fresh('write');
    const p = await beginCheckpoint(dir, 'globalver_7099968_inneropt_40');
    expect(readdirSync(dir)).toEqual(['.tmp_globalver_7099968_inneropt_40']);
    expect(await listCheckpoints(dir)).toEqual([]);
    await p.writePt('model_expgroup_0.pt', sd(1));
    writeFileSync(p.filePath('notes.txt'), 'hello');
    await p.addFile('notes.txt');
    const hash = await modelHashHex(sd(1));
    const e = await p.commit({ expert_group: 0, model_hash: hash, run_id: 'r1', base_version: 7099968, extra: { loss: 2.5 } });
    expect(readdirSync(dir)).toEqual(['globalver_7099968_inneropt_40']);
    expect(e).toMatchObject({ kind: 'miner', globalVer: 7099968, innerOpt: 40, name: 'globalver_7099968_inneropt_40' });
    const m = JSON.parse(readFileSync(join(e.path, MANIFEST_FILE), 'utf8'));
    expect(m).toMatchObject({ format: 'connito-checkpoint/1', global_ver: 7099968, inner_opt: 40, expert_group: 0, model_hash: hash, run_id: 'r1', base_version: 7099968, extra: { loss: 2.5 } });
    expect(m.files.map((f: { name: string }) => f.name)).toEqual(['model_expgroup_0.pt', 'notes.txt']);
    expect(m.files[1]).toEqual({ name: 'notes.txt', size: 5, sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824' });
    const back = await readCheckpoint(e.path, { verifyHashes: true });
    expect(back.manifest).toEqual(m);
    const store = await openExpertFile(e.path, 0);
    try {
      expect(await modelHashHex(store)).toBe(hash);
    } finally {
      await store.close();
    }
  });

  it('the expert file of a written checkpoint hashes to the golden vector', async () => {
    const dir = fresh('vector');
    const v = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/vectors/model_hash.json'), 'utf8')).cases.find((c: { name: string }) => c.name === 'fp16_expert_shard');
    const shard: StateDict = new Map(v.state_dict_in_insertion_order.map((t: { key: string; dtype: 'float16'; shape: number[]; raw_le_hex: string }) => [t.key, { dtype: t.dtype, shape: t.shape, data: new Uint8Array(Buffer.from(t.raw_le_hex, 'hex')) }]));
    const e = await writeCheckpoint(dir, 'globalver_7099968_inneropt_40', [{ file: 'model_expgroup_0.pt', stateDict: shard }]);
    const store = await openExpertFile(e.path, 0);
    expect(await modelHashHex(store)).toBe(v.model_hash_hex);
    await store.close();
    // a missing expert file hashes like the reference's empty dict
    const none = await openExpertFile(e.path, 3);
    expect(none.missing).toBe(true);
    expect(await modelHashHex(none)).toBe('ab3b5331a7135ed50d0f182d026e60abdb3646fd51bcf8a3');
  });

  it('directories without a valid manifest do not exist for readers', async () => {
    const dir = fresh('invalid');
    await own(dir, 5, 1);
    mkdirSync(join(dir, 'globalver_9_inneropt_9')); // no manifest (a crashed legacy writer)
    await own(dir, 8, 1);
    truncateSync(join(dir, 'globalver_8_inneropt_1', 'model_expgroup_0.pt'), 100); // size mismatch
    await own(dir, 7, 1);
    const m = join(dir, 'globalver_7_inneropt_1', MANIFEST_FILE);
    writeFileSync(m, readFileSync(m, 'utf8').replace('"name": "globalver_7_inneropt_1"', '"name": "globalver_7_inneropt_2"'));
    mkdirSync(join(dir, 'notes')); // reference quirk: would be checkpoint (0, 0); not for us
    writeFileSync(join(dir, 'config.yaml'), 'x: 1');
    expect((await listCheckpoints(dir)).map((c) => c.name)).toEqual(['globalver_5_inneropt_1']);
    await expect(readCheckpoint(join(dir, 'globalver_8_inneropt_1'))).rejects.toThrow(/bytes, manifest says/);
    await expect(readCheckpoint(join(dir, 'globalver_9_inneropt_9'))).rejects.toThrow(/no manifest/);
    await expect(readCheckpoint(join(dir, 'globalver_7_inneropt_1'))).rejects.toBeInstanceOf(CheckpointError);
  });

  it('rewriting an existing name replaces it whole', async () => {
    const dir = fresh('replace');
    await own(dir, 1, 20, 1);
    await own(dir, 1, 20, 2);
    const back = await readPt(join(dir, 'globalver_1_inneropt_20', 'model_expgroup_0.pt'));
    expect([...back.values()][1]!.data).toEqual(sd(2).get('model.layers.1.mlp.experts.8.down_proj')!.data);
    expect(readdirSync(dir)).toEqual(['globalver_1_inneropt_20']);
  });
});

describe('selection (reference order, §7.5)', () => {
  it('orders by (global_ver, inner_opt); validator folders count as K = 0; primary wins ties', async () => {
    const vdir = fresh('validator');
    const odir = fresh('own');
    expect(await selectBestCheckpoint(vdir, odir)).toBeNull();
    await own(odir, 100, 0);
    await writeCheckpoint(vdir, validatorCheckpointName(3, HK, 100), [{ file: 'model_expgroup_0.pt', stateDict: sd(1) }]);
    // tie (100, 0): the primary (validator) directory wins
    expect((await selectBestCheckpoint(vdir, odir))!.kind).toBe('validator');
    expect((await selectBestCheckpoint(odir, vdir))!.kind).toBe('miner');
    await own(odir, 100, 40);
    expect((await selectBestCheckpoint(vdir, odir))!.name).toBe('globalver_100_inneropt_40');
    await writeCheckpoint(vdir, validatorCheckpointName(5, HK, 200), [{ file: 'model_expgroup_0.pt', stateDict: sd(1) }]);
    const best = (await selectBestCheckpoint(vdir, odir))!;
    expect(best).toMatchObject({ kind: 'validator', uid: 5, hotkey: HK, globalVer: 200, innerOpt: 0 });
    await own(odir, 200, 1);
    expect((await selectBestCheckpoint(vdir, odir))!.name).toBe('globalver_200_inneropt_1');
    expect((await selectBestCheckpoint(odir))!.name).toBe('globalver_200_inneropt_1');
    expect(parseCheckpointName('globalver_1_inneropt_x')).toBeNull();
    expect(parseCheckpointName('globalver_7099968')).toEqual({ kind: 'global', globalVer: 7099968, innerOpt: 0 });
    // a validator's own directory of merged models (what it serves)
    const gdir = fresh('global');
    await writeCheckpoint(gdir, 'globalver_300', [{ file: 'model_expgroup_0.pt', stateDict: sd(3) }]);
    await writeCheckpoint(gdir, 'globalver_200', [{ file: 'model_expgroup_0.pt', stateDict: sd(2) }]);
    expect((await selectBestCheckpoint(gdir))!.name).toBe('globalver_300');
  });
});

describe('retention and pins', () => {
  it('keeps the newest k, never the newest-less, and never a checkpoint pinned by a live process', async () => {
    const dir = fresh('prune');
    for (let k = 1; k <= 5; k++) await own(dir, 1, k);
    const child = startChild(['pin', join(dir, 'globalver_1_inneropt_1')]);
    try {
      await waitFor(child, 'pinned');
      expect(await isPinned(join(dir, 'globalver_1_inneropt_1'))).toBe(true);
      expect((await pruneCheckpoints(dir, 2)).sort()).toEqual(['globalver_1_inneropt_2', 'globalver_1_inneropt_3']);
      expect((await listCheckpoints(dir)).map((c) => c.innerOpt)).toEqual([5, 4, 1]);
      // keep = 0 still keeps the newest
      expect(await pruneCheckpoints(dir, 0)).toEqual(['globalver_1_inneropt_4']);
      expect((await listCheckpoints(dir)).map((c) => c.innerOpt)).toEqual([5, 1]);
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
    // the pinning process is dead: its pin no longer protects anything, and clean-up removes it
    expect(await isPinned(join(dir, 'globalver_1_inneropt_1'))).toBe(false);
    expect((await cleanupCheckpointDir(dir)).filter((n) => n.startsWith('.pins/'))).toHaveLength(1);
    expect(await pruneCheckpoints(dir, 1)).toEqual(['globalver_1_inneropt_1']);
  });

  it('an in-process pin holds until released; pinning an incomplete directory fails', async () => {
    const dir = fresh('pin');
    await own(dir, 1, 1);
    await own(dir, 1, 2);
    const pin = (await pinBestCheckpoint(dir))!;
    expect(pin.checkpoint.innerOpt).toBe(2);
    const old = await pinCheckpoint(join(dir, 'globalver_1_inneropt_1'));
    expect(await pruneCheckpoints(dir, 1)).toEqual([]);
    await old.release();
    expect(await pruneCheckpoints(dir, 1)).toEqual(['globalver_1_inneropt_1']);
    await pin.release();
    await expect(pinCheckpoint(join(dir, 'globalver_1_inneropt_1'))).rejects.toBeInstanceOf(CheckpointError);
    expect(readdirSync(join(dir, '.pins'))).toEqual([]);
  });

  it('start-up clean-up removes temp dirs of dead writers only; a live writer keeps its name', async () => {
    const dir = fresh('cleanup');
    const name = 'globalver_1_inneropt_7';
    const child = startChild(['hold', dir, name]);
    try {
      await waitFor(child, 'holding');
      expect(readdirSync(dir)).toContain(`.tmp_${name}`);
      expect(await cleanupCheckpointDir(dir)).toEqual([]);
      expect(readdirSync(dir)).toContain(`.tmp_${name}`);
      await expect(beginCheckpoint(dir, name)).rejects.toThrow(/being written by process/);
      expect(await listCheckpoints(dir)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
    // the writer is dead: its leftovers go, and the name can be written again
    expect(await cleanupCheckpointDir(dir)).toEqual([`.tmp_${name}`]);
    await own(dir, 1, 7);
    expect((await listCheckpoints(dir)).map((c) => c.name)).toEqual([name]);
    expect(readdirSync(dir)).toEqual([name]);
  });
});

describe('kill the writer', () => {
  it('a writer SIGKILLed at random points never exposes an incomplete checkpoint', async () => {
    const dir = fresh('kill');
    await own(dir, 1, 0);
    const keep = await pinCheckpoint(join(dir, 'globalver_1_inneropt_0'));
    const rand = prng(7);
    const { contentFor } = (await import(join(import.meta.dirname, 'content.mjs'))) as { contentFor: (k: number) => StateDict };
    let next = 1;
    let bestBefore = 0;
    let kills = 0;
    // 12 rounds; on a loaded machine a write may take far longer than here, so until one checkpoint
    // has completed the kill window widens with each round (bounded).
    for (let round = 0; round < 12 || (bestBefore === 0 && round < 40); round++) {
      const child = startChild(['write', dir, String(next)]);
      await waitFor(child, 'ready');
      // ~50 ms per checkpoint here: kills land before, inside and between writes, commits and prunes.
      const widen = bestBefore === 0 ? 1 + round : 1;
      await new Promise((r) => setTimeout(r, Math.floor(rand() * 300 * widen)));
      child.kill('SIGKILL');
      await exited(child);
      kills++;
      const best = await selectBestCheckpoint(dir);
      expect(best).not.toBeNull();
      // the selector's choice is complete and intact, byte for byte
      const checked = await readCheckpoint(best!.path, { verifyHashes: true });
      const back = await readPt(join(checked.path, 'model_expgroup_0.pt'));
      if (checked.innerOpt > 0) {
        const want = contentFor(checked.innerOpt);
        for (const [k, t] of want) expect(Buffer.from(back.get(k)!.data).equals(Buffer.from(t.data)), `${checked.name} ${k}`).toBe(true);
      }
      expect(checked.innerOpt).toBeGreaterThanOrEqual(bestBefore);
      bestBefore = checked.innerOpt;
      // the pinned earlier checkpoint is still there and valid, whatever the child pruned
      await readCheckpoint(join(dir, 'globalver_1_inneropt_0'), { verifyHashes: true });
      expect((await listCheckpoints(dir)).length).toBeGreaterThanOrEqual(1); // listing validates every manifest
      next = Math.max(next, ...readdirSync(dir).map((n) => Number(/_inneropt_(\d+)/.exec(n)?.[1] ?? 0))) + 1;
    }
    expect(kills).toBeGreaterThanOrEqual(12);
    expect(bestBefore).toBeGreaterThan(0); // some rounds did complete a checkpoint
    await cleanupCheckpointDir(dir);
    expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual(['.pins']);
    await keep.release();
    rmSync(dir, { recursive: true, force: true });
    expect(existsSync(dir)).toBe(false);
  });
});
