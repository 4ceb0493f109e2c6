// Hostile .pt inputs: code-executing pickles, forbidden opcodes, out-of-bounds views, absurd sizes,
// deep nesting, truncation, compression bombs — each must end in a typed CheckpointError, execute
// nothing and allocate nothing large. A seeded fuzz loop mutates valid files and requires the same.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError, type CheckpointErrorCode } from '../../src/checkpoint/errors.js';
import { readPt, writePt } from '../../src/checkpoint/pt.js';
import { tensorFromValues } from '../../src/checkpoint/tensor.js';
import { buildArchive, pk, prng, PYTHON, tempDir } from './helpers.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/pt/model_expgroup_0.torch-1.13.pt');
const tmp = tempDir('pt-hostile');
afterAll(() => tmp.cleanup());

const PROTO = [0x80, 2];
const MARK = [0x28];
const TUPLE = [0x74];
const EMPTY_DICT = [0x7d];
const EMPTY_TUPLE = [0x29];
const REDUCE = [0x52];
const SETITEM = [0x73];
const STOP = [0x2e];

let n = 0;
async function archive(pickle: Uint8Array, storages: Record<string, Uint8Array> = {}): Promise<string> {
  const path = join(tmp.path, `hostile-${n++}.pt`);
  const records = [{ name: 'archive/data.pkl', data: pickle }, ...Object.entries(storages).map(([k, d]) => ({ name: `archive/data/${k}`, data: d })), { name: 'archive/version', data: Buffer.from('3\n') }];
  writeFileSync(path, await buildArchive(records));
  return path;
}

async function expectError(path: string, code: CheckpointErrorCode, message?: RegExp, opts = {}): Promise<void> {
  let err: unknown = null;
  try {
    await readPt(path, opts);
  } catch (e) {
    err = e;
  }
  expect(err, `${path} was accepted`).toBeInstanceOf(CheckpointError);
  expect((err as CheckpointError).code, (err as Error).message).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
}

/** `{"model_state_dict": {"w": _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}}`. */
function tensorPickle(t: { cls?: string; key?: string; numel: number; offset: number; size: number[]; stride: number[] }): Uint8Array {
  const tup = (xs: number[]) => (xs.length === 0 ? EMPTY_TUPLE : [...MARK, ...pk(...xs.map((int) => ({ int }))), ...TUPLE]);
  return pk(
    PROTO, EMPTY_DICT, 'model_state_dict', EMPTY_DICT, 'w',
    { g: 'torch._utils._rebuild_tensor_v2' }, MARK,
    MARK, 'storage', { g: `torch.${t.cls ?? 'FloatStorage'}` }, t.key ?? '0', 'cpu', { int: t.numel }, TUPLE, [0x51],
    { int: t.offset }, tup(t.size), tup(t.stride), [0x89], { g: 'collections.OrderedDict' }, EMPTY_TUPLE, REDUCE,
    TUPLE, REDUCE, SETITEM, SETITEM, STOP,
  );
}

describe('pickles that would run code', () => {
  it('a real os.system payload (proven live under Python pickle) is refused and never runs', async () => {
    const marker = join(tmp.path, 'pwned-by-os-system');
    const payload = execFileSync(PYTHON, ['-c', `
import os, pickle, sys
class E:
    def __reduce__(self):
        return (os.system, ("touch ${marker}",))
sys.stdout.buffer.write(pickle.dumps({"model_state_dict": {"w": E()}}, protocol=2))`]);
    // The payload is live: Python's own unpickler runs it.
    execFileSync(PYTHON, ['-c', 'import pickle,sys; pickle.loads(sys.stdin.buffer.read())'], { input: payload });
    expect(existsSync(marker)).toBe(true);
    (await import('node:fs')).rmSync(marker);
    await expectError(await archive(payload), 'CNM_ERR_PICKLE_FORBIDDEN', /posix\.system/);
    expect(existsSync(marker)).toBe(false);
  });

  it.each([
    ['builtins.eval', pk(PROTO, { g: 'builtins.eval' }, "__import__('os').system('true')", [0x85], REDUCE, STOP)],
    ['subprocess.check_output', pk(PROTO, { g: 'subprocess.check_output' }, MARK, 'id', TUPLE, [0x85], REDUCE, STOP)],
    ['builtins.getattr', pk(PROTO, { g: 'builtins.getattr' }, STOP)],
    ['torch.load', pk(PROTO, { g: 'torch.load' }, STOP)],
  ])('global %s is refused by name', async (name, pickle) => {
    await expectError(await archive(pickle), 'CNM_ERR_PICKLE_FORBIDDEN', new RegExp(name.replace('.', '\\.')));
  });

  it('STACK_GLOBAL (protocol 4) is checked against the same allow-list', async () => {
    const p = pk([0x80, 4], [0x8c, 2], ...'os'.split('').map((c) => [c.charCodeAt(0)]), [0x8c, 6], ...'system'.split('').map((c) => [c.charCodeAt(0)]), [0x93], STOP);
    await expectError(await archive(p), 'CNM_ERR_PICKLE_FORBIDDEN', /os\.system/);
  });

  it('REDUCE on an allowed but non-callable global is refused', async () => {
    await expectError(await archive(pk(PROTO, { g: 'torch.HalfStorage' }, EMPTY_TUPLE, REDUCE, STOP)), 'CNM_ERR_PICKLE_FORBIDDEN', /REDUCE on torch\.HalfStorage/);
    await expectError(await archive(pk(PROTO, { g: 'collections.OrderedDict' }, MARK, 'x', TUPLE, [0x85], REDUCE, STOP)), 'CNM_ERR_PICKLE_FORBIDDEN', /OrderedDict/);
  });

  it.each([
    ['INST', pk(PROTO, MARK, [0x69], [...Buffer.from('os\nsystem\n')], STOP)],
    ['OBJ', pk(PROTO, MARK, { g: 'collections.OrderedDict' }, [0x6f], STOP)],
    ['NEWOBJ', pk(PROTO, { g: 'collections.OrderedDict' }, EMPTY_TUPLE, [0x81], STOP)],
    ['EXT1', pk(PROTO, [0x82, 1], STOP)],
    ['PERSID', pk(PROTO, [0x50], [...Buffer.from('0\n')], STOP)],
  ])('opcode %s is refused by name', async (op, pickle) => {
    await expectError(await archive(pickle), 'CNM_ERR_PICKLE_FORBIDDEN', new RegExp(`opcode ${op}`));
  });

  it('BUILD on anything but a dict is refused', async () => {
    await expectError(await archive(pk(PROTO, { g: 'torch._utils._rebuild_tensor_v2' }, EMPTY_DICT, [0x62], STOP)), 'CNM_ERR_PICKLE_FORBIDDEN', /BUILD/);
  });

  it('a persistent id that is not a storage tuple is refused', async () => {
    await expectError(await archive(pk(PROTO, 'rm -rf /', [0x51], STOP)), 'CNM_ERR_PICKLE_FORBIDDEN', /persistent id/);
  });
});

describe('bounds, sizes and limits', () => {
  const f32 = (k: number) => new Uint8Array(tensorFromValues('float32', [k], Array.from({ length: k }, (_, i) => i)).data);

  it('a well-formed hand-made archive is accepted (the hostile cases differ from it in one thing)', async () => {
    const sd = await readPt(await archive(tensorPickle({ numel: 4, offset: 1, size: [3], stride: [1] }), { 0: f32(4) }));
    expect([...new Float32Array(sd.get('w')!.data.slice().buffer)]).toEqual([1, 2, 3]);
  });

  it.each([
    ['offset past the end', { numel: 4, offset: 9, size: [1], stride: [1] }],
    ['view reaching past the end', { numel: 4, offset: 1, size: [4], stride: [1] }],
    ['stride past the end', { numel: 4, offset: 0, size: [3], stride: [2] }],
    ['storage numel disagreeing with its record', { numel: 1 << 30, offset: 0, size: [4], stride: [1] }],
    ['sizes and strides of different rank', { numel: 4, offset: 0, size: [2, 2], stride: [1] }],
    ['storage without a record', { key: '7', numel: 4, offset: 0, size: [4], stride: [1] }],
    ['absurd shape', { numel: 4, offset: 0, size: [2 ** 30, 2 ** 30, 2 ** 30], stride: [0, 0, 0] }],
  ])('%s → CNM_ERR_PT_BOUNDS', async (_label, t) => {
    await expectError(await archive(tensorPickle(t), { 0: f32(4) }), 'CNM_ERR_PT_BOUNDS');
  });

  it('a stride-0 view that would expand a 4-byte storage to gigabytes hits the size limit', async () => {
    const path = await archive(tensorPickle({ numel: 1, offset: 0, size: [2 ** 28], stride: [0] }), { 0: f32(1) });
    const before = process.memoryUsage().rss;
    await expectError(path, 'CNM_ERR_LIMIT');
    expect(process.memoryUsage().rss - before).toBeLessThan(256 << 20);
  });

  it('deep nesting and MARK floods hit the nesting limit', async () => {
    const depth = 5000;
    const lists = pk(PROTO, Array(depth).fill(0x5d), Array(depth - 1).fill(0x61), STOP);
    await expectError(await archive(lists), 'CNM_ERR_LIMIT', /nesting|MARK/);
    await expectError(await archive(pk(PROTO, Array(depth).fill(0x28), STOP)), 'CNM_ERR_LIMIT', /MARK/);
    const tuples = pk(PROTO, EMPTY_TUPLE, Array(depth).fill(0x85), STOP); // ((((),),),)…
    await expectError(await archive(tuples), 'CNM_ERR_LIMIT', /nesting/);
  });

  it('oversized data.pkl, too many tensors or memo entries, too many bytes hit configurable limits', async () => {
    const path = await archive(tensorPickle({ numel: 4, offset: 0, size: [4], stride: [1] }), { 0: f32(4) });
    await expectError(path, 'CNM_ERR_LIMIT', /data\.pkl/, { pickle: { maxBytes: 64 } });
    await expectError(path, 'CNM_ERR_LIMIT', /tensors/, { pickle: { maxTensors: 0 } });
    await expectError(await archive(pk(PROTO, EMPTY_DICT, [0x71, 0, 0x71, 1, 0x71, 2, 0x71, 3], STOP)), 'CNM_ERR_LIMIT', /memo/, { pickle: { maxMemo: 3 } });
    await expectError(path, 'CNM_ERR_LIMIT', /in memory/, { maxTotalBytes: 8 });
  });

  it('malformed pickles: underflow, bad memo reference, truncated string, unknown opcode', async () => {
    await expectError(await archive(pk(PROTO, REDUCE, STOP)), 'CNM_ERR_PICKLE_FORMAT', /underflow/);
    await expectError(await archive(pk(PROTO, [0x68, 9], STOP)), 'CNM_ERR_PICKLE_FORMAT', /memo/);
    await expectError(await archive(pk(PROTO, [0x58, 0xff, 0xff, 0xff, 0x7f, 0x41], STOP)), 'CNM_ERR_PICKLE_FORMAT');
    await expectError(await archive(pk(PROTO, [0xf0], STOP)), 'CNM_ERR_PICKLE_FORMAT', /unknown opcode/);
  });

  it('objects that are not state dicts are refused', async () => {
    await expectError(await archive(pk(PROTO, [0x5d], STOP)), 'CNM_ERR_NOT_STATE_DICT');
    await expectError(await archive(pk(PROTO, EMPTY_DICT, 'x', { int: 5 }, SETITEM, STOP)), 'CNM_ERR_NOT_STATE_DICT');
  });
});

describe('broken archives', () => {
  it('every truncation of a valid file is a typed error', async () => {
    const full = readFileSync(FIXTURE);
    for (let cut = 0; cut < full.length; cut += 37) {
      const p = join(tmp.path, `trunc-${cut}.pt`);
      writeFileSync(p, full.subarray(0, cut));
      await expect(readPt(p), `cut at ${cut}`).rejects.toBeInstanceOf(CheckpointError);
    }
  });

  it('a flipped data byte fails the CRC check', async () => {
    const buf = Buffer.from(readFileSync(FIXTURE));
    buf[0x2c0]! ^= 0x01; // inside archive/data/0
    const p = join(tmp.path, 'crc.pt');
    writeFileSync(p, buf);
    await expectError(p, 'CNM_ERR_PT_CRC');
  });

  it('a deflate bomb (512 MiB of zeros in a small zip) is refused without inflating', async () => {
    const p = join(tmp.path, 'bomb.pt');
    execFileSync(PYTHON, ['-c', `
import zipfile
with zipfile.ZipFile("${p}", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("archive/data.pkl", b"\\x80\\x02}q\\x00.")
    z.writestr("archive/version", b"3\\n")
    with z.open("archive/data/0", "w", force_zip64=True) as f:
        block = bytes(1 << 24)
        for _ in range(32):
            f.write(block)
`]);
    expect(readFileSync(p).length).toBeLessThan(4 << 20);
    const before = process.memoryUsage().rss;
    await expectError(p, 'CNM_ERR_PT_FORMAT', /compressed/);
    expect(process.memoryUsage().rss - before).toBeLessThan(128 << 20);
  });

  it('duplicate entry names and entries whose data overlap are refused', async () => {
    const pkl = tensorPickle({ numel: 1, offset: 0, size: [1], stride: [1] });
    const dup = await buildArchive([
      { name: 'archive/data.pkl', data: pkl },
      { name: 'archive/data/0', data: new Uint8Array(4) },
      { name: 'archive/data/0', data: new Uint8Array(4) },
      { name: 'archive/version', data: Buffer.from('3\n') },
    ]);
    const p = join(tmp.path, 'dup.pt');
    writeFileSync(p, dup);
    await expectError(p, 'CNM_ERR_PT_FORMAT', /twice/);
    // Point the version entry's central-directory offset at data.pkl's local header (renamed).
    const buf = await buildArchive([
      { name: 'archive/data.pkl', data: pkl },
      { name: 'archive/aaaa.pkl', data: pkl },
    ]);
    const cd = buf.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), 0);
    const second = buf.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), cd + 4);
    buf.writeUInt32LE(0, second + 42); // second entry claims the first entry's header
    writeFileSync(p, buf);
    await expectError(p, 'CNM_ERR_PT_FORMAT');
  });

  it('a missing version record or a big-endian byteorder is refused', async () => {
    const p = join(tmp.path, 'nover.pt');
    writeFileSync(p, await buildArchive([{ name: 'archive/data.pkl', data: pk(PROTO, EMPTY_DICT, STOP) }]));
    await expectError(p, 'CNM_ERR_PT_FORMAT', /version/);
    writeFileSync(p, await buildArchive([
      { name: 'archive/data.pkl', data: pk(PROTO, EMPTY_DICT, STOP) },
      { name: 'archive/byteorder', data: Buffer.from('big') },
      { name: 'archive/version', data: Buffer.from('3\n') },
    ]));
    await expectError(p, 'CNM_ERR_PT_FORMAT', /byteorder/);
  });
});

describe('fuzz: random mutations of valid files never crash the reader', () => {
  it('2000 seeded mutations end in success or a CheckpointError', async () => {
    const ours = join(tmp.path, 'fuzz-base.pt');
    const sd = new Map([
      ['a', tensorFromValues('float16', [2, 3], [1, 2, 3, 4, 5, 6])],
      ['b', tensorFromValues('bfloat16', [3], [1, -1, 0.5])],
      ['c', tensorFromValues('int64', [], [7])],
    ]);
    await writePt(ours, sd);
    const bases = [readFileSync(FIXTURE), readFileSync(ours)];
    const rand = prng(20260407);
    const pick = (k: number) => Math.floor(rand() * k);
    let accepted = 0;
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 2000; i++) {
      const base = bases[i % bases.length]!;
      let buf = Buffer.from(base);
      const kind = pick(5);
      // Half the mutations land in data.pkl (bytes 64..) and skip the CRC, so the unpickler sees them.
      const lo = rand() < 0.5 ? 64 : 0;
      const hi = lo ? Math.min(buf.length, 64 + 600) : buf.length;
      if (kind === 0) for (let j = 0, m = 1 + pick(8); j < m; j++) buf[lo + pick(hi - lo)] = pick(256);
      else if (kind === 1) buf = buf.subarray(0, pick(buf.length));
      else if (kind === 2) { const at = lo + pick(hi - lo); buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1 + pick(16))]); }
      else if (kind === 3) { const at = lo + pick(hi - lo); buf = Buffer.concat([buf.subarray(0, at), Buffer.from([pick(256), pick(256)]), buf.subarray(at)]); }
      else { const at = lo + pick(hi - lo - 4); buf.writeUInt32LE([0xffffffff, 0x7fffffff, 0x80000000, pick(2 ** 32)][pick(4)]!, at); }
      const p = join(tmp.path, 'fuzz.pt');
      writeFileSync(p, buf);
      try {
        await readPt(p, { verifyCrc: lo === 0 });
        accepted++;
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw new Error(`mutation ${i} (kind ${kind}) escaped as ${(e as Error).stack}`);
      }
    }
    expect(accepted).toBeLessThan(2000);
    expect(process.memoryUsage().rss - before).toBeLessThan(512 << 20);
  });
});

describe('I/O failures', () => {
  it('a missing file or an unwritable path is a CNM_ERR_CKPT_IO naming the path', async () => {
    await expectError(join(tmp.path, 'does-not-exist.pt'), 'CNM_ERR_CKPT_IO', /does-not-exist\.pt.*ENOENT|ENOENT.*does-not-exist\.pt/);
    const err = await writePt(join(tmp.path, 'no-such-dir', 'x.pt'), new Map()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).code).toBe('CNM_ERR_CKPT_IO');
    expect((err as CheckpointError).path).toBe(join(tmp.path, 'no-such-dir', 'x.pt'));
  });
});
