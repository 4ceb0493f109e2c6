// .safetensors: files laid out by an independent Python writer (struct + json + torch bytes; the
// safetensors package itself is not installable here) read tensor by tensor, our files parse back in
// Python, and the reference crate's validation rules reject malformed headers and offsets.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/checkpoint/errors.js';
import { SafetensorsFile, readSafetensors, writeSafetensors } from '../../src/checkpoint/safetensors.js';
import { tensorFromValues } from '../../src/checkpoint/tensor.js';
import { describe as desc, PYTHON, tempDir, type TorchTensorDesc } from './helpers.js';

const tmp = tempDir('safetensors');
afterAll(() => tmp.cleanup());

const PY_DESCRIBE = `
import hashlib, json, struct, sys, torch
DT = {torch.float64: "float64", torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16",
      torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8", torch.uint8: "uint8", torch.bool: "bool"}
ST = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
      "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
def d(t):
    raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return {"dtype": DT[t.dtype], "shape": list(t.shape), "sha256": hashlib.sha256(raw).hexdigest(), "nbytes": len(raw)}
`;

describe('safetensors', () => {
  it('reads a file laid out by an independent Python writer', () => {
    const path = join(tmp.path, 'py.safetensors');
    const out = execFileSync(PYTHON, ['-c', `${PY_DESCRIBE}
g = torch.Generator().manual_seed(5)
tensors = {"embed.weight": torch.randn(7, 3, generator=g).bfloat16(), "norm": torch.randn(5, generator=g).half(),
           "ids": torch.arange(4), "scalar": torch.tensor(2.5), "mask": torch.tensor([True, False])}
header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
for k in sorted(tensors):
    b = tensors[k].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    code = [c for c, t in ST.items() if t == tensors[k].dtype][0]
    header[k] = {"dtype": code, "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]
print(json.dumps({k: d(v) for k, v in tensors.items()}))
`, path], { encoding: 'utf8' });
    const want = JSON.parse(out) as Record<string, TorchTensorDesc>;
    return (async () => {
      const f = await SafetensorsFile.open(path);
      try {
        expect(f.metadata).toEqual({ format: 'pt' });
        expect(f.keys().sort()).toEqual(Object.keys(want).sort());
        for (const k of f.keys()) expect(desc(await f.load(k)), k).toEqual(want[k]);
      } finally {
        await f.close();
      }
    })();
  });

  it('writes files Python parses back to the same tensors', async () => {
    const path = join(tmp.path, 'ours.safetensors');
    const sd = new Map([
      ['a', tensorFromValues('float32', [2, 2], [1, 2, 3, 4])],
      ['b', tensorFromValues('bfloat16', [3], [0.1, -2, 7])],
      ['c', tensorFromValues('int64', [], [42])],
      ['d', tensorFromValues('float16', [0, 5], [])],
    ]);
    await writeSafetensors(path, sd, { metadata: { producer: 'connito-miner' } });
    const out = execFileSync(PYTHON, ['-c', `${PY_DESCRIBE}
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
assert n % 8 == 0
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__")
res = {}
for k, v in header.items():
    a, b = v["data_offsets"]
    t = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]) or bytearray(1), dtype=torch.uint8)[: b - a]
    res[k] = d(t.view(ST[v["dtype"]]).reshape(v["shape"]))
print(json.dumps({"meta": meta, "tensors": res}))
`, path], { encoding: 'utf8' });
    const got = JSON.parse(out) as { meta: Record<string, string>; tensors: Record<string, TorchTensorDesc> };
    expect(got.meta).toEqual({ producer: 'connito-miner' });
    for (const [k, t] of sd) expect(got.tensors[k], k).toEqual(desc(t));
    const back = await readSafetensors(path);
    for (const [k, t] of sd) expect(desc(back.get(k)!)).toEqual(desc(t));
  });

  const file = (header: unknown, data: Uint8Array, opts: { n?: bigint; raw?: string } = {}) => {
    const h = Buffer.from(opts.raw ?? JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(opts.n ?? BigInt(h.length));
    const p = join(tmp.path, `bad-${Math.random().toString(36).slice(2)}.safetensors`);
    writeFileSync(p, Buffer.concat([len, h, data]));
    return p;
  };
  const f4 = (shape: number[], off: [number, number]) => ({ dtype: 'F32', shape, data_offsets: off });

  it.each([
    ['header length above 100 MB', () => file({}, new Uint8Array(0), { n: 100_000_001n }), /exceeds/],
    ['header length past the end', () => file({}, new Uint8Array(0), { n: 4096n }), /past the end/],
    ['header not starting with {', () => file(null, new Uint8Array(0), { raw: ' {}' }), /start with/],
    ['invalid JSON', () => file(null, new Uint8Array(0), { raw: '{"a":' }), /not valid JSON/],
    ['gap between tensors', () => file({ a: f4([1], [0, 4]), b: f4([1], [8, 12]) }, new Uint8Array(12)), /gap or overlap/],
    ['overlapping tensors', () => file({ a: f4([2], [0, 8]), b: f4([1], [4, 8]) }, new Uint8Array(8)), /gap or overlap/],
    ['trailing bytes after the last tensor', () => file({ a: f4([1], [0, 4]) }, new Uint8Array(8)), /cover 4 bytes/],
    ['dtype × shape ≠ byte span', () => file({ a: f4([3], [0, 8]) }, new Uint8Array(8)), /needs 12/],
    ['unsupported dtype', () => file({ a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /unsupported dtype/],
    ['non-string metadata', () => file({ __metadata__: { a: 1 } }, new Uint8Array(0)), /__metadata__/],
  ])('%s is rejected', async (_label, make, msg) => {
    const err = await SafetensorsFile.open(make()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).code).toBe('CNM_ERR_SAFETENSORS');
    expect((err as Error).message).toMatch(msg);
  });
});

describe('safetensors fuzz', () => {
  it('500 seeded mutations of a valid file end in success or a CheckpointError', async () => {
    const { prng } = await import('./helpers.js');
    const base = join(tmp.path, 'fuzz-base.safetensors');
    await writeSafetensors(base, new Map([
      ['a', tensorFromValues('float32', [2, 2], [1, 2, 3, 4])],
      ['b', tensorFromValues('bfloat16', [3], [0.1, -2, 7])],
    ]), { metadata: { k: 'v' } });
    const orig = (await import('node:fs')).readFileSync(base);
    const rand = prng(99);
    const p = join(tmp.path, 'fuzz.safetensors');
    for (let i = 0; i < 500; i++) {
      let buf = Buffer.from(orig);
      const hi = Math.min(buf.length, 8 + Number(buf.readBigUInt64LE(0)));
      if (i % 3 === 0) buf = buf.subarray(0, Math.floor(rand() * buf.length));
      else for (let j = 0; j < 1 + Math.floor(rand() * 4); j++) buf[Math.floor(rand() * hi)] = Math.floor(rand() * 256);
      writeFileSync(p, buf);
      try {
        await readSafetensors(p);
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw new Error(`mutation ${i} escaped as ${(e as Error).stack}`);
      }
    }
  });
});
