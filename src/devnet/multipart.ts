// A streaming multipart/form-data parser for the devnet validator's `/submit-checkpoint` (what
// Starlette does for the reference validator). Bytes go in as they arrive; parts come out as events,
// file data in chunks, so a multi-GiB upload never sits in memory. Headers and text fields are
// bounded; anything malformed is an error (the handler answers 400).

export type MultipartEvent =
  | { type: 'part'; name: string; filename: string | null; headers: Record<string, string> }
  | { type: 'data'; data: Buffer }
  | { type: 'end-part' }
  | { type: 'end' };

export class MultipartError extends Error {
  override readonly name = 'MultipartError';
}

const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;

/** The boundary of a `multipart/form-data; boundary=...` content type, or null. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/form-data\s*;/i.test(contentType)) return null;
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2] ?? null) : null;
}

/** `form-data; name="x"; filename="y"` → { name, filename }. */
function disposition(value: string): { name: string; filename: string | null } {
  if (!/^form-data\s*(;|$)/i.test(value)) throw new MultipartError(`unsupported Content-Disposition ${JSON.stringify(value.slice(0, 100))}`);
  const param = (key: string): string | null => {
    const m = new RegExp(`;\\s*${key}="([^"]*)"`, 'i').exec(value) ?? new RegExp(`;\\s*${key}=([^;\\s]*)`, 'i').exec(value);
    return m ? m[1]! : null;
  };
  const name = param('name');
  if (name === null) throw new MultipartError('a part has no name');
  return { name, filename: param('filename') };
}

type State = 'preamble' | 'after-boundary' | 'headers' | 'body' | 'done';

export class MultipartParser {
  private buf: Buffer = Buffer.alloc(0);
  private state: State = 'preamble';
  private readonly delimiter: Buffer;
  private readonly first: Buffer;

  constructor(boundary: string) {
    this.first = Buffer.from(`--${boundary}`);
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
  }

  get finished(): boolean {
    return this.state === 'done';
  }

  /** Feed bytes; returns the events they complete. */
  push(chunk: Buffer): MultipartEvent[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: MultipartEvent[] = [];
    for (;;) {
      if (this.state === 'preamble') {
        const i = this.buf.indexOf(this.first);
        if (i < 0) {
          if (this.buf.length > MAX_HEADER_BYTES) throw new MultipartError('no multipart boundary at the start of the body');
          return out;
        }
        this.buf = this.buf.subarray(i + this.first.length);
        this.state = 'after-boundary';
      } else if (this.state === 'after-boundary') {
        if (this.buf.length < 2) return out;
        const two = this.buf.subarray(0, 2).toString('latin1');
        if (two === '--') {
          this.state = 'done';
          this.buf = Buffer.alloc(0);
          out.push({ type: 'end' });
          return out;
        }
        if (two !== '\r\n') throw new MultipartError('malformed boundary line');
        this.buf = this.buf.subarray(2);
        this.state = 'headers';
      } else if (this.state === 'headers') {
        const i = this.buf.indexOf(HEADER_END);
        if (i < 0) {
          if (this.buf.length > MAX_HEADER_BYTES) throw new MultipartError('part headers too long');
          return out;
        }
        const headers: Record<string, string> = {};
        for (const line of this.buf.subarray(0, i).toString('utf8').split('\r\n')) {
          const c = line.indexOf(':');
          if (c <= 0) throw new MultipartError(`malformed part header ${JSON.stringify(line.slice(0, 100))}`);
          headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
        }
        const cd = headers['content-disposition'];
        if (cd === undefined) throw new MultipartError('a part has no Content-Disposition');
        const { name, filename } = disposition(cd);
        out.push({ type: 'part', name, filename, headers });
        this.buf = this.buf.subarray(i + HEADER_END.length);
        this.state = 'body';
      } else if (this.state === 'body') {
        const i = this.buf.indexOf(this.delimiter);
        if (i < 0) {
          // Keep what could be the start of a delimiter split across chunks.
          const keep = this.delimiter.length - 1;
          if (this.buf.length > keep) {
            out.push({ type: 'data', data: this.buf.subarray(0, this.buf.length - keep) });
            this.buf = this.buf.subarray(this.buf.length - keep);
          }
          return out;
        }
        if (i > 0) out.push({ type: 'data', data: this.buf.subarray(0, i) });
        out.push({ type: 'end-part' });
        this.buf = this.buf.subarray(i + this.delimiter.length);
        this.state = 'after-boundary';
      } else {
        // Epilogue after the closing boundary: ignored.
        this.buf = Buffer.alloc(0);
        return out;
      }
    }
  }

  /** Call at the end of the body: throws if the closing boundary never came. */
  end(): void {
    if (this.state !== 'done') throw new MultipartError('the body ended before the closing multipart boundary');
  }
}
