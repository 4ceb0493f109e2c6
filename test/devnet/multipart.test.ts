// The devnet validator's streaming multipart parser reads exactly what the miner's request builder
// (src/protocol/requests.ts, byte-checked against the reference request in protocol tests) sends,
// however the bytes are split across chunks; malformed bodies are errors.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MultipartError, MultipartParser, multipartBoundary, type MultipartEvent } from '../../src/devnet/multipart.js';
import { buildSubmitMultipart, type SubmitFields } from '../../src/protocol/requests.js';

const fields: SubmitFields = {
  target_hotkey_ss58: '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY',
  origin_hotkey_ss58: '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty',
  origin_block: 7100150,
  signature: 'A'.repeat(86),
  model_hex: 'ab'.repeat(24),
  block_hex: 'cd'.repeat(40),
};

async function body(file: Buffer, boundary: string): Promise<{ bytes: Buffer; contentType: string }> {
  const mp = buildSubmitMultipart(fields, { name: 'model_expgroup_0.pt', size: file.length, open: async function* () { yield file; } }, boundary);
  const chunks: Uint8Array[] = [];
  for await (const c of mp.stream()) chunks.push(c);
  return { bytes: Buffer.concat(chunks), contentType: mp.contentType };
}

function parse(bytes: Buffer, boundary: string, split: (n: number) => number[]): { fields: Record<string, string>; file: Buffer; filename: string | null; done: boolean } {
  const p = new MultipartParser(boundary);
  const evs: MultipartEvent[] = [];
  let at = 0;
  for (const n of split(bytes.length)) {
    evs.push(...p.push(bytes.subarray(at, at + n)));
    at += n;
  }
  p.end();
  const out: Record<string, string> = {};
  let name = '';
  let filename: string | null = null;
  let acc: Buffer[] = [];
  let file = Buffer.alloc(0);
  for (const e of evs) {
    if (e.type === 'part') {
      name = e.name;
      acc = [];
      if (e.name === 'file') filename = e.filename;
    } else if (e.type === 'data') acc.push(e.data);
    else if (e.type === 'end-part') {
      if (name === 'file') file = Buffer.concat(acc);
      else out[name] = Buffer.concat(acc).toString('utf8');
    }
  }
  return { fields: out, file, filename, done: p.finished };
}

describe('multipart parser', () => {
  it('reads the submission body split at every chunk size, including a file that contains boundary-like bytes', async () => {
    const boundary = 'b0a1c2d3e4f5a6b7c8d9e0f1a2b3c4d5';
    const file = Buffer.concat([randomBytes(3000), Buffer.from(`\r\n--${boundary.slice(0, 20)}`), randomBytes(500), Buffer.from('\r\n--')]);
    const { bytes, contentType } = await body(file, boundary);
    expect(multipartBoundary(contentType)).toBe(boundary);
    for (const size of [1, 2, 3, 7, 36, 37, 38, 64, 1000, bytes.length]) {
      const r = parse(bytes, boundary, (n) => Array.from({ length: Math.ceil(n / size) }, (_, i) => Math.min(size, n - i * size)));
      expect(r.done).toBe(true);
      expect(r.fields).toEqual(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)])));
      expect(r.filename).toBe('model_expgroup_0.pt');
      expect(r.file.equals(file)).toBe(true);
    }
  });

  it('rejects truncated and malformed bodies', async () => {
    const boundary = 'xyz123';
    const { bytes } = await body(Buffer.from('payload'), boundary);
    expect(() => parse(bytes.subarray(0, bytes.length - 10), boundary, (n) => [n])).toThrow(MultipartError);
    const noDisposition = Buffer.from(`--${boundary}\r\nX-Other: 1\r\n\r\nv\r\n--${boundary}--\r\n`);
    expect(() => parse(noDisposition, boundary, (n) => [n])).toThrow(/Content-Disposition/);
    expect(multipartBoundary('application/json')).toBeNull();
    expect(multipartBoundary('multipart/form-data; boundary="q u"')).toBe('q u');
  });
});
