// Row sources of the data pipeline: local text files (one row per line), JSONL (one JSON object per
// line, text in `text_column`), Parquet (the `text_column` column) and the synthetic math corpus.
// A source walks its files in a fixed order and exposes a position (file, byte offset or row, raw
// row counter, epoch) that fits in a checkpoint and can be sought back to without re-reading what
// came before. Rows are counted *raw* (valid or not) so that sharding by rank/world size does not
// shift when a row turns out to be bad.
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { TrainerError } from '../errors.js';
import { mathDocument } from './synthetic-math.js';

export type SourceSpec =
  | { kind: 'text'; name: string; path: string; weight: number }
  | { kind: 'jsonl'; name: string; path: string; weight: number; textColumn: string }
  | { kind: 'parquet'; name: string; path: string; weight: number; textColumn: string }
  | { kind: 'synthetic-math'; name: string; weight: number; seed: number; problems?: number };

export interface SourcePosition {
  epoch: number;
  /** Index into the source's sorted file list (0 for synthetic sources). */
  file: number;
  /** File name relative to the source path, to detect a changed file list on resume. */
  fileName: string;
  /** Byte offset of the next line (text/jsonl), next row in the file (parquet), next document (synthetic). */
  offset: number;
  /** Raw rows read so far in this epoch (the sharding counter). */
  row: number;
}

export type SkipReason = 'other_rank' | 'empty' | 'invalid_json' | 'missing_column' | 'not_text' | 'too_long' | 'too_short' | 'token_out_of_range' | 'invalid_utf8';

/** A raw row: its text, or why it cannot be used. `index` is the raw row counter within the epoch. */
export type RawRow = { index: number; text: string } | { index: number; skip: SkipReason };

export interface RowSource {
  readonly spec: SourceSpec;
  position(): SourcePosition;
  /** Positions the source at `pos` (validated against the file list). */
  seek(pos: SourcePosition): Promise<void>;
  /** Next raw row, or null at the end of the current epoch. `wanted` = false skips parsing (another rank's row). */
  next(wanted: (index: number) => boolean): Promise<RawRow | null>;
  /** Starts the next epoch from the first file. */
  nextEpoch(): void;
  /** Number of files (0 for synthetic). */
  readonly fileCount: number;
  close(): void;
}

const EXTENSIONS: Record<'text' | 'jsonl' | 'parquet', string[]> = {
  text: ['.txt', '.text'],
  jsonl: ['.jsonl', '.ndjson', '.json'],
  parquet: ['.parquet'],
};

/** The files of a source: the path itself, or every matching file below a directory in sorted order. */
export function listSourceFiles(spec: SourceSpec & { path: string }): string[] {
  let st;
  try {
    st = statSync(spec.path);
  } catch {
    throw new TrainerError(
      'CNM_ERR_DATA_SOURCE_MISSING',
      `data source "${spec.name}": ${spec.path} does not exist; fix data.sources[].path in config.yaml or create the file`,
    );
  }
  if (st.isFile()) return [spec.path];
  if (!st.isDirectory()) {
    throw new TrainerError('CNM_ERR_DATA_SOURCE_MISSING', `data source "${spec.name}": ${spec.path} is neither a file nor a directory`);
  }
  const exts = EXTENSIONS[spec.kind as 'text' | 'jsonl' | 'parquet'];
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const ent of readdirSync(dir, { withFileTypes: true })) {
      if (ent.name.startsWith('.')) continue;
      const p = join(dir, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.isFile() && exts.some((e) => ent.name.endsWith(e))) out.push(p);
    }
  };
  walk(spec.path);
  out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (out.length === 0) {
    throw new TrainerError(
      'CNM_ERR_DATA_SOURCE_EMPTY',
      `data source "${spec.name}": no ${exts.join('/')} files under ${spec.path}; put data there or fix data.sources[].path`,
    );
  }
  return out;
}

// ---- line-oriented files (text, JSONL) -------------------------------------------------------

const CHUNK = 1 << 20;
/** Lines longer than this are skipped (counted as too_long) instead of buffering without bound. */
export const MAX_LINE_BYTES = 32 << 20;

/** Reads lines of a file from a byte offset with synchronous I/O (the pipeline runs in a worker). */
class LineReader {
  private fd: number;
  private buf = Buffer.alloc(0);
  private bufStart = 0; // file offset of buf[0]
  private eof = false;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(readonly path: string, offset: number) {
    this.fd = openSync(path, 'r');
    this.bufStart = offset;
  }

  /** Next line (without the newline) and the offset after it, or null at end of file. */
  next(): { line: Buffer | null; tooLong: boolean; end: number } | null {
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0) {
        const line = this.buf.subarray(0, nl);
        const end = this.bufStart + nl + 1;
        this.buf = this.buf.subarray(nl + 1);
        this.bufStart = end;
        return { line, tooLong: false, end };
      }
      if (this.eof) {
        if (this.buf.length === 0) return null;
        const line = this.buf;
        const end = this.bufStart + line.length;
        this.buf = Buffer.alloc(0);
        this.bufStart = end;
        return { line, tooLong: false, end };
      }
      if (this.buf.length > MAX_LINE_BYTES) {
        // Drop bytes up to the next newline without keeping them.
        return this.skipLongLine();
      }
      this.fill();
    }
  }

  private skipLongLine(): { line: null; tooLong: true; end: number } | null {
    let pos = this.bufStart + this.buf.length;
    this.buf = Buffer.alloc(0);
    const chunk = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = readSync(this.fd, chunk, 0, CHUNK, pos);
      if (n === 0) {
        this.eof = true;
        this.bufStart = pos;
        return { line: null, tooLong: true, end: pos };
      }
      const nl = chunk.subarray(0, n).indexOf(0x0a);
      if (nl >= 0) {
        this.bufStart = pos + nl + 1;
        this.buf = Buffer.from(chunk.subarray(nl + 1, n));
        return { line: null, tooLong: true, end: this.bufStart };
      }
      pos += n;
    }
  }

  private fill(): void {
    const chunk = Buffer.allocUnsafe(CHUNK);
    const n = readSync(this.fd, chunk, 0, CHUNK, this.bufStart + this.buf.length);
    if (n === 0) {
      this.eof = true;
      return;
    }
    this.buf = this.buf.length === 0 ? chunk.subarray(0, n) : Buffer.concat([this.buf, chunk.subarray(0, n)]);
  }

  decode(line: Buffer): string | null {
    try {
      let s = this.decoder.decode(line);
      if (s.endsWith('\r')) s = s.slice(0, -1);
      return s;
    } catch {
      return null;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** What the file-backed sources share: the sorted file list, the position, walking the files in order. */
abstract class FileSource<S extends Extract<SourceSpec, { path: string }>> implements RowSource {
  protected readonly files: string[];
  protected pos: SourcePosition;

  constructor(readonly spec: S) {
    this.files = listSourceFiles(spec);
    this.pos = { epoch: 0, file: 0, fileName: this.rel(0), offset: 0, row: 0 };
  }

  get fileCount(): number {
    return this.files.length;
  }

  protected rel(i: number): string {
    const f = this.files[i];
    return f === undefined ? '' : relative(this.spec.path, f) || f.split('/').pop()!;
  }

  /** Index of a saved position's file in the current file list, or -1. */
  protected fileIndex(fileName: string): number {
    return this.files.findIndex((_, i) => this.rel(i) === fileName);
  }

  position(): SourcePosition {
    return { ...this.pos };
  }

  nextEpoch(): void {
    this.release();
    this.pos = { epoch: this.pos.epoch + 1, file: 0, fileName: this.rel(0), offset: 0, row: 0 };
  }

  /** Moves the position to the start of the next file. */
  protected nextFile(): void {
    this.release();
    this.pos = { ...this.pos, file: this.pos.file + 1, fileName: this.rel(this.pos.file + 1), offset: 0 };
  }

  /** Drops what was read from the current file (the position moves elsewhere). */
  protected abstract release(): void;
  abstract seek(pos: SourcePosition): Promise<void>;
  abstract next(wanted: (index: number) => boolean): Promise<RawRow | null>;
  abstract close(): void;
}

class LineSource extends FileSource<Extract<SourceSpec, { kind: 'text' | 'jsonl' }>> {
  private reader: LineReader | null = null;

  async seek(p: SourcePosition): Promise<void> {
    this.release();
    const idx = this.fileIndex(p.fileName);
    if (idx < 0 || p.offset > statSync(this.files[idx]!).size) {
      throw new TrainerError('CNM_ERR_DATA_STATE', `data source "${this.spec.name}": saved position ${p.fileName}@${p.offset} no longer exists`);
    }
    this.pos = { ...p, file: idx };
  }

  async next(wanted: (index: number) => boolean): Promise<RawRow | null> {
    for (;;) {
      if (this.pos.file >= this.files.length) return null;
      if (this.reader === null) this.reader = new LineReader(this.files[this.pos.file]!, this.pos.offset);
      const r = this.reader.next();
      if (r === null) {
        this.nextFile();
        continue;
      }
      const index = this.pos.row;
      this.pos = { ...this.pos, offset: r.end, row: index + 1 };
      if (!wanted(index)) return { index, skip: 'other_rank' };
      if (r.tooLong || r.line === null) return { index, skip: 'too_long' };
      const line = this.reader.decode(r.line);
      if (line === null) return { index, skip: 'invalid_utf8' };
      return this.parse(index, line);
    }
  }

  private parse(index: number, line: string): RawRow {
    if (this.spec.kind === 'text') {
      return line.trim().length === 0 ? { index, skip: 'empty' } : { index, text: line };
    }
    if (line.trim().length === 0) return { index, skip: 'empty' };
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      return { index, skip: 'invalid_json' };
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return { index, skip: 'invalid_json' };
    if (!Object.hasOwn(obj, this.spec.textColumn)) return { index, skip: 'missing_column' };
    const v = (obj as Record<string, unknown>)[this.spec.textColumn];
    if (typeof v !== 'string') return { index, skip: 'not_text' };
    return v.trim().length === 0 ? { index, skip: 'empty' } : { index, text: v };
  }

  protected release(): void {
    this.reader?.close();
    this.reader = null;
  }

  close(): void {
    this.release();
  }
}

// ---- Parquet ---------------------------------------------------------------------------------

type Hyparquet = typeof import('hyparquet');
let hyparquetMod: Promise<{ hp: Hyparquet; compressors: import('hyparquet').Compressors }> | null = null;
function hyparquet(): Promise<{ hp: Hyparquet; compressors: import('hyparquet').Compressors }> {
  // Loaded lazily: most runs have no Parquet source.
  hyparquetMod ??= Promise.all([import('hyparquet'), import('hyparquet-compressors')]).then(([hp, c]) => ({ hp, compressors: c.compressors }));
  return hyparquetMod;
}

interface ParquetFile {
  file: import('hyparquet').AsyncBuffer;
  metadata: import('hyparquet').FileMetaData;
  /** Row-group boundaries: starts[i] … starts[i+1]. */
  starts: number[];
  numRows: number;
}

class ParquetSource extends FileSource<Extract<SourceSpec, { kind: 'parquet' }>> {
  private open: { index: number; pf: ParquetFile } | null = null;
  /** The decoded row group holding `pos.offset`. */
  private group: { start: number; values: unknown[] } | null = null;

  async seek(p: SourcePosition): Promise<void> {
    const idx = this.fileIndex(p.fileName);
    if (idx < 0) throw new TrainerError('CNM_ERR_DATA_STATE', `data source "${this.spec.name}": saved file ${p.fileName} no longer exists`);
    this.pos = { ...p, file: idx };
    this.release();
  }

  protected release(): void {
    // The open file stays cached: the next position may be in it again.
    this.group = null;
  }

  private async openFile(i: number): Promise<ParquetFile> {
    if (this.open?.index === i) return this.open.pf;
    const { hp } = await hyparquet();
    const path = this.files[i]!;
    let pf: ParquetFile;
    try {
      const file = await hp.asyncBufferFromFile(path);
      const metadata = await hp.parquetMetadataAsync(file);
      const starts = [0];
      for (const rg of metadata.row_groups) starts.push(starts[starts.length - 1]! + Number(rg.num_rows));
      pf = { file, metadata, starts, numRows: Number(metadata.num_rows) };
      const schema = hp.parquetSchema(metadata);
      const cols = schema.children.map((c) => c.element.name);
      if (!cols.includes(this.spec.textColumn)) {
        throw new TrainerError(
          'CNM_ERR_DATA_FORMAT',
          `data source "${this.spec.name}": ${path} has no column "${this.spec.textColumn}" (columns: ${cols.join(', ')}); set data.sources[].text_column`,
        );
      }
    } catch (e) {
      if (e instanceof TrainerError) throw e;
      throw new TrainerError('CNM_ERR_DATA_FORMAT', `data source "${this.spec.name}": ${path} is not a readable Parquet file (${(e as Error).message})`, { cause: e });
    }
    this.open = { index: i, pf };
    return pf;
  }

  private async loadGroup(pf: ParquetFile, row: number): Promise<void> {
    const { hp, compressors } = await hyparquet();
    let g = 0;
    while (pf.starts[g + 1]! <= row) g++;
    const start = pf.starts[g]!;
    const end = pf.starts[g + 1]!;
    let values: unknown[] = [];
    try {
      const rows = await hp.parquetReadObjects({ file: pf.file, metadata: pf.metadata, columns: [this.spec.textColumn], rowStart: start, rowEnd: end, compressors });
      values = rows.map((r) => r[this.spec.textColumn]);
    } catch (e) {
      throw new TrainerError('CNM_ERR_DATA_FORMAT', `data source "${this.spec.name}": cannot decode ${this.files[this.pos.file]} rows ${start}–${end} (${(e as Error).message})`, { cause: e });
    }
    this.group = { start, values };
  }

  async next(wanted: (index: number) => boolean): Promise<RawRow | null> {
    for (;;) {
      if (this.pos.file >= this.files.length) return null;
      const pf = await this.openFile(this.pos.file);
      if (this.pos.offset >= pf.numRows) {
        this.nextFile();
        continue;
      }
      const index = this.pos.row;
      const r = this.pos.offset;
      this.pos = { ...this.pos, offset: r + 1, row: index + 1 };
      if (!wanted(index)) return { index, skip: 'other_rank' };
      if (this.group === null || r < this.group.start || r >= this.group.start + this.group.values.length) await this.loadGroup(pf, r);
      const v = this.group!.values[r - this.group!.start];
      let text: string | null = null;
      if (typeof v === 'string') text = v;
      else if (v instanceof Uint8Array) {
        try {
          text = new TextDecoder('utf-8', { fatal: true }).decode(v);
        } catch {
          return { index, skip: 'invalid_utf8' };
        }
      }
      if (text === null) return { index, skip: 'not_text' };
      return text.trim().length === 0 ? { index, skip: 'empty' } : { index, text };
    }
  }

  close(): void {
    this.open = null;
    this.group = null;
  }
}

// ---- synthetic -------------------------------------------------------------------------------

class SyntheticMathSource implements RowSource {
  private pos: SourcePosition = { epoch: 0, file: 0, fileName: '', offset: 0, row: 0 };
  readonly fileCount = 0;

  constructor(readonly spec: Extract<SourceSpec, { kind: 'synthetic-math' }>) {}

  position(): SourcePosition {
    return { ...this.pos };
  }

  async seek(p: SourcePosition): Promise<void> {
    this.pos = { ...p, file: 0, fileName: '' };
  }

  nextEpoch(): void {
    // Infinite: there is no end of epoch.
  }

  async next(wanted: (index: number) => boolean): Promise<RawRow | null> {
    const index = this.pos.row;
    this.pos = { ...this.pos, offset: this.pos.offset + 1, row: index + 1 };
    if (!wanted(index)) return { index, skip: 'other_rank' };
    const opts = this.spec.problems === undefined ? {} : { problems: this.spec.problems };
    return { index, text: mathDocument(this.spec.seed, index, opts) };
  }

  close(): void {}
}

export function openSource(spec: SourceSpec): RowSource {
  switch (spec.kind) {
    case 'text':
    case 'jsonl':
      return new LineSource(spec);
    case 'parquet':
      return new ParquetSource(spec);
    case 'synthetic-math':
      return new SyntheticMathSource(spec);
  }
}
