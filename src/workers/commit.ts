// MinerCommit1 → MinerCommit2 duty (PROTOCOL.md §2.2, §14 items 3–5): pick our best complete own
// checkpoint, refuse one trained on a base outside this cycle's version window, hash its expert
// file, commit the signed hash `{"m": sig}` inside MinerCommit1, wait for MinerCommit2, commit
// `{"b", "e", "m": null, "h", "v", "i"}` inside it. Never after the window: a commit is only sent
// while the head is inside its phase, and one that lands later is reported as late. The committed
// directory stays pinned until the Submission upload ends (§13.2 #6); DIR/state/committed.json
// tells the submit task what was committed.
import { join } from 'node:path';
import { ChainError, ChainTxError } from '../chain/errors.js';
import type { TxInclusion } from '../chain/types.js';
import { expertFileName, openExpertFile, pinBestCheckpoint, type CheckpointPin } from '../checkpoint/dir.js';
import { encodeMinerCommit1, encodeMinerCommit2 } from '../protocol/commits.js';
import { modelHashHex } from '../protocol/hashing.js';
import { allowedVersionRangeAt, type PhaseName, type PhaseSchedule } from '../protocol/phases.js';
import { signModelHash } from '../protocol/signing.js';
import type { TaskContext } from './pool-entry.js';
import { sleep, waitForBlock } from './chain-wait.js';
import { readCommitted, releaseCommittedPin, writeCommitted } from './committed.js';
import { WorkerError, describe, errorCode } from './errors.js';
import { fallbackLogger, openRuntime, type TaskRuntime } from './runtime.js';
import type { DutyPayload, DutyResult } from './task-protocol.js';

/** First and last block (inclusive) of `phase` in cycle `cycleIndex`. */
export function phaseRange(s: PhaseSchedule, cycleIndex: number, phase: PhaseName): { start: number; end: number } {
  const p = s.phases.find((q) => q.name === phase)!;
  const start = cycleIndex * s.cycleLength + p.offset;
  return { start, end: start + p.length - 1 };
}

export async function run(payload: DutyPayload, ctx: TaskContext): Promise<DutyResult> {
  let rt: TaskRuntime | null = null;
  let result: DutyResult;
  try {
    rt = await openRuntime('commit', payload);
    result = await commitCycle(rt, payload, ctx);
  } catch (e) {
    const log = rt?.log ?? fallbackLogger('commit');
    log.error({ code: errorCode(e), err: describe(e), time_left_ms: ctx.timeLeft() }, '<MinerCommit1> commit failed');
    result = { duty: 'commit', cycleIndex: payload.cycleIndex, ok: false, skipped: false, detail: `failed: ${describe(e)}` };
  }
  return { ...result, ...(rt ? { telemetry: rt.telemetry() } : {}) };
}

async function commitCycle(rt: TaskRuntime, payload: DutyPayload, ctx: TaskContext): Promise<DutyResult> {
  const { config, chain, log, group } = rt;
  const base = { duty: 'commit' as const, cycleIndex: payload.cycleIndex };
  const mc1 = phaseRange(rt.schedule, payload.cycleIndex, 'MinerCommit1');
  const mc2 = phaseRange(rt.schedule, payload.cycleIndex, 'MinerCommit2');
  const head = await chain.currentBlock();
  if (head > mc1.end) {
    log.warn({ block: head, phase_end_block: mc1.end }, '<MinerCommit1> window already over on arrival: skipping this cycle (no late commit)');
    return { ...base, ok: false, skipped: true, detail: `window over on arrival (block ${head} > MinerCommit1 end ${mc1.end})` };
  }

  // The previous cycle's upload is over by now: its pin goes.
  const prev = await readCommitted(rt.runDir).catch((e: unknown) => {
    log.warn({ err: describe(e) }, 'ignoring an unreadable committed-state file');
    return null;
  });
  if (prev !== null && prev.mc1Start !== mc1.start) await releaseCommittedPin(rt.runDir, prev).catch(() => undefined);

  const pin = await pinBestCheckpoint(config.ckpt.checkpoint_path, config.ckpt.final_path);
  if (pin === null) {
    log.warn({ dir: config.ckpt.checkpoint_path }, '<MinerCommit1> File not ready error: Not checkpoint found, skip commit.');
    return { ...base, ok: false, skipped: true, detail: 'no complete own checkpoint yet' };
  }
  let keepPin = false;
  try {
    const cp = pin.checkpoint;
    const range = allowedVersionRangeAt(rt.schedule, mc1.start, config.cycle.version_range_cycles);
    if (cp.globalVer < range.min || cp.globalVer > range.max) {
      log.warn(
        { path: cp.path, model_version: cp.globalVer, version_range: range },
        '<MinerCommit1> the newest checkpoint was trained on a baseline outside this cycle\'s version window (validators would drop it): skip commit',
      );
      return { ...base, ok: false, skipped: true, detail: `checkpoint version ${cp.globalVer} outside [${range.min}, ${range.max}]` };
    }
    const filePath = join(cp.path, expertFileName(group.groupId));
    const store = await openExpertFile(cp.path, group.groupId);
    let hash: string;
    try {
      if (store.missing) {
        throw new WorkerError('CNM_ERR_NO_CHECKPOINT', `${cp.path} has no ${expertFileName(group.groupId)} (expert group ${group.groupId})`);
      }
      hash = await modelHashHex(store);
    } finally {
      await store.close();
    }
    const signature = signModelHash(rt.wallet.sr25519Pair(), hash);
    const payload1 = encodeMinerCommit1(signature);
    const meta = { hash, model_version: cp.globalVer, path: filePath };
    log.info({ ...meta, inner_opt: cp.innerOpt, block: head, phase_end_block: mc1.end }, '<MinerCommit1> committing');
    const inc1 = await commitInWindow(rt, ctx, payload1, 'MinerCommit1', mc1.end);

    await waitForBlock(chain, mc2.start, { signal: ctx.signal, until: ctx.deadline, pollMs: Math.max(100, rt.blockTimeMs) });
    const head2 = await chain.currentBlock();
    if (head2 > mc2.end) {
      throw new WorkerError('CNM_ERR_WINDOW_OVER', `MinerCommit2 (blocks ${mc2.start}-${mc2.end}) was over when it was seen (block ${head2}); no late commit`);
    }
    const payload2 = encodeMinerCommit2({ b: head2, e: group.groupId, h: hash, v: cp.globalVer, i: cp.innerOpt });
    log.info({ ...meta, inner_opt: cp.innerOpt, block: head2, phase_end_block: mc2.end }, '<MinerCommit2> committing');
    const inc2 = await commitInWindow(rt, ctx, payload2, 'MinerCommit2', mc2.end);

    await writeCommitted(rt.runDir, {
      version: 1,
      hotkey: rt.wallet.hotkeyAddress,
      cycleIndex: payload.cycleIndex,
      mc1Start: mc1.start,
      checkpoint: cp.path,
      file: filePath,
      hash,
      globalVer: cp.globalVer,
      innerOpt: cp.innerOpt,
      expertGroup: group.groupId,
      pin: pin.pinPath,
      commit1: { block: inc1.blockNumber, payload: payload1 },
      commit2: { block: inc2.blockNumber, payload: payload2 },
      at: new Date().toISOString(),
    });
    keepPin = true;
    return {
      ...base,
      ok: true,
      skipped: false,
      detail: `committed ${hash.slice(0, 12)}… (version ${cp.globalVer}, step ${cp.innerOpt}) in blocks ${inc1.blockNumber} and ${inc2.blockNumber}`,
      hash,
      commitBlocks: [inc1.blockNumber, inc2.blockNumber],
    };
  } finally {
    if (!keepPin) await releasePin(pin);
  }
}

async function releasePin(pin: CheckpointPin): Promise<void> {
  await pin.release().catch(() => undefined);
}

/**
 * Puts `data` on chain so that it is included by block `lastBlock + 1` (the snapshot read after
 * the phase): sent only while the head is ≤ `lastBlock`, retried on failures inside the window, and
 * read back when a failure leaves it unknown whether the transaction landed.
 */
async function commitInWindow(rt: TaskRuntime, ctx: TaskContext, data: string, phase: PhaseName, lastBlock: number): Promise<TxInclusion> {
  const { chain, log } = rt;
  const deadlineBlock = lastBlock + 1;
  for (let attempt = 1; ; attempt++) {
    if (ctx.signal.aborted) throw new WorkerError('CNM_ERR_WINDOW_OVER', `<${phase}> stopped before the commit was included: ${describe(ctx.signal.reason)}`);
    let head: number;
    try {
      head = await chain.currentBlock();
    } catch (e) {
      log.warn({ phase, attempt, err: describe(e), time_left_ms: ctx.timeLeft() }, `<${phase}> chain unavailable; retrying`);
      await sleep(Math.max(50, rt.blockTimeMs / 2), ctx.signal);
      continue;
    }
    if (head > lastBlock) {
      // It may have landed on a previous attempt whose answer was lost.
      const landed = await ownCommitment(rt, data, deadlineBlock);
      if (landed !== null) return landed;
      throw new WorkerError('CNM_ERR_WINDOW_OVER', `<${phase}> window ended (block ${head} > ${lastBlock}) before the commit was included; no late commit`);
    }
    // Give up waiting for inclusion once the block after the window should have come.
    const timeoutMs = Math.max(2 * rt.blockTimeMs, (deadlineBlock + 1 - head) * rt.blockTimeMs + rt.blockTimeMs);
    try {
      const inc = await chain.setCommitment(data, { timeoutMs, signal: ctx.signal });
      if (inc.blockNumber > deadlineBlock) {
        throw new WorkerError('CNM_ERR_COMMIT_LATE', `<${phase}> commit landed in block ${inc.blockNumber}, after the window (read at block ${deadlineBlock}): validators will not see it`);
      }
      log.info({ phase, block: inc.blockNumber, attempt, latency_ms: inc.latencyMs, blocks_left: lastBlock - head }, `<${phase}> commit included`);
      return inc;
    } catch (e) {
      if (e instanceof WorkerError) throw e;
      const unknownOutcome = e instanceof ChainError || (e instanceof ChainTxError && (e.reason === 'timeout' || e.reason === 'dropped'));
      if (unknownOutcome) {
        const landed = await ownCommitment(rt, data, deadlineBlock);
        if (landed !== null) {
          log.info({ phase, block: landed.blockNumber, attempt }, `<${phase}> commit found on chain after a lost answer`);
          return landed;
        }
      }
      log.warn(
        { phase, attempt, code: errorCode(e), reason: e instanceof ChainTxError ? e.reason : undefined, err: describe(e), blocks_left: lastBlock - head, time_left_ms: ctx.timeLeft() },
        `<${phase}> commit attempt failed; retrying inside the window`,
      );
      await sleep(Math.max(50, rt.blockTimeMs / 2), ctx.signal);
    }
  }
}

/** Our commitment as the chain holds it now, if it is `data` and was stored by `deadlineBlock`. */
async function ownCommitment(rt: TaskRuntime, data: string, deadlineBlock: number): Promise<TxInclusion | null> {
  try {
    const rec = await rt.chain.commitment();
    if (rec !== null && rec.data === data && rec.block <= deadlineBlock) {
      return { blockNumber: rec.block, blockHash: '', txHash: '', nonce: -1, latencyMs: -1 };
    }
  } catch {
    /* unknown: the caller retries or gives up */
  }
  return null;
}
