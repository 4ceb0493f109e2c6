// Distribute duty (PROTOCOL.md §6, DESIGN arrows 1–2): find the validators' baseline for our expert
// group from their chain commits, fetch it with a signed request, verify it (signature, hash, expert
// ids), and only then install it atomically in DIR/validator_checkpoint/ for the trainer to reload.
// A download that fails verification is deleted (unlike the reference, §13.2 #5). Logs
// `<Distribute> downloaded model metadata from chain: …` and always `<Distribute> task completed.`
import { join } from 'node:path';
import {
  beginCheckpoint,
  expertFileName,
  pruneCheckpoints,
  selectBestCheckpoint,
  validatorCheckpointName,
  type PendingCheckpoint,
} from '../checkpoint/dir.js';
import { PtFile } from '../checkpoint/pt.js';
import { isAllFinite, type Tensor, type TensorStore } from '../checkpoint/tensor.js';
import { checkExpertGroup, type ExpertAssignment, type ExpertCheckEntry } from '../protocol/experts.js';
import { modelHashHex } from '../protocol/hashing.js';
import { signMessage, verifyModelHash } from '../protocol/signing.js';
import type { TaskContext } from './pool-entry.js';
import { sleep } from './chain-wait.js';
import { describe, errorCode } from './errors.js';
import { HttpTransport } from './http-transport.js';
import { fallbackLogger, openRuntime, type TaskRuntime } from './runtime.js';
import { majorityHash, readChainCheckpoints, type ChainCheckpoint } from './subnet.js';
import type { DutyPayload, DutyResult } from './task-protocol.js';
import type { BaselineSource, CheckpointTransport } from './transport.js';

/** A validator checkpoint bigger than this is refused (the validator's own submission cap, §5.2). */
export const MAX_BASELINE_BYTES = 8 * 2 ** 30;
const PASSES = 3;
/** Consecutive attempts on one candidate while each makes progress (resume after a cut). */
const RESUMES = 3;

export interface DownloadDeps {
  transport?: CheckpointTransport;
}

export interface VerifyOutcome {
  ok: boolean;
  reason: string;
  hash?: string;
}

/**
 * §6.6 verification of a downloaded expert file: the chain `m` is the validator's signature over
 * the hex hash `h`, the file's state dict hashes exactly to `h`, every floating tensor is finite and
 * every routed-expert key belongs to our group (§5.2(c)). The file is read one tensor at a time.
 */
export async function verifyBaseline(file: string, cp: { hotkey: string; modelHash: string; signedModelHash: string }, assignment: ExpertAssignment): Promise<VerifyOutcome> {
  if (!verifyModelHash(cp.hotkey, cp.modelHash, cp.signedModelHash)) {
    return { ok: false, reason: `the chain signature of ${cp.hotkey} does not verify over the committed hash` };
  }
  let pt: PtFile;
  try {
    pt = await PtFile.open(file);
  } catch (e) {
    return { ok: false, reason: `not a readable checkpoint: ${describe(e)}` };
  }
  try {
    const entries: ExpertCheckEntry[] = [];
    const checked: TensorStore = {
      keys: () => pt.keys(),
      info: (k) => pt.info(k),
      load: async (k): Promise<Tensor> => {
        const t = await pt.load(k);
        entries.push({ key: k, finite: isAllFinite(t) });
        return t;
      },
    };
    let hash: string;
    try {
      hash = await modelHashHex(checked);
    } catch (e) {
      return { ok: false, reason: `cannot read its tensors: ${describe(e)}` };
    }
    if (hash !== cp.modelHash) return { ok: false, reason: `hash mismatch: the file hashes to ${hash}, the chain commit says ${cp.modelHash}`, hash };
    const experts = checkExpertGroup(entries, assignment);
    if (!experts.ok) return { ok: false, reason: experts.reason, hash };
    return { ok: true, reason: 'verified', hash };
  } finally {
    await pt.close();
  }
}

function describeCheckpoint(c: ChainCheckpoint): string {
  // The reference prints the pydantic model; the same fields, in the same spirit.
  return `signed_model_hash='${c.signedModelHash}' model_hash='${c.modelHash}' global_ver=${c.globalVer} expert_group=${c.expertGroup} uid=${c.uid} hotkey='${c.hotkey}' ip='${c.ip}' port=${c.port}`;
}

export async function run(payload: DutyPayload, ctx: TaskContext): Promise<DutyResult> {
  return runDownload(payload, ctx);
}

export async function runDownload(payload: DutyPayload, ctx: TaskContext, deps: DownloadDeps = {}): Promise<DutyResult> {
  let rt: TaskRuntime | null = null;
  const base = { duty: 'download' as const, cycleIndex: payload.cycleIndex };
  let result: DutyResult;
  try {
    rt = await openRuntime('download', payload);
    result = await distribute(rt, payload, ctx, deps.transport ?? new HttpTransport());
  } catch (e) {
    const log = rt?.log ?? fallbackLogger('download');
    log.error({ code: errorCode(e), err: describe(e), time_left_ms: ctx.timeLeft() }, '<Distribute> download failed');
    result = { ...base, ok: false, skipped: false, detail: `failed: ${describe(e)}` };
  }
  (rt?.log ?? fallbackLogger('download')).info({ ok: result.ok, detail: result.detail }, '<Distribute> task completed.');
  return { ...result, ...(rt ? { telemetry: rt.telemetry() } : {}) };
}

async function distribute(rt: TaskRuntime, payload: DutyPayload, ctx: TaskContext, transport: CheckpointTransport): Promise<DutyResult> {
  const { config, chain, log, group } = rt;
  const base = { duty: 'download' as const, cycleIndex: payload.cycleIndex };
  const w = payload.window;
  let head = await chain.currentBlock();
  if (head > w.startBy) {
    log.warn({ block: head, start_by: w.startBy }, '<Distribute> window already over on arrival: skipping the download');
    return { ...base, ok: false, skipped: true, detail: `window over on arrival (block ${head} > ${w.startBy})` };
  }
  log.info({ block: head }, 'Fetching model from chain');
  const read = await readChainCheckpoints(chain, 'validator', {
    schedule: rt.schedule,
    head,
    whitelist: payload.whitelist,
    freshnessBlocks: config.cycle.cycle_length,
    versionRangeCycles: config.cycle.version_range_cycles,
    logger: log,
  });
  const ours = read.checkpoints.filter((c) => c.expertGroup === group.groupId);
  const majority = majorityHash(ours);
  const agreed = ours.filter((c) => c.modelHash === majority);
  const current = await selectBestCheckpoint(config.ckpt.validator_checkpoint_path, config.ckpt.checkpoint_path);
  const currentVer = current?.globalVer ?? -1;
  const candidates = agreed.filter((c) => (c.globalVer ?? -1) > currentVer);
  log.info(
    {
      block: head,
      snapshot_blocks: [read.b1, read.b2],
      version_range: read.range,
      committed: read.all.length,
      complete: read.checkpoints.length,
      in_group: ours.length,
      majority_hash: majority,
      current_version: current ? current.globalVer : null,
      candidates: candidates.map((c) => ({ uid: c.uid, hotkey: c.hotkey, global_ver: c.globalVer })),
    },
    'validator checkpoints on chain',
  );
  if (candidates.length === 0) {
    const detail = ours.length === 0 ? 'no validator checkpoint for our expert group on chain' : `nothing newer than version ${currentVer} on chain`;
    log.info({ current_version: current?.globalVer ?? null }, `<Distribute> ${detail}`);
    return { ...base, ok: true, skipped: true, detail };
  }

  const sign = (m: Uint8Array): string => signMessage(rt.wallet.sr25519Pair(), m);
  for (let pass = 0; pass < PASSES; pass++) {
    if (pass > 0) {
      // Reference: 5 s then 10 s between passes; never longer than two blocks on a fast chain.
      const pause = Math.min(5_000 * pass, 2 * rt.blockTimeMs);
      await sleep(Math.min(pause, Math.max(0, ctx.timeLeft())), ctx.signal);
    }
    for (const c of candidates) {
      if (ctx.signal.aborted) return { ...base, ok: false, skipped: false, detail: `stopped: ${describe(ctx.signal.reason)}` };
      head = await chain.currentBlock();
      if (head > w.actUntil) {
        log.warn({ block: head, act_until: w.actUntil }, '<Distribute> window over: no further download attempts');
        return { ...base, ok: false, skipped: false, detail: `window over before a verified download (block ${head})` };
      }
      const src: BaselineSource = { hotkey: c.hotkey, uid: c.uid, ip: c.ip, port: c.port, globalVer: c.globalVer!, modelHash: c.modelHash! };
      const installed = await fetchAndInstall(rt, payload, ctx, transport, c, src, head, sign);
      if (installed !== null) {
        log.info(
          { uid: c.uid, hotkey: c.hotkey, global_ver: c.globalVer, model_hash: c.modelHash, expert_group: c.expertGroup, path: installed },
          `<Distribute> downloaded model metadata from chain: ${describeCheckpoint(c)}.`,
        );
        const pruned = await pruneCheckpoints(config.ckpt.validator_checkpoint_path, config.ckpt.checkpoint_topk);
        if (pruned.length > 0) log.debug({ deleted: pruned }, 'old baselines removed');
        return { ...base, ok: true, skipped: false, detail: `installed version ${c.globalVer} from uid ${c.uid}`, installed: { path: installed, globalVer: c.globalVer, hash: c.modelHash, hotkey: c.hotkey } };
      }
    }
  }
  log.error({ candidates: candidates.length, time_left_ms: ctx.timeLeft() }, `❌ All download attempts failed after ${PASSES} passes.`);
  return { ...base, ok: false, skipped: false, detail: `every candidate failed (${candidates.length})` };
}

/** One candidate: fetch (resuming while progress is made), verify, install or delete. */
async function fetchAndInstall(
  rt: TaskRuntime,
  payload: DutyPayload,
  ctx: TaskContext,
  transport: CheckpointTransport,
  c: ChainCheckpoint,
  src: BaselineSource,
  head: number,
  sign: (m: Uint8Array) => string,
): Promise<string | null> {
  const { config, log, group } = rt;
  const where = { uid: c.uid, hotkey: c.hotkey, global_ver: c.globalVer, url: `http://${c.ip}:${c.port}` };
  const blocksLeft = (): number => payload.window.actUntil - (rt.chain.lastHead()?.number ?? head);
  if (c.ip === '' || c.ip === '0.0.0.0' || c.port === 0) {
    log.warn({ ...where }, 'validator has no axon served; skipping it');
    return null;
  }
  if (!verifyModelHash(c.hotkey, c.modelHash!, c.signedModelHash!)) {
    log.warn({ ...where, time_left_ms: ctx.timeLeft() }, '❌ validator checkpoint rejected before download: its chain signature does not verify');
    return null;
  }
  const name = validatorCheckpointName(c.uid, c.hotkey, c.globalVer!);
  const file = expertFileName(group.groupId);
  let pending: PendingCheckpoint;
  try {
    pending = await beginCheckpoint(config.ckpt.validator_checkpoint_path, name);
  } catch (e) {
    log.warn({ ...where, err: describe(e) }, 'cannot start the download directory');
    return null;
  }
  try {
    const dest = pending.filePath(file);
    let fetched = false;
    let lastBytes = -1;
    for (let attempt = 0; attempt < RESUMES && !fetched; attempt++) {
      const r = await transport.fetchBaseline({
        source: src,
        originHotkey: rt.wallet.hotkeyAddress,
        expertGroup: group.groupId,
        dest,
        block: rt.chain.lastHead()?.number ?? head,
        sign,
        signal: ctx.signal,
        maxBytes: MAX_BASELINE_BYTES,
        timeoutMs: 30_000,
        onProgress: (bytes, total) =>
          log.info({ ...where, bytes, total, pct: total ? Math.round((100 * bytes) / total) : null }, 'Downloading checkpoint'),
      });
      if (r.ok) {
        fetched = true;
        log.info({ ...where, bytes: r.bytes, resumed_from: r.resumedFrom }, 'checkpoint downloaded');
        break;
      }
      log.warn({ ...where, status: r.status, err: r.reason, bytes: r.bytes, blocks_left: blocksLeft(), time_left_ms: ctx.timeLeft() }, 'checkpoint download failed');
      // Resume only while each attempt makes progress and the failure is not final.
      if (r.final || r.bytes <= lastBytes || r.bytes === 0 || ctx.signal.aborted) break;
      lastBytes = r.bytes;
    }
    if (!fetched) {
      await pending.abort();
      return null;
    }
    const v = await verifyBaseline(dest, { hotkey: c.hotkey, modelHash: c.modelHash!, signedModelHash: c.signedModelHash! }, group.assignment);
    if (!v.ok) {
      log.error({ ...where, reason: v.reason, computed_hash: v.hash ?? null, blocks_left: blocksLeft(), time_left_ms: ctx.timeLeft() }, '❌ Downloaded checkpoint failed validation');
      await pending.abort();
      return null;
    }
    await pending.addFile(file);
    const entry = await pending.commit({
      expert_group: group.groupId,
      model_hash: c.modelHash,
      base_version: c.globalVer,
      extra: { uid: c.uid, hotkey: c.hotkey, signed_model_hash: c.signedModelHash, source: `http://${c.ip}:${c.port}/get-checkpoint` },
    });
    log.info({ ...where, path: entry.path, hash: c.modelHash }, '✅ Downloaded checkpoint (verified)');
    return join(config.ckpt.validator_checkpoint_path, name);
  } catch (e) {
    await pending.abort().catch(() => undefined);
    log.error({ ...where, err: describe(e), time_left_ms: ctx.timeLeft() }, 'checkpoint install failed');
    return null;
  }
}
