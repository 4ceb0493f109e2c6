// Checkpoint directories (PROTOCOL.md §7, DESIGN "The run directory").
//
// A checkpoint is a directory `globalver_<G>_inneropt_<K>` (own) or `uid_<u>_hotkey_<hk>_globalver_<G>`
// (a downloaded validator baseline) holding the reference's files plus our manifest, written last.
// Creation is atomic: files go into `.tmp_<name>` in the same parent, each is fsynced, the manifest is
// written and fsynced, the temp directory is fsynced, renamed into place, and the parent fsynced.
// A directory without a valid manifest (sizes match, names match) does not exist for readers.
//
// Readers that hold a checkpoint for a while (hash, upload) pin it: a pin file under `<parent>/.pins`
// naming the reader's pid. Retention never deletes the newest complete checkpoint nor a pinned one;
// pins of dead processes are ignored and cleaned up.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CheckpointError } from './errors.js';
import { PtFile, type PtWriteOptions, writePt } from './pt.js';
import type { Tensor, TensorInfo, TensorSource, TensorStore } from './tensor.js';

export const MANIFEST_FILE = 'connito-manifest.json';
export const MANIFEST_FORMAT = 'connito-checkpoint/1';
const TMP_PREFIX = '.tmp_';
const DEL_PREFIX = '.del_';
const OLD_PREFIX = '.old_';
const NEW_PREFIX = '.new_';
const PINS_DIR = '.pins';
const WRITER_FILE = '.writer.json';

export interface ManifestFile {
  name: string;
  size: number;
  /** SHA-256 of the file bytes (null if the writer chose not to compute it). */
  sha256: string | null;
}

export interface CheckpointManifest {
  format: typeof MANIFEST_FORMAT;
  /** The directory name (a renamed directory is not the same checkpoint). */
  name: string;
  kind: CheckpointKind;
  global_ver: number;
  inner_opt: number;
  expert_group: number | null;
  /** Model hash (48 hex) of `model_expgroup_<expert_group>.pt`, when the writer computed it. */
  model_hash: string | null;
  run_id: string | null;
  /** global_ver of the baseline this checkpoint was trained from (null if none). */
  base_version: number | null;
  created_at: string;
  files: ManifestFile[];
  /** Free-form provenance (validator uid/hotkey for downloads, loss, ...). */
  extra: Record<string, unknown>;
}

/**
 * `miner`: own checkpoints `globalver_G_inneropt_K`; `validator`: downloaded baselines
 * `uid_u_hotkey_hk_globalver_G`; `global`: a validator's own merged model `globalver_G` (devnet).
 */
export type CheckpointKind = 'miner' | 'validator' | 'global';

export interface CheckpointName {
  kind: CheckpointKind;
  globalVer: number;
  innerOpt: number;
  uid?: number;
  hotkey?: string;
}

export interface CheckpointEntry extends CheckpointName {
  /** Absolute or caller-relative path of the directory. */
  path: string;
  name: string;
  manifest: CheckpointManifest;
}

const OWN_RE = /^globalver_(\d{1,15})_inneropt_(\d{1,15})$/;
const GLOBAL_RE = /^globalver_(\d{1,15})$/;
const VALIDATOR_RE = /^uid_(\d{1,9})_hotkey_([1-9A-HJ-NP-Za-km-z]{40,60})_globalver_(\d{1,15})$/;

/**
 * Parses the directory-name forms. Validator folders have no inner step: they order as K = 0
 * (`int(meta.get("inneropt", 0))`), so an own checkpoint of the same G with K > 0 is newer.
 */
export function parseCheckpointName(name: string): CheckpointName | null {
  let m = OWN_RE.exec(name);
  if (m) return { kind: 'miner', globalVer: Number(m[1]), innerOpt: Number(m[2]) };
  m = VALIDATOR_RE.exec(name);
  if (m) return { kind: 'validator', uid: Number(m[1]), hotkey: m[2]!, globalVer: Number(m[3]), innerOpt: 0 };
  m = GLOBAL_RE.exec(name);
  if (m) return { kind: 'global', globalVer: Number(m[1]), innerOpt: 0 };
  return null;
}

export function ownCheckpointName(globalVer: number, innerOpt: number): string {
  return `globalver_${globalVer}_inneropt_${innerOpt}`;
}

export function validatorCheckpointName(uid: number, hotkey: string, globalVer: number): string {
  return `uid_${uid}_hotkey_${hotkey}_globalver_${globalVer}`;
}

/** `globalver_<G>`: how a validator names its own merged model (what it serves, §6.5). */
export function globalCheckpointName(globalVer: number): string {
  return `globalver_${globalVer}`;
}

export function expertFileName(group: number | 'shared'): string {
  return group === 'shared' ? 'model_shared.pt' : `model_expgroup_${group}.pt`;
}

/** Reference ordering (§7.5): larger (global_ver, inner_opt) is newer. */
export function compareCheckpoints(a: CheckpointName, b: CheckpointName): number {
  return a.globalVer !== b.globalVer ? a.globalVer - b.globalVer : a.innerOpt - b.innerOpt;
}

// ---------------------------------------------------------------------------------------------
// Process liveness (pins, writers, deleters). The start time guards against pid reuse.

interface Owner {
  pid: number;
  start: string | null;
}

async function processStart(pid: number): Promise<string | null> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime) counts after the parenthesised command name, which may hold spaces.
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

let selfOwner: Promise<Owner> | null = null;
function me(): Promise<Owner> {
  return (selfOwner ??= processStart(process.pid).then((start) => ({ pid: process.pid, start })));
}

export async function isOwnerAlive(o: Owner): Promise<boolean> {
  if (!Number.isSafeInteger(o.pid) || o.pid <= 0) return false;
  try {
    process.kill(o.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (o.start === null) return true;
  const now = await processStart(o.pid);
  return now === null || now === o.start;
}

async function readOwner(path: string): Promise<Owner | null> {
  try {
    const o = JSON.parse(await readFile(path, 'utf8')) as Partial<Owner>;
    if (typeof o.pid !== 'number') return null;
    return { pid: o.pid, start: typeof o.start === 'string' ? o.start : null };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// fsync helpers.

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeFileSynced(path: string, text: string): Promise<void> {
  const fh = await open(path, 'w', 0o644);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 8 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

function exists(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code !== 'ENOENT';
}

/** Entries of `dir`; a missing directory has none. */
async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if (!exists(e)) return [];
    throw e;
  }
}

/**
 * `<prefix><name>.<pid>.<random>`: a sibling directory owned by this process while it moves
 * `name` around; cleanupCheckpointDir reads the pid back to tell a dead owner's leftovers.
 */
function sideName(prefix: string, name: string): string {
  return `${prefix}${name}.${process.pid}.${randomBytes(4).toString('hex')}`;
}

// ---------------------------------------------------------------------------------------------
// Writing.

export interface CommitMeta {
  expert_group?: number | null;
  model_hash?: string | null;
  run_id?: string | null;
  base_version?: number | null;
  extra?: Record<string, unknown>;
}

/** A checkpoint being written into `.tmp_<name>`; nothing is visible until `commit()`. */
export class PendingCheckpoint {
  private readonly files = new Map<string, ManifestFile>();
  private done = false;

  constructor(
    readonly parent: string,
    readonly name: string,
    readonly parsed: CheckpointName,
    /** The temporary directory files are written into. */
    readonly path: string,
  ) {}

  /** Path of `file` inside the temporary directory (for callers that stream a file themselves). */
  filePath(file: string): string {
    checkFileName(file);
    return join(this.path, file);
  }

  /** Writes a `.pt` file (fsynced, SHA-256 computed while writing) and records it. */
  async writePt(file: string, src: TensorSource, opts: PtWriteOptions = {}): Promise<ManifestFile> {
    this.assertOpen();
    const r = await writePt(this.filePath(file), src, { ...opts, fsync: true, sha256: true });
    const entry = { name: file, size: r.bytes, sha256: r.sha256 };
    this.files.set(file, entry);
    return entry;
  }

  /** Records a file the caller wrote at `filePath(file)`: fsyncs it and hashes it unless given. */
  async addFile(file: string, opts: { sha256?: string | null } = {}): Promise<ManifestFile> {
    this.assertOpen();
    const p = this.filePath(file);
    const st = await stat(p);
    if (!st.isFile()) throw new CheckpointError('CNM_ERR_CKPT_ARG', `${file} is not a regular file`, p);
    await fsyncPath(p);
    const entry = { name: file, size: st.size, sha256: opts.sha256 === undefined ? await sha256File(p) : opts.sha256 };
    this.files.set(file, entry);
    return entry;
  }

  /** Writes the manifest, then makes the directory visible atomically. */
  async commit(meta: CommitMeta = {}): Promise<CheckpointEntry> {
    this.assertOpen();
    const manifest: CheckpointManifest = {
      format: MANIFEST_FORMAT,
      name: this.name,
      kind: this.parsed.kind,
      global_ver: this.parsed.globalVer,
      inner_opt: this.parsed.innerOpt,
      expert_group: meta.expert_group ?? null,
      model_hash: meta.model_hash ?? null,
      run_id: meta.run_id ?? null,
      base_version: meta.base_version ?? null,
      created_at: new Date().toISOString(),
      files: [...this.files.values()],
      extra: meta.extra ?? {},
    };
    if (manifest.model_hash !== null && !/^[0-9a-f]{48}$/.test(manifest.model_hash)) {
      throw new CheckpointError('CNM_ERR_CKPT_ARG', `model_hash must be 48 lowercase hex characters, got ${JSON.stringify(manifest.model_hash)}`);
    }
    await writeFileSynced(join(this.path, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    await fsyncPath(this.path);
    const final = join(this.parent, this.name);
    let old: string | null = null;
    try {
      await stat(final);
      // Same name written again (a restarted trainer): move the old one aside, then swap.
      old = join(this.parent, sideName(OLD_PREFIX, this.name));
      await rename(final, old);
    } catch (e) {
      if (exists(e)) throw e;
    }
    await rename(this.path, final);
    await fsyncPath(this.parent);
    this.done = true;
    // The owner file kept the temp directory safe from clean-up until the rename; readers ignore it.
    await unlink(join(final, WRITER_FILE)).catch(() => undefined);
    if (old) await rm(old, { recursive: true, force: true });
    return { ...this.parsed, path: final, name: this.name, manifest };
  }

  /** Removes the temporary directory (nothing was published). */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await rm(this.path, { recursive: true, force: true });
  }

  private assertOpen(): void {
    if (this.done) throw new CheckpointError('CNM_ERR_CKPT_ARG', `checkpoint ${this.name} was already committed or aborted`);
  }
}

function checkFileName(file: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(file) || file === MANIFEST_FILE || file === WRITER_FILE) {
    throw new CheckpointError('CNM_ERR_CKPT_ARG', `invalid checkpoint file name ${JSON.stringify(file)}`);
  }
}

/**
 * Starts a checkpoint `name` in `parent` (created if missing). A leftover `.tmp_<name>` of a dead
 * writer is removed; one whose writer is alive is an error (two writers of one checkpoint).
 */
export async function beginCheckpoint(parent: string, name: string): Promise<PendingCheckpoint> {
  const parsed = parseCheckpointName(name);
  if (!parsed) {
    throw new CheckpointError('CNM_ERR_CKPT_ARG', `${JSON.stringify(name)} is not a checkpoint name (globalver_<G>_inneropt_<K>, uid_<u>_hotkey_<ss58>_globalver_<G> or globalver_<G>)`);
  }
  await mkdir(parent, { recursive: true });
  const tmp = join(parent, TMP_PREFIX + name);
  const owner = await readOwner(join(tmp, WRITER_FILE));
  if (owner && owner.pid !== process.pid && (await isOwnerAlive(owner))) {
    throw new CheckpointError('CNM_ERR_CKPT_DIR', `checkpoint ${name} is being written by process ${owner.pid}`, tmp);
  }
  await rm(tmp, { recursive: true, force: true });
  // The temp directory appears with its owner file already inside (staged under a pid-named name and
  // renamed), so a concurrent clean-up never sees an ownerless `.tmp_` of a live writer.
  const staging = join(parent, sideName(NEW_PREFIX, name));
  await mkdir(staging);
  await writeFileSynced(join(staging, WRITER_FILE), JSON.stringify(await me()));
  try {
    await rename(staging, tmp);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw new CheckpointError('CNM_ERR_CKPT_DIR', `checkpoint ${name} is being written by another process`, tmp, { cause: e });
  }
  return new PendingCheckpoint(parent, name, parsed, tmp);
}

/** One call for the common case: write `.pt` files and commit. */
export async function writeCheckpoint(
  parent: string,
  name: string,
  files: ReadonlyArray<{ file: string; stateDict: TensorSource; options?: PtWriteOptions }>,
  meta: CommitMeta = {},
): Promise<CheckpointEntry> {
  const p = await beginCheckpoint(parent, name);
  try {
    for (const f of files) await p.writePt(f.file, f.stateDict, f.options);
    return await p.commit(meta);
  } catch (e) {
    await p.abort().catch(() => undefined);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading.

function parseManifest(text: string, dirName: string, path: string): CheckpointManifest {
  const bad = (why: string): never => {
    throw new CheckpointError('CNM_ERR_CKPT_DIR', `invalid checkpoint manifest: ${why}`, path);
  };
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return bad('not JSON');
  }
  if (typeof m !== 'object' || m === null) return bad('not an object');
  if (m.format !== MANIFEST_FORMAT) bad(`format ${JSON.stringify(m.format)} (expected ${MANIFEST_FORMAT})`);
  if (m.name !== dirName) bad(`names ${JSON.stringify(m.name)} but the directory is ${dirName}`);
  const parsed = parseCheckpointName(dirName);
  if (!parsed) return bad(`directory name ${dirName} is not a checkpoint name`);
  if (m.global_ver !== parsed.globalVer || m.inner_opt !== parsed.innerOpt || m.kind !== parsed.kind) bad('versions disagree with the directory name');
  if (!Array.isArray(m.files)) bad('no files list');
  for (const f of m.files as unknown[]) {
    const ff = f as Partial<ManifestFile>;
    if (typeof ff?.name !== 'string' || !Number.isSafeInteger(ff.size) || (ff.size as number) < 0) bad('malformed files entry');
    if (ff.sha256 !== null && (typeof ff.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(ff.sha256))) bad(`bad sha256 for ${ff.name}`);
    checkFileName(ff.name as string);
  }
  return m as unknown as CheckpointManifest;
}

/**
 * Reads and checks a checkpoint directory: manifest present and consistent, every listed file a
 * regular file of the listed size (and, with `verifyHashes`, the listed SHA-256). Throws
 * CNM_ERR_CKPT_DIR otherwise.
 */
export async function readCheckpoint(dirPath: string, opts: { verifyHashes?: boolean } = {}): Promise<CheckpointEntry> {
  const name = basename(dirPath);
  const parsed = parseCheckpointName(name);
  if (!parsed) throw new CheckpointError('CNM_ERR_CKPT_DIR', `not a checkpoint directory name: ${name}`, dirPath);
  let text: string;
  try {
    text = await readFile(join(dirPath, MANIFEST_FILE), 'utf8');
  } catch {
    throw new CheckpointError('CNM_ERR_CKPT_DIR', 'checkpoint is incomplete (no manifest)', dirPath);
  }
  const manifest = parseManifest(text, name, dirPath);
  for (const f of manifest.files) {
    const p = join(dirPath, f.name);
    let st;
    try {
      st = await stat(p);
    } catch {
      throw new CheckpointError('CNM_ERR_CKPT_DIR', `checkpoint file ${f.name} is missing`, dirPath);
    }
    if (!st.isFile() || st.size !== f.size) {
      throw new CheckpointError('CNM_ERR_CKPT_DIR', `checkpoint file ${f.name} is ${st.size} bytes, manifest says ${f.size}`, dirPath);
    }
    if (opts.verifyHashes && f.sha256 !== null && (await sha256File(p)) !== f.sha256) {
      throw new CheckpointError('CNM_ERR_CKPT_DIR', `checkpoint file ${f.name} does not match its SHA-256`, dirPath);
    }
  }
  return { ...parsed, path: dirPath, name, manifest };
}

/** Complete checkpoints in `dir`, newest first (ties: name order). Missing dir → []. */
export async function listCheckpoints(dir: string): Promise<CheckpointEntry[]> {
  const names = await readdirOrEmpty(dir);
  const out: CheckpointEntry[] = [];
  for (const n of names.sort()) {
    if (!parseCheckpointName(n)) continue;
    try {
      out.push(await readCheckpoint(join(dir, n)));
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
    }
  }
  return out.sort((a, b) => -compareCheckpoints(a, b));
}

/**
 * `select_best_checkpoint(primary, secondary)`: the newest complete checkpoint of `primary`
 * followed by `secondary`, by (global_ver, inner_opt); on a tie the primary directory wins.
 */
export async function selectBestCheckpoint(primary: string, secondary?: string | null): Promise<CheckpointEntry | null> {
  const all = [...(await listCheckpoints(primary)), ...(secondary ? await listCheckpoints(secondary) : [])];
  let best: CheckpointEntry | null = null;
  for (const c of all) if (best === null || compareCheckpoints(c, best) > 0) best = c;
  return best;
}

// ---------------------------------------------------------------------------------------------
// Pins.

export interface CheckpointPin {
  readonly checkpoint: CheckpointEntry;
  readonly pinPath: string;
  release(): Promise<void>;
}

/**
 * Pins a complete checkpoint against retention for as long as this process lives or until
 * `release()`. Throws CNM_ERR_CKPT_DIR if the directory is not (or no longer) complete.
 */
export async function pinCheckpoint(dirPath: string): Promise<CheckpointPin> {
  const parent = dirname(dirPath);
  const name = basename(dirPath);
  const pins = join(parent, PINS_DIR);
  await mkdir(pins, { recursive: true });
  const pinPath = join(pins, `${name}@${process.pid}.${randomBytes(6).toString('hex')}`);
  await writeFileSynced(pinPath, JSON.stringify(await me()));
  // Re-check after pinning: a pruner renames before it looks at pins, so a checkpoint seen here
  // after the pin exists cannot be deleted until the pin is gone.
  let checkpoint: CheckpointEntry;
  try {
    checkpoint = await readCheckpoint(dirPath);
  } catch (e) {
    await unlink(pinPath).catch(() => undefined);
    throw e;
  }
  let released = false;
  return {
    checkpoint,
    pinPath,
    release: async () => {
      if (released) return;
      released = true;
      await unlink(pinPath).catch(() => undefined);
    },
  };
}

/** `selectBestCheckpoint` + `pinCheckpoint`, retrying if the choice disappears in between. */
export async function pinBestCheckpoint(primary: string, secondary?: string | null): Promise<CheckpointPin | null> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const best = await selectBestCheckpoint(primary, secondary);
    if (!best) return null;
    try {
      return await pinCheckpoint(best.path);
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
    }
  }
  return null;
}

async function livePins(parent: string, name: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(join(parent, PINS_DIR));
  } catch {
    return [];
  }
  const live: string[] = [];
  for (const e of entries) {
    if (!e.startsWith(`${name}@`)) continue;
    const owner = await readOwner(join(parent, PINS_DIR, e));
    // An unreadable pin is being written right now: treat it as live.
    if (owner === null || (await isOwnerAlive(owner))) live.push(e);
  }
  return live;
}

/** True when some live process holds a pin on `dirPath`. */
export async function isPinned(dirPath: string): Promise<boolean> {
  return (await livePins(dirname(dirPath), basename(dirPath))).length > 0;
}

// ---------------------------------------------------------------------------------------------
// Retention and clean-up.

/**
 * Keeps the newest `keep` complete checkpoints of `dir` (at least 1: the newest is never deleted) and
 * deletes the older ones that no live process has pinned. Returns the deleted names. Incomplete
 * directories are left to `cleanupCheckpointDir`.
 */
export async function pruneCheckpoints(dir: string, keep: number): Promise<string[]> {
  const all = await listCheckpoints(dir);
  const deleted: string[] = [];
  for (const c of all.slice(Math.max(1, Math.floor(keep)))) {
    // Skip pinned ones up front so a reader is not even briefly left without its directory.
    if ((await livePins(dir, c.name)).length > 0) continue;
    const aside = join(dir, sideName(DEL_PREFIX, c.name));
    try {
      await rename(c.path, aside);
    } catch (e) {
      if (!exists(e)) continue;
      throw e;
    }
    // Pins are checked only after the rename: a reader that pins later sees the directory gone.
    if ((await livePins(dir, c.name)).length > 0) {
      await rename(aside, c.path);
      continue;
    }
    await rm(aside, { recursive: true, force: true });
    deleted.push(c.name);
  }
  return deleted;
}

/**
 * Start-up clean-up of `dir`: temporary directories of dead writers, half-deleted directories of
 * dead pruners, and pins of dead readers. Returns what was removed.
 */
export async function cleanupCheckpointDir(dir: string): Promise<string[]> {
  const names = await readdirOrEmpty(dir);
  const removed: string[] = [];
  for (const n of names) {
    const p = join(dir, n);
    if (n.startsWith(TMP_PREFIX)) {
      const owner = await readOwner(join(p, WRITER_FILE));
      if (owner && (await isOwnerAlive(owner))) continue;
      await rm(p, { recursive: true, force: true });
      removed.push(n);
    } else if (n.startsWith(DEL_PREFIX) || n.startsWith(OLD_PREFIX) || n.startsWith(NEW_PREFIX)) {
      const pid = Number(/\.(\d+)\.[0-9a-f]+$/.exec(n)?.[1]);
      if (pid && (await isOwnerAlive({ pid, start: null }))) continue;
      await rm(p, { recursive: true, force: true });
      removed.push(n);
    }
  }
  let pins: string[] = [];
  try {
    pins = await readdir(join(dir, PINS_DIR));
  } catch {
    /* no pins */
  }
  for (const e of pins) {
    const owner = await readOwner(join(dir, PINS_DIR, e));
    if (owner && !(await isOwnerAlive(owner))) {
      await unlink(join(dir, PINS_DIR, e)).catch(() => undefined);
      removed.push(`${PINS_DIR}/${e}`);
    }
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// The expert file.

/** A TensorStore that must be closed (a `.pt` reader, or the empty store of a missing file). */
export type ClosableStore = TensorStore & { close(): Promise<void>; readonly missing: boolean };

/**
 * Opens `model_expgroup_<group>.pt` of a checkpoint directory for lazy reading (e.g. to hash it with
 * protocol's `modelHash`). A missing file gives an empty store, as the reference's
 * `compile_full_state_dict_from_path` does (it then hashes to the empty-dict hash).
 */
export async function openExpertFile(dirPath: string, group: number | 'shared'): Promise<ClosableStore> {
  const p = join(dirPath, expertFileName(group));
  try {
    await stat(p);
  } catch (e) {
    if (exists(e)) throw e;
    const none = (key: string): never => {
      throw new CheckpointError('CNM_ERR_CKPT_ARG', `no tensor named ${key}`, p);
    };
    return {
      missing: true,
      keys: () => [],
      info: (k: string): TensorInfo => none(k),
      load: async (k: string): Promise<Tensor> => none(k),
      close: async () => undefined,
    };
  }
  const f = await PtFile.open(p);
  return Object.assign(f, { missing: false as const });
}
