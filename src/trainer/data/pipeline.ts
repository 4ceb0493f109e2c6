// The data pipeline proper: weighted mixing of sources, deterministic sharding by rank/world size,
// tokenisation, truncation/padding to `sequence_length` and labels (PROTOCOL.md §9.7), micro-batches
// of `per_device_train_batch_size` rows. Pure of threads and IPC: `loader.ts` runs it in a worker,
// tests and the benchmark can run it inline.
//
// Semantics (reference: one document per sequence, no packing):
//   ids    = tokenizer(text) with its special tokens (BOS for DeepSeek), truncated to seq
//   tokens = ids padded with pad_id to seq
//   labels = tokens, with −100 wherever the token equals pad_id (the engine shifts labels itself)
// A row whose tokens leave no prediction target (fewer than 2 non-pad tokens) or that holds an id
// ≥ the model's vocab is skipped and counted, never sent to the engine.
import { createHash } from 'node:crypto';
import { TrainerError } from '../errors.js';
import { Rng, type RngState } from './rng.js';
import { openSource, type RowSource, type SkipReason, type SourcePosition, type SourceSpec } from './sources.js';
import { loadTokenizer, type TextTokenizer, type TokenizerSpec } from './tokenizer.js';

export const IGNORE_INDEX = -100;

export interface PipelineOptions {
  sources: SourceSpec[];
  tokenizer: TokenizerSpec;
  sequenceLength: number;
  /** Rows per micro-batch (per_device_train_batch_size). */
  batchSize: number;
  rank: number;
  worldSize: number;
  /** Seed of the mixing RNG. */
  seed: number;
  /** The model's vocab size: a token id ≥ it skips the row. */
  vocabSize: number;
}

export interface DataState {
  version: 1;
  /** Identity of the whole stream (sources, weights, seed, rank/world): the RNG is restored only on a match. */
  fingerprint: string;
  rng: RngState;
  sources: Array<{ id: string; position: SourcePosition }>;
  /** Micro-batches emitted so far (across restarts). */
  batches: number;
}

export interface Batch {
  tokens: Int32Array;
  labels: Int32Array;
  batch: number;
  seq: number;
  /** Positions that contribute to the loss (labels ≠ −100 after the one-token shift). */
  targets: number;
  /** Non-pad tokens in the batch. */
  realTokens: number;
  /** The pipeline state after this batch: saving it resumes with the next batch. */
  state: DataState;
}

export type SkipCounts = Record<Exclude<SkipReason, 'other_rank'>, number>;

export interface DataStats {
  rowsRead: number;
  rowsUsed: number;
  skipped: SkipCounts;
  perSource: Array<{ name: string; epoch: number; rowsUsed: number }>;
}

export type PipelineEvent =
  | { type: 'epoch'; source: string; epoch: number; rowsUsed: number }
  | { type: 'restore'; message: string };

export function emptySkipCounts(): SkipCounts {
  return { empty: 0, invalid_json: 0, missing_column: 0, not_text: 0, too_long: 0, too_short: 0, token_out_of_range: 0, invalid_utf8: 0 };
}

/** Identity of one source for resume purposes: what it reads, not its weight. */
export function sourceId(s: SourceSpec): string {
  switch (s.kind) {
    case 'synthetic-math':
      return `synthetic-math:${s.name}:${s.seed}:${s.problems ?? 4}`;
    case 'text':
      return `text:${s.name}:${s.path}`;
    case 'jsonl':
    case 'parquet':
      return `${s.kind}:${s.name}:${s.path}:${s.textColumn}`;
  }
}

export function streamFingerprint(o: Pick<PipelineOptions, 'sources' | 'seed' | 'rank' | 'worldSize'>): string {
  const desc = JSON.stringify({ s: o.sources.map((s) => [sourceId(s), s.weight]), seed: o.seed, rank: o.rank, world: o.worldSize });
  return createHash('sha256').update(desc).digest('hex').slice(0, 16);
}

export function validatePipelineOptions(o: PipelineOptions): void {
  const bad = (field: string, why: string): never => {
    throw new TrainerError('CNM_ERR_TRAINER_CONFIG', `config.yaml: ${field} ${why}`);
  };
  if (o.sources.length === 0) bad('data.sources', 'is empty: add at least one source (e.g. { kind: synthetic-math })');
  o.sources.forEach((s, i) => {
    if (!(s.weight > 0) || !Number.isFinite(s.weight)) bad(`data.sources[${i}].weight`, `must be a positive number, got ${s.weight}`);
  });
  const names = new Set(o.sources.map((s) => s.name));
  if (names.size !== o.sources.length) bad('data.sources[].name', 'must be unique');
  if (!Number.isInteger(o.sequenceLength) || o.sequenceLength < 2) bad('data.sequence_length', `must be an integer ≥ 2, got ${o.sequenceLength}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) bad('data.per_device_train_batch_size', `must be an integer ≥ 1, got ${o.batchSize}`);
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1) bad('data.world_size', `must be an integer ≥ 1, got ${o.worldSize}`);
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) bad('data.rank', `must be in [0, world_size), got ${o.rank} with world_size ${o.worldSize}`);
}

/** Truncates/pads one row's ids into `out` at `at`; returns null with the skip reason for a bad row. */
export function packRow(ids: readonly number[], seq: number, padId: number, vocabSize: number, tokens: Int32Array, labels: Int32Array, at: number): { targets: number; real: number } | SkipReason {
  const n = Math.min(ids.length, seq);
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < vocabSize)) return 'token_out_of_range';
  }
  let targets = 0;
  let real = 0;
  for (let i = 0; i < seq; i++) {
    const id = i < n ? ids[i]! : padId;
    tokens[at + i] = id;
    const isPad = id === padId;
    labels[at + i] = isPad ? IGNORE_INDEX : id;
    if (!isPad) {
      real++;
      if (i > 0) targets++;
    }
  }
  return targets === 0 ? 'too_short' : { targets, real };
}

/**
 * The first `seq` ids of `tokenizer.encode(text)` (and possibly more), without tokenising all of a
 * long document: only `seq` tokens survive truncation, and the pipeline must not spend the CPU the
 * engine needs (2 cores here) on text that is thrown away. The text is cut just before a
 * whitespace character that follows a non-whitespace one, so every pre-token (word) of the prefix
 * is whole and tokenises exactly as in the full text; the prefix must yield ≥ seq + 2 ids (so an
 * end-of-text special lands beyond the cut too), else it grows. `charsPerToken` sizes the first
 * prefix (the producer keeps a running estimate); `used` receives the characters tokenised.
 */
export function encodeForSequence(
  tokenizer: Pick<TextTokenizer, 'encode'>,
  text: string,
  seq: number,
  charsPerToken = 4,
  used?: { chars: number; ids: number },
): number[] {
  let limit = Math.ceil((seq + 16) * Math.max(1, charsPerToken) * 1.25) + 64;
  while (text.length > limit) {
    let cut = -1;
    for (let i = limit; i > limit / 2; i--) {
      if (isSpace(text.charCodeAt(i)) && !isSpace(text.charCodeAt(i - 1))) {
        cut = i;
        break;
      }
    }
    if (cut < 0) break; // one huge word: tokenise everything
    const ids = tokenizer.encode(text.slice(0, cut));
    if (used) {
      used.chars += cut;
      used.ids += ids.length;
    }
    if (ids.length >= seq + 2) return ids;
    limit *= 2;
  }
  const ids = tokenizer.encode(text);
  if (used) {
    used.chars += text.length;
    used.ids += ids.length;
  }
  return ids;
}

function isSpace(c: number): boolean {
  // ASCII only: every pre-tokenizer in use treats these as word boundaries.
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

export class BatchProducer {
  readonly tokenizer: TextTokenizer;
  private readonly sources: RowSource[];
  private readonly weights: number[];
  private readonly totalWeight: number;
  private rng: Rng;
  private batches = 0;
  private readonly fingerprint: string;
  private readonly ids: string[];
  /** Usable rows per source in the current epoch; null when the epoch began before this process (resume). */
  private usableThisEpoch: Array<number | null>;
  readonly stats: DataStats;
  private readonly events: PipelineEvent[] = [];
  /** Running estimate of characters per token, to size the prefix `encodeForSequence` reads. */
  private charsPerToken = 4;

  private constructor(readonly opts: PipelineOptions, tokenizer: TextTokenizer, sources: RowSource[]) {
    this.tokenizer = tokenizer;
    this.sources = sources;
    this.weights = opts.sources.map((s) => s.weight);
    this.totalWeight = this.weights.reduce((a, b) => a + b, 0);
    this.rng = Rng.fromSeed(opts.seed);
    this.fingerprint = streamFingerprint(opts);
    this.ids = opts.sources.map(sourceId);
    this.usableThisEpoch = sources.map(() => 0);
    this.stats = { rowsRead: 0, rowsUsed: 0, skipped: emptySkipCounts(), perSource: opts.sources.map((s) => ({ name: s.name, epoch: 0, rowsUsed: 0 })) };
  }

  /** Opens every source (errors name the missing file) and restores `state` when given. */
  static async open(opts: PipelineOptions, state?: DataState | null, tokenizer?: TextTokenizer): Promise<BatchProducer> {
    validatePipelineOptions(opts);
    const tok = tokenizer ?? loadTokenizer(opts.tokenizer);
    if (tok.padId >= opts.vocabSize || (tok.bosId !== null && tok.bosId >= opts.vocabSize)) {
      throw new TrainerError(
        'CNM_ERR_TOKENIZER',
        `the ${tok.source} tokenizer uses ids up to ${Math.max(tok.padId, tok.bosId ?? 0)} but the model's vocab_size is ${opts.vocabSize}; use the model's own tokenizer.json`,
      );
    }
    const sources: RowSource[] = [];
    try {
      for (const s of opts.sources) sources.push(openSource(s));
    } catch (e) {
      for (const s of sources) s.close();
      throw e;
    }
    const p = new BatchProducer(opts, tok, sources);
    if (state) await p.restore(state);
    return p;
  }

  private async restore(state: DataState): Promise<void> {
    if (state.version !== 1 || !Array.isArray(state.sources)) {
      this.events.push({ type: 'restore', message: 'saved data position has an unknown format; the data stream starts from the beginning' });
      return;
    }
    this.batches = Number.isInteger(state.batches) ? state.batches : 0;
    let restored = 0;
    for (let i = 0; i < this.sources.length; i++) {
      const saved = state.sources.find((s) => s.id === this.ids[i]);
      if (!saved) continue;
      try {
        await this.sources[i]!.seek(saved.position);
        this.usableThisEpoch[i] = saved.position.row === 0 ? 0 : null;
        this.stats.perSource[i]!.epoch = saved.position.epoch;
        restored++;
      } catch (e) {
        this.events.push({ type: 'restore', message: `${(e as Error).message}; that source starts from the beginning` });
      }
    }
    if (state.fingerprint === this.fingerprint) {
      this.rng = Rng.fromState(state.rng);
    } else {
      this.events.push({
        type: 'restore',
        message: `data sources, weights, seed or rank changed since the checkpoint: ${restored}/${this.sources.length} source positions restored, mixing restarts from the seed`,
      });
    }
  }

  state(): DataState {
    return {
      version: 1,
      fingerprint: this.fingerprint,
      rng: this.rng.state(),
      sources: this.sources.map((s, i) => ({ id: this.ids[i]!, position: s.position() })),
      batches: this.batches,
    };
  }

  /** Events since the last call (epochs, restore notes) for the caller to log. */
  drainEvents(): PipelineEvent[] {
    return this.events.splice(0, this.events.length);
  }

  private pickSource(): number {
    if (this.sources.length === 1) return 0;
    let r = this.rng.next() * this.totalWeight;
    for (let i = 0; i < this.weights.length; i++) {
      r -= this.weights[i]!;
      if (r < 0) return i;
    }
    return this.weights.length - 1;
  }

  private async nextText(i: number): Promise<string> {
    const src = this.sources[i]!;
    const { rank, worldSize } = this.opts;
    const mine = (index: number): boolean => index % worldSize === rank;
    for (;;) {
      const row = await src.next(mine);
      if (row === null) {
        const used = this.usableThisEpoch[i];
        if (used === 0) {
          const s = this.stats.skipped;
          const spec = this.opts.sources[i]!;
          throw new TrainerError(
            'CNM_ERR_DATA_SOURCE_EMPTY',
            `data source "${spec.name}" has no usable rows for rank ${rank} of ${worldSize} ` +
              `(skipped so far: ${Object.entries(s).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(', ') || 'none'}); ` +
              `check its path${'textColumn' in spec ? ` and text_column "${spec.textColumn}"` : ''} and data.rank/data.world_size`,
          );
        }
        src.nextEpoch();
        this.usableThisEpoch[i] = 0;
        const ps = this.stats.perSource[i]!;
        ps.epoch = src.position().epoch;
        this.events.push({ type: 'epoch', source: this.opts.sources[i]!.name, epoch: ps.epoch, rowsUsed: ps.rowsUsed });
        continue;
      }
      if ('skip' in row) {
        if (row.skip !== 'other_rank') {
          this.stats.rowsRead++;
          this.stats.skipped[row.skip]++;
        }
        continue;
      }
      this.stats.rowsRead++;
      return row.text;
    }
  }

  /** The next micro-batch. */
  async next(): Promise<Batch> {
    const { sequenceLength: seq, batchSize: B, vocabSize } = this.opts;
    const tokens = new Int32Array(B * seq);
    const labels = new Int32Array(B * seq);
    let targets = 0;
    let real = 0;
    for (let b = 0; b < B; b++) {
      const i = this.pickSource();
      for (;;) {
        const text = await this.nextText(i);
        const used = { chars: 0, ids: 0 };
        const ids = encodeForSequence(this.tokenizer, text, seq, this.charsPerToken, used);
        if (used.ids > 0) this.charsPerToken = 0.9 * this.charsPerToken + 0.1 * (used.chars / used.ids);
        const r = packRow(ids, seq, this.tokenizer.padId, vocabSize, tokens, labels, b * seq);
        if (typeof r === 'string') {
          this.stats.skipped[r as keyof SkipCounts]++;
          continue;
        }
        targets += r.targets;
        real += r.real;
        this.stats.rowsUsed++;
        this.stats.perSource[i]!.rowsUsed++;
        this.usableThisEpoch[i] = (this.usableThisEpoch[i] ?? 0) + 1;
        break;
      }
    }
    this.batches++;
    return { tokens, labels, batch: B, seq, targets, realTokens: real, state: this.state() };
  }

  close(): void {
    for (const s of this.sources) s.close();
  }
}
