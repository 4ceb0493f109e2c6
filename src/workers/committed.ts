// DIR/state/committed.json: what the commit task put on chain this cycle, for the submit task
// (which may run on another worker thread, or after a supervisor restart). Written atomically
// (temp file, fsync, rename). The committed checkpoint directory stays pinned until the upload
// ends (§13.2 #6): the pin file's path is recorded here so whoever finishes the cycle releases it.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkerError } from './errors.js';

export const COMMITTED_FILE = 'committed.json';

export interface CommittedRecord {
  version: 1;
  hotkey: string;
  cycleIndex: number;
  /** First block of this cycle's MinerCommit1: the key the submit task matches on. */
  mc1Start: number;
  /** The committed checkpoint directory and its expert file (the exact bytes to upload). */
  checkpoint: string;
  file: string;
  hash: string;
  globalVer: number;
  innerOpt: number;
  expertGroup: number;
  /** Pin file holding the directory against retention; null once released. */
  pin: string | null;
  commit1: { block: number; payload: string };
  commit2: { block: number; payload: string };
  at: string;
}

export function stateDir(runDir: string): string {
  return join(runDir, 'state');
}

export async function writeCommitted(runDir: string, rec: CommittedRecord): Promise<void> {
  const dir = stateDir(runDir);
  await mkdir(dir, { recursive: true });
  const final = join(dir, COMMITTED_FILE);
  const tmp = join(dir, `.${COMMITTED_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(JSON.stringify(rec, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, final);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** The record, or null when there is none. A malformed file is an error naming the file. */
export async function readCommitted(runDir: string): Promise<CommittedRecord | null> {
  const file = join(stateDir(runDir), COMMITTED_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new WorkerError('CNM_ERR_COMMITTED_STATE', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  let o: Partial<CommittedRecord>;
  try {
    o = JSON.parse(text) as Partial<CommittedRecord>;
  } catch {
    throw new WorkerError('CNM_ERR_COMMITTED_STATE', `${file} is not JSON; delete it (the next MinerCommit1 writes a new one)`);
  }
  const ok =
    o.version === 1 &&
    typeof o.hotkey === 'string' &&
    Number.isSafeInteger(o.cycleIndex) &&
    Number.isSafeInteger(o.mc1Start) &&
    typeof o.checkpoint === 'string' &&
    typeof o.file === 'string' &&
    typeof o.hash === 'string' &&
    /^[0-9a-f]{48}$/.test(o.hash) &&
    Number.isSafeInteger(o.globalVer) &&
    Number.isSafeInteger(o.innerOpt) &&
    Number.isSafeInteger(o.expertGroup) &&
    (o.pin === null || typeof o.pin === 'string');
  if (!ok) throw new WorkerError('CNM_ERR_COMMITTED_STATE', `${file} is malformed; delete it (the next MinerCommit1 writes a new one)`);
  return o as CommittedRecord;
}

/** Releases the recorded pin (idempotent) and records that it is gone. */
export async function releaseCommittedPin(runDir: string, rec: CommittedRecord): Promise<void> {
  if (rec.pin === null) return;
  await unlink(rec.pin).catch(() => undefined);
  await writeCommitted(runDir, { ...rec, pin: null });
}
