// End to end: whole local subnets (src/devnet) with the miners run as real `connito-miner start`
// processes (supervisor, phase clock, piscina task pool, trainer child with the native engine).
// The assertions are independent of the orchestrator's own bookkeeping: commitments are read back
// from the chain at the blocks validators read them, the assignment is recomputed with the protocol
// functions, and files are hashed again.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { expertFileName, listCheckpoints, readCheckpoint } from '../../src/checkpoint/dir.js';
import { PtFile } from '../../src/checkpoint/pt.js';
import { assignedValidator, assignMinersToValidators } from '../../src/protocol/assignment.js';
import { decodeMinerCommit, decodeSignatureCommit, decodeValidatorCommit, encodeMinerCommit2 } from '../../src/protocol/commits.js';
import { modelHashHex } from '../../src/protocol/hashing.js';
import type { PhaseName } from '../../src/protocol/phases.js';
import { verifyModelHash } from '../../src/protocol/signing.js';
import { runDevnet, type DevnetContext } from '../../src/devnet/orchestrator.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { phaseRange } from '../../src/workers/commit.js';
import { readCommitted } from '../../src/workers/committed.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BLOCK_MS = 200;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function newDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cnm-e2e-'));
  dirs.push(d);
  return d;
}

function quietLogger() {
  return createLogger({ proc: 'devnet', json: true, destination: new Writable({ write: (_c, _e, cb) => cb() }) });
}

function minerLog(dir: string): Array<Record<string, unknown>> {
  return readFileSync(join(dir, 'miner.log'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface CycleFacts {
  /** Validator → miners, recomputed from the head commitments at the start of Submission. */
  assignment: Map<string, string[]>;
  /** The global version and hash the validators committed in the previous cycle's ValidatorCommit2. */
  baseline: { version: number; hash: string } | null;
}

describe.sequential('devnet end to end', () => {
  it(
    '2 miners, 2 validators, 2 cycles: download verified, loss lower, exact commits in their windows, submitted to the assigned validator and accepted, a newer baseline reloaded',
    async () => {
      const dir = newDir();
      const lines: string[] = [];
      const facts = new Map<number, CycleFacts>();
      const chainChecks: Array<() => void> = [];
      let ctxRef: DevnetContext | null = null;
      const result = await runDevnet({
        dir,
        miners: 2,
        validators: 2,
        cycles: 2,
        blockMs: BLOCK_MS,
        logger: quietLogger(),
        out: (l) => lines.push(l),
        hooks: {
          phase: async (ctx, phase: PhaseName, cycle, block) => {
            ctxRef = ctx;
            if (phase === 'Distribute') {
              // What the validators committed at the end of the previous cycle (read at ValidatorCommit2 end + 1).
              const snap = await ctx.chain.allCommitments({ block });
              const hashes = ctx.validators.map((v) => {
                const r = snap.commitments.find((c) => c.hotkey === v.hotkey)!;
                const d = decodeValidatorCommit(r.data!);
                if (!d.ok) throw d.error;
                return { version: d.value.v!, hash: d.value.h! };
              });
              expect(new Set(hashes.map((x) => x.hash)).size).toBe(1); // the merge is shared: one model
              facts.set(cycle, { assignment: new Map(), baseline: hashes[0]! });
            }
            if (phase === 'Submission') {
              // §3.1 recomputed from the protocol functions: head commitments in enumeration order.
              const head = await ctx.chain.allCommitments({ block });
              const seeds: Array<[string, number | null]> = [];
              const miners: string[] = [];
              for (const r of head.commitments) {
                if (ctx.validators.some((v) => v.hotkey === r.hotkey)) {
                  const d = decodeValidatorCommit(r.data!);
                  if (d.ok && d.value.e === 0) seeds.push([r.hotkey, d.value.s]);
                } else {
                  const d = decodeMinerCommit(r.data!);
                  if (d.ok && d.value.e === 0) miners.push(r.hotkey);
                }
              }
              facts.get(cycle)!.assignment = assignMinersToValidators(seeds, miners, 10);
            }
          },
          beforeStop: async (ctx) => {
            ctxRef = ctx;
            for (const c of [1, 2]) {
              const mc1 = phaseRange(ctx.schedule, c, 'MinerCommit1');
              const mc2 = phaseRange(ctx.schedule, c, 'MinerCommit2');
              const s1 = await ctx.chain.allCommitments({ block: mc1.end + 1 });
              const s2 = await ctx.chain.allCommitments({ block: mc2.end + 1 });
              for (const m of ctx.miners) {
                const r1 = s1.commitments.find((r) => r.hotkey === m.wallet.hotkey)!;
                const r2 = s2.commitments.find((r) => r.hotkey === m.wallet.hotkey)!;
                chainChecks.push(() => {
                  const sig = decodeSignatureCommit(r1.data!);
                  expect(sig.ok).toBe(true);
                  const m1 = sig.ok ? sig.value.m! : '';
                  expect(r1.data).toBe(`{"m": "${m1}"}`);
                  expect(r1.block).toBeGreaterThanOrEqual(mc1.start);
                  expect(r1.block).toBeLessThanOrEqual(mc1.end + 1);
                  const d2 = decodeMinerCommit(r2.data!);
                  expect(d2.ok).toBe(true);
                  if (!d2.ok) return;
                  const v = d2.value;
                  expect(r2.data).toBe(encodeMinerCommit2({ b: v.b, e: 0, h: v.h, v: v.v, i: v.i }));
                  expect(r2.block).toBeGreaterThan(mc1.end + 1);
                  expect(r2.block).toBeLessThanOrEqual(mc2.end + 1);
                  expect(verifyModelHash(m.wallet.hotkey, v.h!, m1)).toBe(true);
                  // Trained on this cycle's baseline.
                  expect(v.v).toBe(facts.get(c)!.baseline!.version);
                  // Submitted to the validator the assignment names, and accepted there with this hash.
                  const dest = assignedValidator(facts.get(c)!.assignment, m.wallet.hotkey);
                  expect(dest).not.toBeNull();
                  const byDest = ctx.validators.find((x) => x.hotkey === dest)!;
                  expect(byDest.accepted.filter((a) => a.cycle === c && a.miner === m.wallet.hotkey).map((a) => a.hash)).toEqual([v.h]);
                  for (const other of ctx.validators.filter((x) => x.hotkey !== dest)) {
                    expect(other.accepted.some((a) => a.cycle === c && a.miner === m.wallet.hotkey)).toBe(false);
                  }
                });
              }
            }
          },
        },
      });
      const text = lines.join('\n');
      expect(result.code, text).toBe(0);
      expect(result.summary).toMatchObject({ cycles: 2, completed: 2, miners: 2, validators: 2, commits: 4, accepted: 4, expected: 4 });
      expect(lines.at(-1)).toMatch(/^devnet summary: .* accepted=4\/4$/);
      expect(chainChecks).toHaveLength(4);
      for (const check of chainChecks) check();

      const ctx = ctxRef as unknown as DevnetContext;
      const b1 = facts.get(1)!.baseline!;
      const b2 = facts.get(2)!.baseline!;
      expect(b2.version).toBeGreaterThan(b1.version);
      expect(b2.hash).not.toBe(b1.hash);
      for (const m of ctx.miners) {
        // Both baselines were downloaded, verified (manifest, file SHA-256, model hash) and installed.
        const installed = await listCheckpoints(join(m.dir, 'validator_checkpoint'));
        for (const b of [b1, b2]) {
          const e = installed.find((x) => x.globalVer === b.version);
          expect(e, `${m.name} has baseline v${b.version}`).toBeDefined();
          await readCheckpoint(e!.path, { verifyHashes: true });
          expect(e!.manifest.model_hash).toBe(b.hash);
          const pt = await PtFile.open(join(e!.path, expertFileName(0)));
          expect(await modelHashHex(pt)).toBe(b.hash);
          await pt.close();
        }
        // The trainer reloaded each new baseline.
        const log = minerLog(m.dir);
        const reloads = log.filter((l) => l.msg === 'Updated model').map((l) => (l.current_model_meta as { global_ver: number }).global_ver);
        expect(reloads).toEqual([b1.version, b2.version]);
        expect(log.filter((l) => String(l.msg).startsWith('<Distribute> downloaded model metadata from chain: ')).map((l) => l.global_ver)).toEqual([b1.version, b2.version]);
        expect(log.filter((l) => l.msg === '<Submission> submitted model')).toHaveLength(2);
        // Loss lower after training: every accepted submission beats the baseline it was trained on.
        for (const c of [1, 2]) {
          const ev = ctx.validators.flatMap((v) => v.evaluations.filter((e) => e.cycle === c));
          const mine = ev.flatMap((e) => e.results.filter((r) => r.miner === m.wallet.hotkey).map((r) => ({ loss: r.loss, baseline: e.baseline })));
          expect(mine).toHaveLength(1);
          expect(mine[0]!.loss).toBeLessThan(mine[0]!.baseline);
        }
      }
    },
    240_000,
  );

  it(
    'owner phase service down: the miners take the phase lengths from config.yaml and the cycle completes',
    async () => {
      const dir = newDir();
      const lines: string[] = [];
      const result = await runDevnet({ dir, miners: 1, validators: 1, cycles: 1, blockMs: BLOCK_MS, logger: quietLogger(), out: (l) => lines.push(l), faults: { ownerDown: true } });
      expect(result.code, lines.join('\n')).toBe(0);
      expect(result.summary).toMatchObject({ completed: 1, commits: 1, accepted: 1 });
      const log = minerLog(join(dir, 'miners', 'm1'));
      expect(log.some((l) => String(l.msg).startsWith('owner phase service unreachable: using the phase lengths of config.yaml'))).toBe(true);
      expect(log.some((l) => String(l.msg).startsWith('phase schedule from the owner'))).toBe(false);
      expect(log.some((l) => l.msg === 'validator whitelist unavailable: validator permits on the metagraph stand in for it')).toBe(true);
    },
    180_000,
  );

  it(
    'trainer SIGKILLed mid-cycle: the supervisor restarts it; the miner still commits and submits its last complete checkpoint',
    async () => {
      const dir = newDir();
      const lines: string[] = [];
      let killed: number | null = null;
      const result = await runDevnet({
        dir,
        miners: 1,
        validators: 1,
        cycles: 1,
        blockMs: BLOCK_MS,
        logger: quietLogger(),
        out: (l) => lines.push(l),
        hooks: {
          phase: async (ctx, phase, cycle) => {
            if (phase !== 'Train' || cycle !== 1) return;
            // Let it train on the new baseline until it has saved a checkpoint of it (a loaded
            // machine may take many blocks), then kill it without warning.
            const mdir = ctx.miners[0]!.dir;
            for (let i = 0; i < 600; i++) {
              await new Promise((r) => setTimeout(r, BLOCK_MS / 2));
              const base = (await listCheckpoints(join(mdir, 'validator_checkpoint')))[0];
              const own = await listCheckpoints(join(mdir, 'checkpoints'));
              if (base !== undefined && own.some((c) => c.globalVer === base.globalVer)) break;
            }
            const st = await ctx.miners[0]!.process.status();
            killed = st!.trainer!.pid!;
            process.kill(killed, 'SIGKILL');
          },
        },
      });
      expect(result.code, lines.join('\n')).toBe(0);
      expect(killed).not.toBeNull();
      const mdir = join(dir, 'miners', 'm1');
      const log = minerLog(mdir);
      const starts = log.filter((l) => l.msg === 'trainer started');
      expect(starts.length).toBeGreaterThanOrEqual(2);
      expect(starts[0]!.trainer_pid).toBe(killed);
      expect(log.some((l) => String(l.msg).startsWith('restarting trainer'))).toBe(true);
      expect(result.summary).toMatchObject({ commits: 1, accepted: 1 });
      expect(log.some((l) => l.msg === 'starting from checkpoint' && l.kind === 'own')).toBe(true); // the restart resumed
      // What was committed is the newest checkpoint the trainer had completed by then …
      const rec = (await readCommitted(mdir))!;
      const at = (l: Record<string, unknown>) => Date.parse(String(l.time));
      const committedAt = at(log.find((l) => l.msg === '<MinerCommit1> committing')!);
      const saved = log.filter((l) => l.msg === 'Checkpoint saved' && at(l) < committedAt);
      expect(saved.some((l) => l.path === rec.checkpoint)).toBe(true);
      const newest = saved.filter((l) => l.global_ver === rec.globalVer).reduce((a, l) => Math.max(a, Number(l.inner_opt_step)), -1);
      expect(rec.innerOpt).toBe(newest);
      // … and exactly that file was submitted and accepted: the validator's stored copy hashes to the commit.
      expect(log.find((l) => l.msg === '<Submission> submitted model')).toMatchObject({ hash: rec.hash, path: rec.file });
      const stored = readdirSync(join(dir, 'validators', 'v1', 'miner_submission')).filter((n) => n.endsWith('.pt'));
      expect(stored).toHaveLength(1);
      const pt = await PtFile.open(join(dir, 'validators', 'v1', 'miner_submission', stored[0]!));
      expect(await modelHashHex(pt)).toBe(rec.hash);
      await pt.close();
    },
    180_000,
  );

  it(
    '`connito-miner devnet --cycles 1` exits 0 and ends with the summary line',
    async () => {
      const dir = newDir();
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'connito-miner.js'), 'devnet', '--cycles', '1', '--path', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += String(d)));
      child.stderr.on('data', (d) => (out += String(d)));
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      const last = out.trim().split('\n').at(-1)!;
      expect(code, out).toBe(0);
      expect(last).toMatch(/^devnet summary: cycles=1\/1 miners=1 validators=1 versions=v\d+→v\d+ loss=\d+\.\d+→\d+\.\d+ commits=1\/1 accepted=1\/1$/);
    },
    180_000,
  );
});
