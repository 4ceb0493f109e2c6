// The trainer as the supervisor runs it: a forked child (dist/trainer/main.js, so `npm run build`
// first) with IPC, real signals and the real engine on the tiny model.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listCheckpoints, readCheckpoint, selectBestCheckpoint, expertFileName } from '../../src/checkpoint/dir.js';
import { readPt } from '../../src/checkpoint/pt.js';
import { writeConfig } from '../../src/config/index.js';
import { parseChildMessage, type ChildMessage } from '../../src/trainer/ipc.js';
import { makeRun } from './run-dir-helper.js';

const MAIN = resolve(import.meta.dirname, '../../dist/trainer/main.js');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Child {
  proc: ChildProcess;
  messages: ChildMessage[];
  output: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(pred: (m: ChildMessage) => boolean, timeoutMs?: number): Promise<ChildMessage>;
}

function start(dir: string): Child {
  const proc = fork(MAIN, ['--path', dir], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env, CONNITO_HEARTBEAT_MS: '200', CONNITO_LOG_FORMAT: 'json' }, serialization: 'json' });
  const messages: ChildMessage[] = [];
  const output: string[] = [];
  const waiters: Array<{ pred: (m: ChildMessage) => boolean; resolve: (m: ChildMessage) => void }> = [];
  proc.stdout!.on('data', (d) => output.push(String(d)));
  proc.stderr!.on('data', (d) => output.push(String(d)));
  proc.on('message', (raw) => {
    const p = parseChildMessage(raw);
    if (!p.ok) throw new Error(`invalid IPC message from the trainer: ${p.error}`);
    messages.push(p.message);
    for (const w of [...waiters]) {
      if (w.pred(p.message)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(p.message);
      }
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => proc.once('exit', (code, signal) => res({ code, signal })));
  return {
    proc,
    messages,
    output,
    exit,
    waitFor: (pred, timeoutMs = 30_000) =>
      new Promise<ChildMessage>((res, rej) => {
        const hit = messages.find(pred);
        if (hit) return res(hit);
        const t = setTimeout(() => rej(new Error(`timed out waiting for a trainer message; output:\n${output.join('').slice(-3000)}`)), timeoutMs);
        waiters.push({ pred, resolve: (m) => (clearTimeout(t), res(m)) });
        void exit.then(() => {
          clearTimeout(t);
          const late = messages.find(pred);
          if (late) res(late);
          else rej(new Error(`trainer exited before the message; output:\n${output.join('').slice(-3000)}`));
        });
      }),
  };
}

const isProgress = (k: number) => (m: ChildMessage) => m.type === 'progress' && (m.innerOptStep ?? 0) >= k;

describe('trainer child process', () => {
  it('SIGTERM mid-run: final/ is complete and loadable, exit code 0, heartbeats and progress over IPC', async () => {
    const run = await makeRun({ ckpt: { checkpoint_interval: 1000 } });
    dirs.push(run.dir);
    const c = start(run.dir);
    await c.waitFor((m) => m.type === 'ready');
    await c.waitFor(isProgress(3));
    c.proc.kill('SIGTERM');
    const { code } = await c.exit;
    expect(code).toBe(0);
    const fin = c.messages.find((m) => m.type === 'final') as { path: string } | undefined;
    expect(fin?.path).toBeTruthy();
    expect(c.messages.some((m) => m.type === 'heartbeat')).toBe(true);
    const [entry] = await listCheckpoints(run.config.ckpt.final_path);
    expect(entry!.path).toBe(fin!.path);
    await readCheckpoint(entry!.path, { verifyHashes: true });
    const sd = await readPt(join(entry!.path, expertFileName(0)));
    expect(sd.size).toBe(8);
    expect(entry!.innerOpt).toBeGreaterThanOrEqual(3);
  });

  it('the stop message over IPC stops it the same way; closing the IPC channel (supervisor gone) too', async () => {
    const run = await makeRun({ ckpt: { checkpoint_interval: 1000 } });
    dirs.push(run.dir);
    let c = start(run.dir);
    await c.waitFor(isProgress(1));
    c.proc.send({ type: 'stop', reason: 'test', budgetMs: 10_000 });
    expect((await c.exit).code).toBe(0);
    expect(c.messages.some((m) => m.type === 'final')).toBe(true);
    const firstStop = (await listCheckpoints(run.config.ckpt.final_path))[0]!.innerOpt;
    c = start(run.dir);
    await c.waitFor(isProgress(firstStop + 2));
    c.proc.disconnect();
    expect((await c.exit).code).toBe(0);
    expect((await listCheckpoints(run.config.ckpt.final_path))[0]!.innerOpt).toBeGreaterThanOrEqual(firstStop + 2);
  });

  it('SIGKILL at random points while checkpointing every step: the selected checkpoint is always complete and valid', async () => {
    const run = await makeRun({ ckpt: { checkpoint_interval: 1, checkpoint_topk: 2 } });
    dirs.push(run.dir);
    let lastSeen = -1;
    let killedMidWrite = 0;
    let rounds = 0;
    // Bounded: stop after two kills that landed inside a checkpoint write (about every other kill does).
    for (; rounds < 10 && killedMidWrite < 2; rounds++) {
      const c = start(run.dir);
      await c.waitFor((m) => m.type === 'checkpoint' && m.innerOpt > lastSeen);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 150)));
      c.proc.kill('SIGKILL');
      await c.exit;
      if (readdirSync(run.config.ckpt.checkpoint_path).some((n) => n.startsWith('.tmp_'))) killedMidWrite++;
      const best = await selectBestCheckpoint(run.config.ckpt.checkpoint_path);
      expect(best).not.toBeNull();
      await readCheckpoint(best!.path, { verifyHashes: true });
      const sd = await readPt(join(best!.path, expertFileName(0)));
      expect(sd.size).toBe(8);
      expect(best!.innerOpt).toBeGreaterThan(lastSeen);
      lastSeen = best!.innerOpt;
    }
    expect(killedMidWrite).toBeGreaterThan(0);
    // The next start cleans up what the killed writers left and resumes from the newest checkpoint.
    const c = start(run.dir);
    const first = (await c.waitFor(isProgress(0))) as { innerOptStep: number };
    expect(first.innerOptStep).toBe(lastSeen + 1);
    expect(readdirSync(run.config.ckpt.checkpoint_path).filter((n) => n.startsWith('.tmp_'))).toEqual([]);
    c.proc.kill('SIGTERM');
    expect((await c.exit).code).toBe(0);
  });

  it('bad data ends the child with a clear fatal message (never a hang or a crash)', async () => {
    const run = await makeRun();
    dirs.push(run.dir);
    await writeConfig(run.dir, { data: { sources: [{ type: 'jsonl', path: 'data/missing.jsonl', weight: 1, text_column: 'text' }] } });
    let c = start(run.dir);
    let { code } = await c.exit;
    expect(code).toBe(1);
    let fatal = c.messages.find((m) => m.type === 'fatal') as { reason: string; code: string };
    expect(fatal.code).toBe('CNM_ERR_DATA_SOURCE_MISSING');
    expect(fatal.reason).toContain(join(run.dir, 'data', 'missing.jsonl'));

    writeFileSync(join(run.dir, 'junk.jsonl'), 'not json\n{"other": "column"}\n');
    await writeConfig(run.dir, { data: { sources: [{ type: 'jsonl', path: 'junk.jsonl', weight: 1, text_column: 'text' }] } });
    c = start(run.dir);
    ({ code } = await c.exit);
    expect(code).toBe(1);
    fatal = c.messages.find((m) => m.type === 'fatal') as { reason: string; code: string };
    expect(fatal.code).toBe('CNM_ERR_DATA_SOURCE_EMPTY');
    expect(fatal.reason).toMatch(/invalid_json=1.*missing_column=1/);

    writeFileSync(join(run.dir, 'base', 'tokenizer.json'), '{"model": ');
    await writeConfig(run.dir, { data: { sources: [{ type: 'synthetic', seed: 1, weight: 1 }] } });
    c = start(run.dir);
    ({ code } = await c.exit);
    expect(code).toBe(2);
    fatal = c.messages.find((m) => m.type === 'fatal') as { reason: string; code: string };
    expect(fatal.code).toBe('CNM_ERR_TOKENIZER');
    expect(fatal.reason).toContain('tokenizer.json');
    expect(existsSync(run.config.ckpt.final_path) ? readdirSync(run.config.ckpt.final_path).filter((n) => !n.startsWith('.')) : []).toEqual([]);
  });
});
