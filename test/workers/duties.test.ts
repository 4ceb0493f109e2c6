// The three phase duties against a real local subnet (devnode + devnet validator over loopback), run
// through their task entry points in the phase windows of one cycle, with faults injected:
//   Distribute  a tampered baseline (hash mismatch) is rejected and not installed — the older baseline
//               stays the newest; the genuine one is verified and installed atomically;
//   MinerCommit the chain connection is dropped while commit 1 is in flight: the client reconnects and
//               both commits land in their windows with the exact reference payloads; a checkpoint
//               outside the version window is refused; a commit task arriving after MinerCommit1
//               skips with a log line and commits nothing;
//   Submission  the validator answers 500 twice, then accepts: submitted inside the window; the
//               validator's own checks refuse a second upload, a wrong target, an origin block
//               outside the window and a file that is not the committed one.
// A cut download resumes with an HTTP Range request.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainClient } from '../../src/chain/client.js';
import { loadWallet } from '../../src/chain/wallet.js';
import { fromHex } from '../../src/protocol/hex.js';
import { HttpTransport } from '../../src/workers/http-transport.js';
import { listCheckpoints, readCheckpoint, selectBestCheckpoint, validatorCheckpointName, writeCheckpoint, expertFileName } from '../../src/checkpoint/dir.js';
import { PtFile } from '../../src/checkpoint/pt.js';
import { decodeSignatureCommit, encodeMinerCommit2 } from '../../src/protocol/commits.js';
import { modelHashHex } from '../../src/protocol/hashing.js';
import { signMessage, verifyModelHash } from '../../src/protocol/signing.js';
import { phaseRange, run as commitRun } from '../../src/workers/commit.js';
import { readCommitted } from '../../src/workers/committed.js';
import { run as downloadRun } from '../../src/workers/download.js';
import { run as submitRun } from '../../src/workers/submit.js';
import { makeHarness, shifted, writeOwnCheckpoint, type Harness } from './harness.js';

let h: Harness;
let reader: ChainClient;
beforeAll(async () => {
  h = await makeHarness({ miners: 4 });
  reader = await ChainClient.connect({ url: h.node.url, blockTimeMs: 100 });
}, 60_000);
afterAll(async () => {
  await reader?.close();
  await h?.close();
});

const at = (phase: Parameters<typeof phaseRange>[2], cycle = 1) => phaseRange(h.schedule, cycle, phase);
const msgs = (msg: string) => h.logs().filter((l) => l.msg === msg);

describe.sequential('phase duties on a local subnet', () => {
  it('Distribute: a tampered baseline is rejected and deleted; the genuine one is verified and installed', async () => {
    const [m1, m2] = h.miners as [(typeof h.miners)[0], (typeof h.miners)[0]];
    // Both miners trained on version 3; m2 also holds that baseline.
    const oldName = validatorCheckpointName(0, h.validator.hotkey, 3);
    await writeCheckpoint(join(m2.dir, 'validator_checkpoint'), oldName, [{ file: expertFileName(0), stateDict: shifted(h.model.groupExperts, 0.5) }], { expert_group: 0 });
    await h.clock.waitFor(at('Distribute').start);

    const p1 = h.payload(m1, 'download', 1);
    const good = await downloadRun(p1, h.ctx(p1));
    expect(good).toMatchObject({ ok: true, skipped: false });

    h.validator.tamperDistribution(true);
    const p2 = h.payload(m2, 'download', 1);
    const bad = await downloadRun(p2, h.ctx(p2));
    h.validator.tamperDistribution(false);
    expect(bad).toMatchObject({ duty: 'download', ok: false, skipped: false });
    const rejected = msgs('❌ Downloaded checkpoint failed validation');
    expect(rejected.length).toBeGreaterThanOrEqual(1);
    expect(String(rejected[0]!.reason)).toMatch(/hash mismatch/);
    // Nothing of it is left: not as a checkpoint, not as a temporary directory.
    const vdir = join(m2.dir, 'validator_checkpoint');
    expect(readdirSync(vdir).filter((n) => !n.startsWith('.pins'))).toEqual([oldName]);
    expect((await selectBestCheckpoint(vdir))?.name).toBe(oldName);

    const installed = await listCheckpoints(join(m1.dir, 'validator_checkpoint'));
    expect(installed.map((c) => c.name)).toEqual([validatorCheckpointName(0, h.validator.hotkey, h.v0)]);
    const entry = await readCheckpoint(installed[0]!.path, { verifyHashes: true });
    expect(entry.manifest.model_hash).toBe(h.validator.current!.hash);
    const pt = await PtFile.open(join(entry.path, expertFileName(0)));
    expect(await modelHashHex(pt)).toBe(h.validator.current!.hash);
    await pt.close();
    expect(msgs('<Distribute> task completed.').length).toBe(2);
    expect(h.logs().some((l) => String(l.msg).startsWith('<Distribute> downloaded model metadata from chain: ') && l.global_ver === h.v0)).toBe(true);
  });

  it('MinerCommit: a dropped chain connection during commit 1 heals; both payloads are on chain in their windows, exactly', async () => {
    const m1 = h.miners[0]!;
    const mc1 = at('MinerCommit1');
    const mc2 = at('MinerCommit2');
    // The trainer reloaded the new baseline and saved a checkpoint on it: the newest one.
    await writeOwnCheckpoint(m1.dir, h.v0, 7, shifted(h.model.groupExperts, -0.02));
    await writeOwnCheckpoint(h.miners[3]!.dir, 999_999, 1, shifted(h.model.groupExperts, 0.03));
    await h.clock.waitFor(mc1.start);
    // The validator's own MinerCommit1 transaction goes first, so the next one is ours.
    while (!h.validator.commits.some((c) => c.phase === 'MinerCommit1' && c.block >= mc1.start)) await new Promise((r) => setTimeout(r, 5));
    const p = h.payload(m1, 'commit', 1);
    const submits = (): number => h.node.rpcCalls().get('author_submitAndWatchExtrinsic') ?? 0;
    const before = submits();
    const task = commitRun(p, h.ctx(p));
    // Cut every connection the moment commit 1 is in the pool, and refuse new ones for two blocks.
    const t0 = Date.now();
    while (submits() === before && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 2));
    expect(submits()).toBeGreaterThan(before);
    expect(msgs('<MinerCommit1> committing')).toHaveLength(1);
    h.node.faults.refuseConnections(true);
    expect(h.node.faults.dropConnections()).toBeGreaterThan(0);
    const cutAt = h.node.head().number;
    await h.clock.waitFor(cutAt + 2);
    h.node.faults.refuseConnections(false);
    // m3 commits its (older-baseline) checkpoint in the same window, for the validator checks below;
    // m4's newest checkpoint claims a baseline version outside this cycle's window: refused.
    expect(h.node.head().number).toBeLessThan(mc1.end - 1);
    const p3 = h.payload(h.miners[2]!, 'commit', 1);
    const r3 = commitRun(p3, h.ctx(p3));
    const p4 = h.payload(h.miners[3]!, 'commit', 1);
    const r4 = commitRun(p4, h.ctx(p4));
    const r = await task;
    expect(r, `${r.detail}\n${h.logs().filter((l) => (l.level as number) >= 40).map((l) => JSON.stringify(l)).join('\n')}`).toMatchObject({ duty: 'commit', ok: true });
    // The answer to commit 1 was lost with the connection; the task found its commit on chain.
    expect(h.logs().some((l) => l.msg === '<MinerCommit1> commit found on chain after a lost answer')).toBe(true);
    expect(h.logs().some((l) => l.msg === 'chain connection lost; reconnecting')).toBe(true);

    const rec = (await readCommitted(m1.dir))!;
    expect(rec.mc1Start).toBe(mc1.start);
    expect(rec.checkpoint).toBe(join(m1.dir, 'checkpoints', `globalver_${h.v0}_inneropt_7`));
    await h.clock.waitFor(mc2.end + 1);
    // Read back at the blocks validators read (the first block after each phase).
    const s1 = await reader.allCommitments({ block: mc1.end + 1 });
    const s2 = await reader.allCommitments({ block: mc2.end + 1 });
    const c1 = s1.commitments.find((c) => c.hotkey === m1.wallet.hotkey)!;
    const c2 = s2.commitments.find((c) => c.hotkey === m1.wallet.hotkey)!;
    expect(c1.data).toBe(rec.commit1.payload);
    expect(c1.block).toBeGreaterThanOrEqual(mc1.start);
    expect(c1.block).toBeLessThanOrEqual(mc1.end + 1);
    const sig = decodeSignatureCommit(c1.data!);
    expect(sig.ok && c1.data).toBe(`{"m": "${sig.ok ? sig.value.m : ''}"}`);
    expect(verifyModelHash(m1.wallet.hotkey, rec.hash, sig.ok ? sig.value.m! : '')).toBe(true);
    const b = JSON.parse(c2.data!).b as number;
    expect(c2.data).toBe(encodeMinerCommit2({ b, e: 0, h: rec.hash, v: h.v0, i: 7 }));
    expect(b).toBeGreaterThanOrEqual(mc2.start);
    expect(c2.block).toBeGreaterThan(mc1.end + 1);
    expect(c2.block).toBeLessThanOrEqual(mc2.end + 1);
    // The committed hash is the hash of the newest own checkpoint's expert file, which stays pinned.
    const pt = await PtFile.open(rec.file);
    expect(await modelHashHex(pt)).toBe(rec.hash);
    await pt.close();
    expect(rec.pin).not.toBeNull();
    expect(readdirSync(join(m1.dir, 'checkpoints', '.pins')).length).toBe(1);
    expect(
      h.logs().filter((l) => (l.msg === '<MinerCommit1> committing' || l.msg === '<MinerCommit2> committing') && l.hash === rec.hash).map((l) => [l.msg, l.model_version, l.path]),
    ).toEqual([
      ['<MinerCommit1> committing', h.v0, rec.file],
      ['<MinerCommit2> committing', h.v0, rec.file],
    ]);
    const done3 = await r3;
    expect(done3, done3.detail).toMatchObject({ ok: true });
    const refused = await r4;
    expect(refused).toMatchObject({ ok: false, skipped: true });
    expect(refused.detail).toBe(`checkpoint version 999999 outside [${mc1.start - 3 * h.schedule.cycleLength}, ${mc1.start}]`);
    expect(await reader.commitment({ hotkey: h.miners[3]!.wallet.hotkey })).toBeNull();
    expect(readdirSync(join(h.miners[3]!.dir, 'checkpoints', '.pins'))).toEqual([]);
  });

  it('a cut download resumes with a Range request; a complete one is answered 416', async () => {
    const m1 = h.miners[0]!;
    const served = readFileSync(h.validator.current!.path);
    const dest = join(h.dir, 'partial.pt');
    writeFileSync(dest, served.subarray(0, 1000));
    const wallet = await loadWallet({ path: join(h.dir, 'wallets'), name: m1.wallet.name, hotkey: m1.wallet.hotkeyName });
    const req = {
      source: { hotkey: h.validator.hotkey, uid: 0, ip: '127.0.0.1', port: h.validator.port, globalVer: h.v0, modelHash: h.validator.current!.hash },
      originHotkey: m1.wallet.hotkey,
      expertGroup: 0,
      dest,
      block: h.node.head().number,
      sign: (m: Uint8Array) => signMessage(wallet.sr25519Pair(), m),
      signal: new AbortController().signal,
      maxBytes: 1 << 30,
      timeoutMs: 5000,
    };
    const t = new HttpTransport();
    expect(await t.fetchBaseline(req)).toEqual({ ok: true, bytes: served.length, resumedFrom: 1000 });
    expect(readFileSync(dest).equals(served)).toBe(true);
    expect(await t.fetchBaseline(req)).toEqual({ ok: true, bytes: served.length, resumedFrom: served.length });
    // A request signed by someone else is refused (the reference ignores that check; the devnet does not).
    const forged = await t.fetchBaseline({ ...req, dest: join(h.dir, 'forged.pt'), originHotkey: h.miners[1]!.wallet.hotkey });
    expect(forged).toMatchObject({ ok: false, final: true, status: 401 });
  });

  it('MinerCommit: arriving after MinerCommit1 ended skips with a log line and commits nothing', async () => {
    const m2 = h.miners[1]!;
    await h.clock.waitFor(at('MinerCommit1').end + 1);
    const p = h.payload(m2, 'commit', 1);
    const r = await commitRun(p, h.ctx(p));
    expect(r).toMatchObject({ ok: false, skipped: true });
    expect(r.detail).toMatch(/window over on arrival/);
    expect(h.logs().some((l) => String(l.msg).startsWith('<MinerCommit1> window already over on arrival'))).toBe(true);
    await h.clock.waitFor(at('MinerCommit2').end + 1);
    expect(await reader.commitment({ hotkey: m2.wallet.hotkey })).toBeNull();
    expect(await readCommitted(m2.dir)).toBeNull();
  });

  it('Submission: the validator answers 500 twice, then accepts — inside the window', async () => {
    const m1 = h.miners[0]!;
    const sub = at('Submission');
    await h.clock.waitFor(sub.start);
    h.validator.failNextSubmissions(2, 500);
    const p = h.payload(m1, 'submit', 1);
    const r = await submitRun(p, h.ctx(p));
    expect(r).toMatchObject({ duty: 'submit', ok: true, attempts: 3, destination: h.validator.hotkey });
    const rec = (await readCommitted(m1.dir))!;
    const acc = h.validator.accepted.filter((a) => a.miner === m1.wallet.hotkey);
    expect(acc).toHaveLength(1);
    expect(acc[0]).toMatchObject({ cycle: 1, hash: rec.hash });
    expect(acc[0]!.originBlock).toBeGreaterThanOrEqual(sub.start);
    expect(acc[0]!.originBlock).toBeLessThanOrEqual(sub.end);
    expect(acc[0]!.block).toBeLessThanOrEqual(sub.end);
    const warned = h.logs().filter((l) => l.msg === '<Submission> upload failed; retrying');
    expect(warned.map((l) => l.status)).toEqual([500, 500]);
    for (const w of warned) expect(typeof w.time_left_ms).toBe('number');
    expect(msgs('<Submission> submitted model')[0]).toMatchObject({ destination: [h.validator.hotkey], hash: rec.hash, path: rec.file });
    expect(msgs('<Submission> task completed.')).toHaveLength(1);
    // The upload is over: the committed checkpoint is no longer pinned.
    expect((await readCommitted(m1.dir))!.pin).toBeNull();
    expect(readdirSync(join(m1.dir, 'checkpoints', '.pins'))).toEqual([]);
  });

  it('Submission: the validator refuses a second upload, a wrong target, a block outside the window, and a file that is not the committed one', async () => {
    const [m1, , m3] = h.miners as [(typeof h.miners)[0], (typeof h.miners)[0], (typeof h.miners)[0]];
    const sub = at('Submission');
    const t = new HttpTransport();
    const submit = async (m: typeof m1, o: { file?: string; block?: number; target?: string } = {}) => {
      const rec = (await readCommitted(m.dir))!;
      const wallet = await loadWallet({ path: join(h.dir, 'wallets'), name: m.wallet.name, hotkey: m.wallet.hotkeyName });
      const file = o.file ?? rec.file;
      return t.submitCheckpoint({
        destination: { hotkey: o.target ?? h.validator.hotkey, ip: '127.0.0.1', port: h.validator.port },
        originHotkey: m.wallet.hotkey,
        block: o.block ?? h.node.head().number,
        modelHash: fromHex(rec.hash, 24),
        file: { path: file, name: 'model_expgroup_0.pt', size: readFileSync(file).length },
        sign: (msg: Uint8Array) => signMessage(wallet.sr25519Pair(), msg),
        signal: new AbortController().signal,
        timeoutMs: 5000,
      });
    };
    expect(h.node.head().number).toBeLessThanOrEqual(sub.end - 6);
    expect(await submit(m1)).toMatchObject({ ok: false, final: true, status: 409 });
    expect(await submit(m3, { target: m1.wallet.hotkey })).toMatchObject({ ok: false, final: true, status: 403 });
    expect(await submit(m3, { block: sub.start - 1 })).toMatchObject({ ok: false, final: true, status: 400, reason: expect.stringMatching(/Origin block is not within the submission phase/) });
    // m3 uploads m1's file while its commits name its own hash: stored, checked, deleted, refused.
    const other = await submit(m3, { file: (await readCommitted(m1.dir))!.file });
    expect(other).toMatchObject({ ok: false, final: true, status: 400, reason: expect.stringMatching(/failed validation.*hashes to/) });
    expect(readdirSync(join(h.dir, 'validator', 'miner_submission')).filter((n) => n.includes(m3.wallet.hotkey))).toEqual([]);
    expect(h.validator.accepted.map((a) => a.miner)).toEqual([m1.wallet.hotkey]);
  });
});
