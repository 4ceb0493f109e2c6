// The submission and download requests reproduce the reference rendering byte for byte
// (test/fixtures/protocol/submit-request-example.txt), and a real signed submission verifies.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sr25519PairFromSeed } from '@polkadot/util-crypto';
import { describe, expect, it } from 'vitest';
import {
  SUBMIT_FIELD_ORDER,
  buildDownloadBody,
  buildDownloadFields,
  buildSubmitFields,
  buildSubmitMultipart,
  fromHex,
  quotePlus,
  signMessage,
  ss58Encode,
  submissionMessage,
  downloadMessage,
  verifyMessage,
} from '../../src/protocol/index.js';

const EXAMPLE = readFileSync(join(import.meta.dirname, '../fixtures/protocol/submit-request-example.txt'), 'utf8');

function section(name: string): string {
  const start = EXAMPLE.indexOf(`== ${name} ==\n`) + `== ${name} ==\n`.length;
  const end = EXAMPLE.indexOf('\n== ', start);
  return EXAMPLE.slice(start, end === -1 ? undefined : end + 1);
}

const FIELDS = {
  target_hotkey_ss58: '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty',
  origin_hotkey_ss58: '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY',
  origin_block: 2150493,
  signature: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-Pw',
  model_hex: '28e92acfd4508dbdacfd7beb934df27dc466d3f99b0ede38',
  block_hex: '8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48000000000020d05d',
};

async function collect(gen: AsyncGenerator<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe('POST /submit-checkpoint', () => {
  it('renders the multipart body and headers exactly as the reference (fixed boundary)', async () => {
    expect(EXAMPLE.split('\n')[0]).toBe(`submit form field order: ${JSON.stringify([...SUBMIT_FIELD_ORDER]).replace(/","/g, "', '").replace('["', "['").replace('"]', "']")}`);
    const placeholder = Buffer.from('<torch zip bytes>');
    const mp = buildSubmitMultipart(FIELDS, { name: 'model_expgroup_0.pt', size: placeholder.length, open: async function* () { yield placeholder; } }, 'BOUNDARYBOUNDARYBOUNDARY0123456789');
    const body = await collect(mp.stream());
    const wantBody = section('POST body').replace(/\n$/, '');
    expect(body.toString('utf8')).toBe(wantBody);
    expect(mp.contentLength).toBe(body.length);
    const headers = Object.entries(mp.headers).map(([k, v]) => `${k}: ${v}`).sort().join('\n');
    expect(headers).toBe(section('POST headers').trim().split('\n').sort().join('\n'));
    // a second attempt re-streams the same bytes
    expect((await collect(mp.stream())).equals(body)).toBe(true);
  });

  it('streams the file without buffering it and refuses a file whose size changed', async () => {
    const chunks = Array.from({ length: 64 }, (_, i) => new Uint8Array(1 << 16).fill(i));
    let pulled = 0;
    const mp = buildSubmitMultipart(FIELDS, { name: 'model_expgroup_0.pt', size: 64 << 16, open: async function* () { for (const c of chunks) { pulled++; yield c; } } });
    let maxChunk = 0;
    let total = 0;
    for await (const c of mp.stream()) {
      maxChunk = Math.max(maxChunk, c.byteLength);
      total += c.byteLength;
    }
    expect(pulled).toBe(64);
    expect(maxChunk).toBeLessThanOrEqual(1 << 16);
    expect(total).toBe(mp.contentLength);
    const short = buildSubmitMultipart(FIELDS, { name: 'x.pt', size: 10, open: async function* () { yield new Uint8Array(9); } });
    await expect(collect(short.stream())).rejects.toThrow(/produced 9 bytes, expected 10/);
    const long = buildSubmitMultipart(FIELDS, { name: 'x.pt', size: 10, open: async function* () { yield new Uint8Array(11); } });
    await expect(collect(long.stream())).rejects.toThrow(/grew/);
  });

  it('fills the fields from a real key: the signature verifies over raw hash ‖ block message', () => {
    const pair = sr25519PairFromSeed(new Uint8Array(32).fill(7));
    const origin = ss58Encode(pair.publicKey);
    const hash = fromHex(FIELDS.model_hex);
    const f = buildSubmitFields({ targetSs58: FIELDS.target_hotkey_ss58, originSs58: origin, block: 2150493, modelHash: hash, sign: (m) => signMessage(pair, m) });
    expect(f.model_hex).toBe(FIELDS.model_hex);
    expect(f.block_hex).toBe(FIELDS.block_hex);
    expect(f.signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(verifyMessage(origin, submissionMessage(hash, FIELDS.target_hotkey_ss58, 2150493), f.signature)).toBe(true);
    expect(verifyMessage(origin, submissionMessage(hash, FIELDS.target_hotkey_ss58, 2150494), f.signature)).toBe(false);
  });
});

describe('GET /get-checkpoint', () => {
  it('renders the urlencoded body and headers exactly as the reference', () => {
    const { body, headers } = buildDownloadBody({ ...FIELDS, expert_group_id: 0 });
    expect(body).toBe(section('GET body').trim());
    expect(Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\n')).toBe(section('GET headers').trim());
    expect(buildDownloadBody({ ...FIELDS, expert_group_id: null }).body).not.toContain('expert_group_id');
  });

  it('signs the block message of the validator', () => {
    const pair = sr25519PairFromSeed(new Uint8Array(32).fill(9));
    const origin = ss58Encode(pair.publicKey);
    const f = buildDownloadFields({ targetSs58: FIELDS.target_hotkey_ss58, originSs58: origin, block: 77, expertGroupId: 0, sign: (m) => signMessage(pair, m) });
    expect(verifyMessage(origin, downloadMessage(FIELDS.target_hotkey_ss58, 77), f.signature)).toBe(true);
  });

  it('quote_plus escapes like Python', () => {
    expect(quotePlus('a b+c/é~_.-')).toBe('a+b%2Bc%2F%C3%A9~_.-');
  });
});
