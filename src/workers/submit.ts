// Submission duty (PROTOCOL.md §3, §5.1, §14 item 6): compute our validator from the head commits
// exactly as validators do, find its axon, and POST the exact file committed this cycle, streamed
// from disk, with the signed fields. Transient failures (5xx, 408, 413, network) are retried until
// the window closes; a status the reference never retries (4xx of §1.6) is final. Every attempt
// starts inside the Submission window (the validator checks `origin_block`). The committed
// directory's pin is released when the task ends. Logs `<Submission> submitted model` and always
// `<Submission> task completed.`
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { isAxonServed } from '../chain/types.js';
import { readCheckpoint } from '../checkpoint/dir.js';
import { PtFile } from '../checkpoint/pt.js';
import { assignedValidator } from '../protocol/assignment.js';
import { modelHash } from '../protocol/hashing.js';
import { toHex } from '../protocol/hex.js';
import { signMessage } from '../protocol/signing.js';
import type { TaskContext } from './pool-entry.js';
import { sleep } from './chain-wait.js';
import { phaseRange } from './commit.js';
import { readCommitted, releaseCommittedPin, type CommittedRecord } from './committed.js';
import { describe, errorCode } from './errors.js';
import { HttpTransport } from './http-transport.js';
import { fallbackLogger, openRuntime, type TaskRuntime } from './runtime.js';
import { readAssignment } from './subnet.js';
import type { DutyPayload, DutyResult } from './task-protocol.js';
import type { CheckpointTransport } from './transport.js';

/** Per-attempt upload timeout of the reference (§1.6). */
export const SUBMIT_ATTEMPT_TIMEOUT_MS = 300_000;

export interface SubmitDeps {
  transport?: CheckpointTransport;
}

/** Backoff before attempt `n + 1`: the reference's 1.8^n s, capped at two blocks on a fast chain. */
export function submitBackoffMs(attempt: number, blockTimeMs: number): number {
  return Math.min(1000 * 1.8 ** attempt, Math.max(100, 2 * blockTimeMs));
}

export async function run(payload: DutyPayload, ctx: TaskContext): Promise<DutyResult> {
  return runSubmit(payload, ctx);
}

export async function runSubmit(payload: DutyPayload, ctx: TaskContext, deps: SubmitDeps = {}): Promise<DutyResult> {
  let rt: TaskRuntime | null = null;
  let rec: CommittedRecord | null = null;
  let result: DutyResult;
  try {
    rt = await openRuntime('submit', payload);
    rec = await readCommitted(rt.runDir);
    result = await submitCycle(rt, payload, ctx, rec, deps.transport ?? new HttpTransport());
  } catch (e) {
    const log = rt?.log ?? fallbackLogger('submit');
    log.error({ code: errorCode(e), err: describe(e), time_left_ms: ctx.timeLeft() }, '<Submission> submission failed');
    result = { duty: 'submit', cycleIndex: payload.cycleIndex, ok: false, skipped: false, detail: `failed: ${describe(e)}` };
  }
  if (rt !== null && rec !== null) await releaseCommittedPin(rt.runDir, rec).catch(() => undefined);
  (rt?.log ?? fallbackLogger('submit')).info({ ok: result.ok, detail: result.detail }, '<Submission> task completed.');
  return { ...result, ...(rt ? { telemetry: rt.telemetry() } : {}) };
}

async function submitCycle(rt: TaskRuntime, payload: DutyPayload, ctx: TaskContext, rec: CommittedRecord | null, transport: CheckpointTransport): Promise<DutyResult> {
  const { config, chain, log, group } = rt;
  const base = { duty: 'submit' as const, cycleIndex: payload.cycleIndex };
  const lastBlock = payload.window.actUntil;
  let head = await chain.currentBlock();
  if (head > payload.window.startBy) {
    log.warn({ block: head, phase_end_block: lastBlock }, '<Submission> window already over on arrival: skipping the submission');
    return { ...base, ok: false, skipped: true, detail: `window over on arrival (block ${head})` };
  }
  const mc1 = phaseRange(rt.schedule, payload.cycleIndex, 'MinerCommit1');
  if (rec === null || rec.mc1Start !== mc1.start || rec.hotkey !== rt.wallet.hotkeyAddress) {
    log.warn({ committed_cycle: rec?.cycleIndex ?? null }, '<Submission> nothing was committed this cycle: skipping submission');
    return { ...base, ok: false, skipped: true, detail: 'nothing committed this cycle' };
  }

  // Preflight (as the reference): the file is there, non-empty, and still hashes to what we committed.
  await readCheckpoint(rec.checkpoint);
  const size = (await stat(rec.file)).size;
  if (size === 0) throw new Error(`${rec.file} is empty`);
  const pt = await PtFile.open(rec.file);
  let raw: Uint8Array;
  try {
    raw = await modelHash(pt);
  } finally {
    await pt.close();
  }
  if (toHex(raw) !== rec.hash) throw new Error(`${rec.file} now hashes to ${toHex(raw)}, not the committed ${rec.hash}; not submitting a different file`);

  const a = await readAssignment(chain, group.groupId, config.cycle.max_miners_per_validator, {
    schedule: rt.schedule,
    head,
    whitelist: payload.whitelist,
    freshnessBlocks: config.cycle.cycle_length,
    versionRangeCycles: config.cycle.version_range_cycles,
    logger: log,
  });
  const me = rt.wallet.hotkeyAddress;
  const target = assignedValidator(a.assignment, me);
  log.info(
    { block: head, validators: a.validatorSeeds.map(([hk, s]) => ({ hotkey: hk, seed: s })), miners: a.miners.length, destination: target },
    'submission assignment',
  );
  if (target === null) {
    log.warn({ in_candidates: a.candidates.includes(me), with_checkpoint: a.miners.includes(me) }, '<Submission> No validator assigned to this miner — skipping submission');
    return { ...base, ok: false, skipped: true, detail: 'no validator assigned to this miner' };
  }
  const neuron = a.metagraph.neurons.find((n) => n.hotkey === target);
  if (neuron === undefined || !isAxonServed(neuron.axon)) {
    log.warn({ destination: target }, '<Submission> Assigned validator has no axon served — skipping submission');
    return { ...base, ok: false, skipped: true, detail: `validator ${target} has no axon served` };
  }
  const destination = { hotkey: target, ip: neuron.axon.ip, port: neuron.axon.port };
  const sign = (m: Uint8Array): string => signMessage(rt.wallet.sr25519Pair(), m);
  log.info({ destination: target, url: `http://${destination.ip}:${destination.port}/submit-checkpoint`, path: rec.file, bytes: size }, 'Starting model submission');

  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) head = await chain.currentBlock();
    if (head > lastBlock) {
      log.error({ attempt, block: head, phase_end_block: lastBlock, destination: target }, '<Submission> window ended before an upload was accepted');
      return { ...base, ok: false, skipped: false, detail: `window ended after ${attempt - 1} attempt(s)` };
    }
    const r = await transport.submitCheckpoint({
      destination,
      originHotkey: me,
      block: head,
      modelHash: raw,
      file: { path: rec.file, name: basename(rec.file), size },
      sign,
      signal: ctx.signal,
      timeoutMs: Math.min(SUBMIT_ATTEMPT_TIMEOUT_MS, Math.max(1_000, ctx.timeLeft())),
    });
    if (r.ok) {
      log.info({ block: head, destination: [target], hash: rec.hash, path: rec.file, attempt, response: r.body }, '<Submission> submitted model');
      log.info({ status: r.status }, 'Submission successful');
      return { ...base, ok: true, skipped: false, detail: `accepted by ${target} (attempt ${attempt}, block ${head})`, destination: target, block: head, attempts: attempt };
    }
    const blocksLeft = lastBlock - head;
    if (r.final) {
      log.error({ attempt, status: r.status, err: r.reason, destination: target, blocks_left: blocksLeft, time_left_ms: ctx.timeLeft() }, '<Submission> rejected by the validator (final)');
      return { ...base, ok: false, skipped: false, detail: `rejected: ${r.reason}`, destination: target, status: r.status ?? null };
    }
    if (ctx.signal.aborted) return { ...base, ok: false, skipped: false, detail: `stopped: ${describe(ctx.signal.reason)}` };
    const pause = submitBackoffMs(attempt, rt.blockTimeMs);
    log.warn({ attempt, status: r.status, err: r.reason, destination: target, retry_ms: Math.round(pause), blocks_left: blocksLeft, time_left_ms: ctx.timeLeft() }, '<Submission> upload failed; retrying');
    await sleep(pause, ctx.signal);
  }
}
