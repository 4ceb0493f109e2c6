// Shared by the checkpoint tests: the torch reference (real PyTorch through /usr/bin/python3), temp
// directories, and a deterministic PRNG.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tensor } from '../../src/checkpoint/tensor.js';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'torch_ref.py');

export interface TorchTensorDesc {
  dtype: string;
  shape: number[];
  sha256: string;
  nbytes: number;
}
export interface TorchFileDesc {
  layout: 'model_state_dict' | 'bare';
  ordered: boolean;
  keys: string[];
  tensors: Record<string, TorchTensorDesc>;
  /** get_model_hash of the state dict, computed by Python on the tensors torch loaded. */
  model_hash: string;
  canonical?: boolean;
  error?: string;
}

export function torchRef(...args: string[]): Record<string, TorchFileDesc> {
  const out = execFileSync(PYTHON, [SCRIPT, ...args], { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out) as Record<string, TorchFileDesc>;
}

export function describe(t: Tensor): TorchTensorDesc {
  return { dtype: t.dtype, shape: t.shape, sha256: createHash('sha256').update(t.data).digest('hex'), nbytes: t.data.byteLength };
}

export function tempDir(label: string): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), `cnm-${label}-`));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** mulberry32: small, seeded, reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** A stored zip laid out like torch's, with arbitrary record contents (for hostile archives). */
export async function buildArchive(records: ReadonlyArray<{ name: string; data: Uint8Array }>): Promise<Buffer> {
  const { localHeader, dataDescriptor, centralDirectory, crc32 } = await import('../../src/checkpoint/zip.js');
  const parts: Buffer[] = [];
  const written: Array<{ name: string; headerOffset: number; size: number; crc32: number }> = [];
  let cursor = 0;
  for (const r of records) {
    const h = localHeader(r.name, cursor, r.data.byteLength);
    const crc = crc32(r.data) >>> 0;
    written.push({ name: r.name, headerOffset: cursor, size: r.data.byteLength, crc32: crc });
    const d = r.data.byteLength ? dataDescriptor(crc, r.data.byteLength) : Buffer.alloc(0);
    parts.push(h, Buffer.from(r.data), d);
    cursor += h.length + r.data.byteLength + d.length;
  }
  parts.push(centralDirectory(written, cursor));
  return Buffer.concat(parts);
}

/** Minimal pickle assembler: strings are emitted as BINUNICODE, numbers as BININT. */
export function pk(...parts: Array<number[] | string | { int: number } | { g: string }>): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (Array.isArray(p)) out.push(...p);
    else if (typeof p === 'string') {
      const b = Buffer.from(p, 'utf8');
      const n = Buffer.alloc(4);
      n.writeUInt32LE(b.length);
      out.push(0x58, ...n, ...b);
    } else if ('int' in p) {
      const n = Buffer.alloc(4);
      n.writeInt32LE(p.int);
      out.push(0x4a, ...n);
    } else {
      const [m, name] = [p.g.slice(0, p.g.lastIndexOf('.')), p.g.slice(p.g.lastIndexOf('.') + 1)];
      out.push(0x63, ...Buffer.from(`${m}\n${name}\n`));
    }
  }
  return new Uint8Array(out);
}
