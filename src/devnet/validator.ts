// A devnet validator: what a cbf3c65 validator does that a miner can observe, on one host.
//   - serves its global model at `GET /get-checkpoint` (signed request, Range) — §6.5;
//   - accepts `POST /submit-checkpoint` with the reference's checks in the reference's order —
//     target, phase, origin block window, assignment, one per phase, fields, chain checkpoint, size,
//     file name, extension, then signature (chain `m` over `h`), file hash == `h`, expert ids and the
//     package signature (§5.2) — plus two checks the reference skips (§13.2 #4): `model_hex` must be
//     the committed hash and `block_hex` must encode this validator and `origin_block`;
//   - commits in its own phases (§2.2): seed at MinerCommit1, signed hash at ValidatorCommit1, the
//     hash of its global model at ValidatorCommit2;
//   - evaluates accepted submissions with the engine at Validate, merges at Merge (the mean of all
//     accepted expert sets, shared through a MergeBoard that stands in for the validators'
//     all-reduce, so every validator commits the same new model) and sets weights (which keeps its
//     last_update fresh for role gating, §2.4).
// Faults for tests: answer the next N submissions with an error status; serve a tampered file.
import { createHash, randomInt } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { basename, extname, join } from 'node:path';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ChainClient } from '../chain/client.js';
import type { Wallet } from '../chain/wallet.js';
import { expertFileName, globalCheckpointName, writeCheckpoint } from '../checkpoint/dir.js';
import { readPt, writePt } from '../checkpoint/pt.js';
import type { StateDict } from '../checkpoint/tensor.js';
import { encodeMinerCommit1, encodeValidatorCommit } from '../protocol/commits.js';
import { modelHashHex } from '../protocol/hashing.js';
import { fromHex, toHex } from '../protocol/hex.js';
import { phaseAt, type PhaseName, type PhaseSchedule } from '../protocol/phases.js';
import { blockMessage, signModelHash, verifyMessage } from '../protocol/signing.js';
import type { Logger } from '../telemetry/logger.js';
import { phaseRange } from '../workers/commit.js';
import { verifyBaseline } from '../workers/download.js';
import { readAssignment, type ChainCheckpoint } from '../workers/subnet.js';
import { MultipartError, MultipartParser, multipartBoundary } from './multipart.js';
import { averageExperts, type DevnetModel, type Evaluator } from './model.js';

export type ValidatorEvent =
  | { type: 'commit'; validator: string; phase: PhaseName; block: number; payload: string }
  | { type: 'distributed'; validator: string; miner: string; version: number; bytes: number; tampered: boolean }
  | { type: 'submission'; validator: string; miner: string; accepted: boolean; status: number; detail: string; cycle: number; block?: number; hash?: string }
  | { type: 'evaluated'; validator: string; cycle: number; version: number; baseline: number; results: Array<{ miner: string; loss: number }> }
  | { type: 'merged'; validator: string; cycle: number; version: number; hash: string; miners: string[] }
  | { type: 'error'; validator: string; what: string; err: string };

export interface AcceptedSubmission {
  cycle: number;
  miner: string;
  /** The validator's head when the upload started (the stored file's block). */
  block: number;
  originBlock: number;
  path: string;
  hash: string;
  bytes: number;
  loss: number | null;
}

/** The devnet's stand-in for the validators' all-reduce: every validator merges the same set. */
export class MergeBoard {
  private readonly posts = new Map<number, Map<string, Array<{ miner: string; experts: StateDict }>>>();
  private readonly waiters = new Set<() => void>();

  constructor(private readonly validators: number) {}

  post(cycle: number, validator: string, sets: Array<{ miner: string; experts: StateDict }>): void {
    let m = this.posts.get(cycle);
    if (!m) this.posts.set(cycle, (m = new Map()));
    m.set(validator, sets);
    for (const w of [...this.waiters]) w();
  }

  /** Every posted set of `cycle` (one per miner, sorted by hotkey) once all validators posted, or at the timeout. */
  async collect(cycle: number, timeoutMs: number): Promise<Array<{ miner: string; experts: StateDict }>> {
    const ready = (): boolean => (this.posts.get(cycle)?.size ?? 0) >= this.validators;
    if (!ready()) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, timeoutMs);
        function done(): void {
          clearTimeout(t);
          waiters.delete(check);
          resolve();
        }
        const waiters = this.waiters;
        const check = (): void => {
          if (ready()) done();
        };
        waiters.add(check);
      });
    }
    const byMiner = new Map<string, StateDict>();
    for (const sets of this.posts.get(cycle)?.values() ?? []) for (const s of sets) if (!byMiner.has(s.miner)) byMiner.set(s.miner, s.experts);
    return [...byMiner.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([miner, experts]) => ({ miner, experts }));
  }
}

export interface DevValidatorOptions {
  name: string;
  wallet: Wallet;
  chainUrl: string;
  netuid?: number;
  schedule: PhaseSchedule;
  model: DevnetModel;
  evaluator: Evaluator;
  board: MergeBoard;
  /** Root of this validator's files (checkpoints/, miner_submission/). */
  dir: string;
  /** The owner's whitelist (the validators of the devnet). */
  validatorHotkeys: () => string[];
  blockTimeMs: number;
  freshnessBlocks?: number;
  maxMinersPerValidator?: number;
  maxSubmissionBytes?: number;
  host?: string;
  /** Phases of blocks before this one are not acted on (the devnet's bootstrap fast-forward). */
  activeFrom?: number;
  logger: Logger;
  onEvent?: (e: ValidatorEvent) => void;
}

interface GlobalModel {
  version: number;
  hash: string;
  experts: StateDict;
  path: string;
}

interface CycleView {
  assigned: string[];
  checkpoints: Map<string, ChainCheckpoint>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const SAFE_FILENAME = /^[A-Za-z0-9._-]+$/;
const EXTENSIONS = new Set(['.pt', '.bin', '.ckpt', '.safetensors', '.tar']);
const SUBMIT_FIELDS = ['target_hotkey_ss58', 'origin_hotkey_ss58', 'origin_block', 'signature', 'model_hex', 'block_hex'] as const;

export class DevValidator {
  readonly name: string;
  readonly hotkey: string;
  url = '';
  port = 0;
  uid: number | null = null;
  readonly accepted: AcceptedSubmission[] = [];
  readonly evaluations: Array<{ cycle: number; version: number; baseline: number; results: Array<{ miner: string; loss: number }> }> = [];
  readonly commits: Array<{ phase: PhaseName; block: number; payload: string }> = [];
  current: GlobalModel | null = null;
  /** Versions this validator has published, oldest first. */
  readonly versions: number[] = [];

  private readonly app: FastifyInstance;
  private chain: ChainClient | null = null;
  private readonly log: Logger;
  private readonly done = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly views = new Map<number, Promise<CycleView>>();
  private failNext: { count: number; status: number } = { count: 0, status: 500 };
  private tamper = false;
  private tamperedFile: string | null = null;
  private stopped = false;

  constructor(private readonly o: DevValidatorOptions) {
    this.name = o.name;
    this.hotkey = o.wallet.hotkeyAddress;
    this.log = o.logger.child({ validator: o.name });
    this.app = Fastify({ logController: new LogController({ disableRequestLogging: true }), bodyLimit: 1024 * 1024 });
    // The multipart body is streamed by the handler itself.
    this.app.addContentTypeParser('multipart/form-data', (_req, _payload, done) => done(null, undefined));
    // Every path of the handlers sends a reply; returning it tells fastify to wait for it.
    this.app.get('/get-checkpoint', (req, reply) => this.getCheckpoint(req, reply).then(() => reply));
    this.app.post('/submit-checkpoint', (req, reply) => this.submitCheckpoint(req, reply).then(() => reply));
  }

  /** Fault injection (tests): the next `count` submissions get `status` (after their body is read). */
  failNextSubmissions(count: number, status = 500): void {
    this.failNext = { count, status };
  }

  /** Fault injection (tests): serve a copy of the model with one value changed (its hash differs). */
  tamperDistribution(on: boolean): void {
    this.tamper = on;
  }

  private emit(e: ValidatorEvent): void {
    try {
      this.o.onEvent?.(e);
    } catch {
      /* a narrator's problem is not the validator's */
    }
  }

  private get group(): number {
    return this.o.model.groupId;
  }

  /** Listen, connect, serve the axon, publish the initial global model (version `initialVersion`). */
  async start(initialVersion: number): Promise<void> {
    await this.app.listen({ host: this.o.host ?? '127.0.0.1', port: 0 });
    const addr = this.app.server.address() as AddressInfo;
    this.port = addr.port;
    this.url = `http://${addr.address}:${addr.port}`;
    this.chain = await ChainClient.connect({
      url: this.o.chainUrl,
      netuid: this.o.netuid ?? 102,
      wallet: this.o.wallet,
      logger: this.log.child({ component: 'chain' }),
      blockTimeMs: this.o.blockTimeMs,
      callTimeoutMs: 10_000,
      reconnectDelayMs: 200,
      maxReconnectDelayMs: 2_000,
    });
    this.uid = await this.chain.uid();
    await this.chain.serveAxon({ ip: addr.address, port: addr.port });
    await this.publish(initialVersion, this.o.model.groupExperts);
    this.chain.onHead((h) => this.onHead(h.number));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.app.close().catch(() => undefined);
    await this.queue.catch(() => undefined);
    await this.chain?.close().catch(() => undefined);
  }

  private async publish(version: number, experts: StateDict): Promise<GlobalModel> {
    const hash = await modelHashHex(experts);
    const entry = await writeCheckpoint(
      join(this.o.dir, 'checkpoints'),
      globalCheckpointName(version),
      [{ file: expertFileName(this.group), stateDict: experts }],
      { expert_group: this.group, model_hash: hash },
    );
    this.current = { version, hash, experts, path: join(entry.path, expertFileName(this.group)) };
    this.versions.push(version);
    this.tamperedFile = null;
    return this.current;
  }

  // ---- phases ------------------------------------------------------------------------------

  private onHead(block: number): void {
    if (this.stopped || block < (this.o.activeFrom ?? 0)) return;
    const p = phaseAt(this.o.schedule, block);
    const key = `${p.cycle_index}:${p.phase_name}`;
    if (this.done.has(key)) return;
    this.done.add(key);
    const run = this.phaseAction(p.phase_name, p.cycle_index, block);
    if (run === null) return;
    this.queue = this.queue.then(run).catch((e: unknown) => {
      this.log.error({ phase: p.phase_name, cycle: p.cycle_index, err: (e as Error).message }, 'validator phase action failed');
      this.emit({ type: 'error', validator: this.name, what: `${p.phase_name} of cycle ${p.cycle_index}`, err: (e as Error).message });
    });
  }

  private phaseAction(phase: PhaseName, cycle: number, block: number): (() => Promise<void>) | null {
    switch (phase) {
      case 'MinerCommit1':
        return () =>
          this.commit(phase, cycle, (b) =>
            encodeValidatorCommit({ m: null, h: this.current?.hash ?? null, v: phaseRange(this.o.schedule, cycle, 'MinerCommit1').start, e: this.group, s: randomInt(0, 65536), b }),
          );
      case 'Submission':
        return async () => {
          await this.view(cycle, block);
        };
      case 'Validate':
        return () => this.evaluate(cycle);
      case 'Merge':
        return () => this.merge(cycle);
      case 'ValidatorCommit1':
        return () => this.commit(phase, cycle, () => encodeMinerCommit1(signModelHash(this.o.wallet.sr25519Pair(), this.current!.hash)));
      case 'ValidatorCommit2':
        return () => this.commit(phase, cycle, (b) => encodeValidatorCommit({ m: null, h: this.current!.hash, v: this.current!.version, e: this.group, s: 0, b }));
      default:
        return null;
    }
  }

  /** Commit inside `phase` of `cycle`, retrying while the phase lasts. */
  private async commit(phase: PhaseName, cycle: number, build: (block: number) => string): Promise<void> {
    const chain = this.chain!;
    const { end } = phaseRange(this.o.schedule, cycle, phase);
    for (let attempt = 1; !this.stopped; attempt++) {
      const head = await chain.currentBlock();
      if (head > end) {
        this.log.warn({ phase, cycle, head, end }, 'validator commit window missed');
        return;
      }
      const payload = build(head);
      try {
        const inc = await chain.setCommitment(payload, { timeoutMs: Math.max(3_000, (end + 2 - head) * this.o.blockTimeMs) });
        this.commits.push({ phase, block: inc.blockNumber, payload });
        this.emit({ type: 'commit', validator: this.name, phase, block: inc.blockNumber, payload });
        return;
      } catch (e) {
        this.log.warn({ phase, cycle, attempt, err: (e as Error).message }, 'validator commit failed; retrying');
        await new Promise((r) => setTimeout(r, this.o.blockTimeMs));
      }
    }
  }

  /** The assignment and the miners' chain checkpoints of `cycle` (read once, on first use). */
  private view(cycle: number, head?: number): Promise<CycleView> {
    let v = this.views.get(cycle);
    if (!v) {
      v = (async () => {
        const chain = this.chain!;
        const at = head ?? (await chain.currentBlock());
        const a = await readAssignment(chain, this.group, this.o.maxMinersPerValidator ?? 10, {
          schedule: this.o.schedule,
          head: at,
          whitelist: this.o.validatorHotkeys(),
          freshnessBlocks: this.o.freshnessBlocks ?? 448,
          versionRangeCycles: 3,
          logger: this.log,
        });
        const assigned = a.assignment.get(this.hotkey) ?? [];
        this.log.info({ cycle, block: at, assigned, seeds: a.validatorSeeds }, 'validator assignment');
        return { assigned, checkpoints: new Map(a.minerCheckpoints.map((c) => [c.hotkey, c])) };
      })();
      v.catch(() => this.views.delete(cycle));
      this.views.set(cycle, v);
    }
    return v;
  }

  private async evaluate(cycle: number): Promise<void> {
    const cur = this.current!;
    const subs = this.accepted.filter((a) => a.cycle === cycle);
    const baseline = await this.o.evaluator.evaluate(cur.experts);
    const sets: Array<{ miner: string; experts: StateDict }> = [];
    const results: Array<{ miner: string; loss: number }> = [];
    for (const s of subs) {
      const experts = await readPt(s.path);
      s.loss = await this.o.evaluator.evaluate(experts);
      results.push({ miner: s.miner, loss: s.loss });
      sets.push({ miner: s.miner, experts });
    }
    this.o.board.post(cycle, this.hotkey, sets);
    this.evaluations.push({ cycle, version: cur.version, baseline, results });
    this.emit({ type: 'evaluated', validator: this.name, cycle, version: cur.version, baseline, results });
  }

  private async merge(cycle: number): Promise<void> {
    const mergeLen = this.o.schedule.phases.find((p) => p.name === 'Merge')!.length;
    const all = await this.o.board.collect(cycle, mergeLen * this.o.blockTimeMs * 0.6);
    if (all.length > 0) {
      const version = phaseRange(this.o.schedule, cycle, 'MinerCommit1').start;
      const merged = averageExperts(
        all.map((x) => x.experts),
        this.current!.experts,
      );
      const m = await this.publish(version, merged);
      this.emit({ type: 'merged', validator: this.name, cycle, version, hash: m.hash, miners: all.map((x) => x.miner) });
    }
    // Weights: accepted miners by held-out loss (lower is better); keeps last_update fresh.
    const mine = this.accepted.filter((a) => a.cycle === cycle && a.loss !== null && Number.isFinite(a.loss));
    const mg = await this.chain!.metagraph();
    const uids: number[] = [];
    const weights: number[] = [];
    for (const a of mine) {
      const n = mg.neurons.find((x) => x.hotkey === a.miner);
      if (n && !uids.includes(n.uid)) {
        uids.push(n.uid);
        weights.push(Math.max(1, Math.round(65535 / (1 + a.loss!))));
      }
    }
    if (uids.length === 0 && this.uid !== null) {
      uids.push(this.uid);
      weights.push(65535);
    }
    await this.chain!.setWeights(uids, weights, 0, { timeoutMs: Math.max(3_000, mergeLen * this.o.blockTimeMs) }).catch((e: unknown) => {
      this.log.warn({ err: (e as Error).message }, 'set_weights failed');
    });
  }

  // ---- HTTP: distribution -------------------------------------------------------------------

  private async readSmallBody(req: FastifyRequest, limit = 16 * 1024): Promise<string> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req.raw.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > limit) throw new HttpError(413, 'request body too large');
      chunks.push(c);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private async tamperedCopy(): Promise<string> {
    if (this.tamperedFile !== null) return this.tamperedFile;
    const cur = this.current!;
    const sd: StateDict = new Map(cur.experts);
    const [key, t] = [...sd.entries()][0]!;
    const data = t.data.slice();
    data[0] = data[0]! ^ 0x01;
    sd.set(key, { ...t, data });
    const dir = join(this.o.dir, 'tampered');
    await mkdir(dir, { recursive: true });
    const file = join(dir, expertFileName(this.group));
    await writePt(file, sd);
    this.tamperedFile = file;
    return file;
  }

  private async getCheckpoint(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    try {
      const body = new URLSearchParams(await this.readSmallBody(req));
      const target = body.get('target_hotkey_ss58') ?? '';
      const origin = body.get('origin_hotkey_ss58') ?? '';
      const originBlock = Number(body.get('origin_block'));
      const signature = body.get('signature') ?? '';
      if (target !== this.hotkey) throw new HttpError(403, 'Submission target hotkey does not match this validator');
      let signed = false;
      try {
        signed = Number.isSafeInteger(originBlock) && originBlock >= 0 && verifyMessage(origin, blockMessage(this.hotkey, originBlock), signature);
      } catch {
        signed = false;
      }
      // The reference computes this and ignores it (§13.2 #3); the devnet holds miners to it.
      if (!signed) throw new HttpError(401, 'Invalid signature for the download request');
      const cur = this.current;
      if (cur === null) throw new HttpError(503, 'No checkpoint available on disk yet — try again later');
      const g = body.get('expert_group_id');
      const wanted = g === null || g === '' ? 'model.pt' : g === 'shared' ? 'model_shared.pt' : expertFileName(Number(g));
      if (wanted !== expertFileName(this.group)) throw new HttpError(404, `Checkpoint not found: ${wanted}`);
      const file = this.tamper ? await this.tamperedCopy() : cur.path;
      const size = (await stat(file)).size;
      let start = 0;
      const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
      reply.headers({
        'content-type': 'application/octet-stream',
        'content-disposition': `attachment; filename="step${cur.version}"`,
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        'accept-ranges': 'bytes',
      });
      if (range) {
        start = Number(range[1]);
        if (start >= size) {
          reply.code(416).header('content-range', `bytes */${size}`).send();
          return;
        }
        reply.code(206).header('content-range', `bytes ${start}-${size - 1}/${size}`);
      }
      reply.header('content-length', String(size - start));
      this.emit({ type: 'distributed', validator: this.name, miner: origin, version: cur.version, bytes: size - start, tampered: this.tamper });
      reply.send(createReadStream(file, { start }));
    } catch (e) {
      this.replyError(reply, e);
    }
  }

  private replyError(reply: FastifyReply, e: unknown): void {
    const status = e instanceof HttpError ? e.status : e instanceof MultipartError ? 400 : 500;
    if (status === 500) this.log.error({ err: (e as Error).message }, 'validator request failed');
    if (!reply.sent) reply.code(status).send({ detail: (e as Error).message });
  }

  // ---- HTTP: submission --------------------------------------------------------------------

  private async submitCheckpoint(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const chain = this.chain!;
    const head = chain.lastHead()?.number ?? (await chain.currentBlock());
    const cycle = Math.floor(head / this.o.schedule.cycleLength);
    const fields: Record<string, string> = {};
    let out: WriteStream | null = null;
    let tmp: string | null = null;
    let bytes = 0;
    const sha = createHash('sha256');
    const reject = (status: number, detail: string, miner = fields.origin_hotkey_ss58 ?? ''): void => {
      this.emit({ type: 'submission', validator: this.name, miner, accepted: false, status, detail, cycle });
      this.log.warn({ miner, status, detail }, 'submission rejected');
      throw new HttpError(status, detail);
    };
    try {
      if (this.failNext.count > 0) {
        this.failNext.count -= 1;
        for await (const _ of req.raw) void _;
        reject(this.failNext.status, 'injected failure (devnet fault)');
      }
      const boundary = multipartBoundary(req.headers['content-type']);
      if (boundary === null) reject(400, 'expected multipart/form-data with a boundary');
      const parser = new MultipartParser(boundary!);
      let part: { name: string; filename: string | null } | null = null;
      let value: Buffer[] = [];
      let stored: { path: string; block: number; cp: ChainCheckpoint; originBlock: number } | null = null;
      let filename = '';
      // Not a plain for-await: leaving that loop early would destroy the socket before the answer.
      for await (const chunk of req.raw.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        for (const ev of parser.push(chunk)) {
          if (ev.type === 'part') {
            part = { name: ev.name, filename: ev.filename };
            value = [];
            if (ev.name === 'file') {
              filename = ev.filename ?? '';
              stored = await this.admit(fields, head, filename, reject);
              tmp = join(this.o.dir, 'miner_submission', `.tmp_hotkey_${stored.cp.hotkey}_block_${stored.block}.pt`);
              await mkdir(join(this.o.dir, 'miner_submission'), { recursive: true });
              out = createWriteStream(tmp);
            }
          } else if (ev.type === 'data') {
            if (part?.name === 'file' && out !== null) {
              bytes += ev.data.length;
              if (bytes > (this.o.maxSubmissionBytes ?? 8 * 2 ** 30)) reject(413, `Submission too large: limit ${this.o.maxSubmissionBytes ?? 8 * 2 ** 30} bytes`);
              sha.update(ev.data);
              if (!out.write(ev.data)) await new Promise<void>((r) => out!.once('drain', () => r()));
            } else {
              value.push(ev.data);
              if (value.reduce((n, b) => n + b.length, 0) > 64 * 1024) reject(400, `field ${part?.name} is too long`);
            }
          } else if (ev.type === 'end-part') {
            if (part !== null && part.name !== 'file') fields[part.name] = Buffer.concat(value).toString('utf8');
            part = null;
          }
        }
      }
      parser.end();
      if (stored === null || out === null || tmp === null) reject(400, 'no file part in the submission');
      await new Promise<void>((resolve, rej) => out!.end((e?: Error | null) => (e ? rej(e) : resolve())));
      const final = join(this.o.dir, 'miner_submission', `hotkey_${stored!.cp.hotkey}_block_${stored!.block}.pt`);
      await rename(tmp!, final);
      tmp = null;
      const problem = await this.validateFile(final, stored!.cp, fields, stored!.originBlock);
      if (problem !== null) {
        await rm(final, { force: true });
        this.log.warn({ miner: stored!.cp.hotkey, reason: problem }, 'submitted checkpoint failed validation');
        reject(400, `Submitted checkpoint failed validation. (${problem})`);
      }
      const hash = stored!.cp.modelHash!;
      this.accepted.push({ cycle, miner: stored!.cp.hotkey, block: stored!.block, originBlock: stored!.originBlock, path: final, hash, bytes, loss: null });
      this.emit({ type: 'submission', validator: this.name, miner: stored!.cp.hotkey, accepted: true, status: 200, detail: 'ok', cycle, block: stored!.block, hash });
      this.log.info({ miner: stored!.cp.hotkey, block: stored!.block, bytes, hash }, 'submission accepted');
      reply.code(200).send({ status: 'ok', stored_path: final, bytes, sha256: sha.digest('hex') });
    } catch (e) {
      const o = out as WriteStream | null;
      if (o !== null) o.destroy();
      if (tmp !== null) await rm(tmp, { force: true }).catch(() => undefined);
      // The client may still be sending: answer, then drop the rest of the body.
      this.replyError(reply, e);
      req.raw.resume();
    }
  }

  /** Checks 2–11 of §5.2, before a byte of the file is stored. */
  private async admit(
    fields: Record<string, string>,
    head: number,
    filename: string,
    reject: (status: number, detail: string, miner?: string) => void,
  ): Promise<{ block: number; cp: ChainCheckpoint; originBlock: number; path: string }> {
    const s = this.o.schedule;
    const target = fields.target_hotkey_ss58 ?? '';
    const miner = fields.origin_hotkey_ss58 ?? '';
    if (target !== this.hotkey) reject(403, `Submission target hotkey does not match this validator (expected=${this.hotkey}, received=${target})`);
    const p = phaseAt(s, head);
    const range = `${p.phase_start_block}-${p.phase_end_block}`;
    if (p.phase_name !== 'Submission') reject(409, `Submissions are only accepted during submission phase (current_phase=${p.phase_name}, block=${head}, phase_range=${range})`);
    const originBlock = Number(fields.origin_block);
    if (!Number.isSafeInteger(originBlock) || originBlock < p.phase_start_block || originBlock > p.phase_end_block) {
      reject(400, `Origin block is not within the submission phase (origin_block=${fields.origin_block}, phase_range=${range})`);
    }
    const view = await this.view(p.cycle_index, head);
    if (!view.assigned.includes(miner)) reject(403, `Miner is not assigned to this validator (miner=${miner}, assigned=[${view.assigned.join(', ')}])`);
    if (this.accepted.some((a) => a.miner === miner && a.block >= p.phase_start_block && a.block <= p.phase_end_block)) {
      reject(409, `Miner already submitted during this phase (miner=${miner}, phase_range=${range})`);
    }
    for (const f of SUBMIT_FIELDS) if (!fields[f]) reject(400, `missing field ${f}`);
    const cp = view.checkpoints.get(miner);
    if (cp === undefined) reject(400, 'No checkpoint found on chain for this miner');
    const name = basename(filename);
    if (!SAFE_FILENAME.test(name)) reject(400, 'Unsafe filename');
    const ext = extname(name).toLowerCase();
    if (!EXTENSIONS.has(ext)) reject(400, `Unsupported file extension: ${ext}`);
    return { block: head, cp: cp!, originBlock, path: name };
  }

  /** Check 13 (and the two the reference skips). Returns why it fails, or null. */
  private async validateFile(file: string, cp: ChainCheckpoint, fields: Record<string, string>, originBlock: number): Promise<string | null> {
    if (cp.modelHash === null || cp.signedModelHash === null) return 'incomplete chain checkpoint';
    // The same signature, hash and expert-group checks a miner applies to a downloaded baseline.
    const verdict = await verifyBaseline(file, { hotkey: cp.hotkey, modelHash: cp.modelHash, signedModelHash: cp.signedModelHash }, this.o.model.assignment);
    if (!verdict.ok) return verdict.reason;
    let pkg = false;
    try {
      const msg = new Uint8Array(Buffer.concat([fromHex(fields.model_hex!), fromHex(fields.block_hex!)]));
      pkg = verifyMessage(fields.origin_hotkey_ss58!, msg, fields.signature!);
    } catch {
      pkg = false;
    }
    if (!pkg) return 'the package signature does not verify';
    if (fields.model_hex !== cp.modelHash) return `model_hex ${fields.model_hex} is not the committed hash`;
    if (fields.block_hex !== toHex(blockMessage(this.hotkey, originBlock))) return 'block_hex does not encode this validator and origin_block';
    return null;
  }
}
