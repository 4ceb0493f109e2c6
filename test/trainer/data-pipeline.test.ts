// The data pipeline on real files: sources, sharding, mixing, tokenisation, labels, bad rows and the
// resume position. Runs the pipeline inline (the worker-thread path is in data-loader.test.ts).
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parquetWriteFile } from 'hyparquet-writer';
import { BatchProducer, IGNORE_INDEX, encodeForSequence, packRow, type Batch, type DataState, type PipelineOptions } from '../../src/trainer/data/pipeline.js';
import type { SourceSpec } from '../../src/trainer/data/sources.js';
import { Rng } from '../../src/trainer/data/rng.js';
import { checkMathDocument, mathDocument } from '../../src/trainer/data/synthetic-math.js';
import { BYTE_BOS, BYTE_PAD, ByteTokenizer, loadTokenizer } from '../../src/trainer/data/tokenizer.js';

const FIX = join(import.meta.dirname, '../fixtures/trainer/tokenizer');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cnm-data-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function opts(sources: SourceSpec[], over: Partial<PipelineOptions> = {}): PipelineOptions {
  return { sources, tokenizer: { kind: 'byte' }, sequenceLength: 32, batchSize: 2, rank: 0, worldSize: 1, seed: 7, vocabSize: 320, ...over };
}

/** Decodes each row of a batch back to text (byte tokenizer), dropping BOS and padding. */
function rowsOf(b: Batch): string[] {
  const tok = new ByteTokenizer();
  const out: string[] = [];
  for (let r = 0; r < b.batch; r++) out.push(tok.decode(Array.from(b.tokens.subarray(r * b.seq, (r + 1) * b.seq))));
  return out;
}

async function take(p: BatchProducer, n: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let i = 0; i < n; i++) out.push(await p.next());
  return out;
}

describe('synthetic math corpus', () => {
  it('is a pure function of (seed, index) and every equation in it is right', () => {
    expect(mathDocument(3, 17)).toBe(mathDocument(3, 17));
    expect(mathDocument(3, 17)).not.toBe(mathDocument(3, 18));
    expect(mathDocument(3, 17)).not.toBe(mathDocument(4, 17));
    let equations = 0;
    for (let i = 0; i < 300; i++) equations += checkMathDocument(mathDocument(1, i));
    expect(equations).toBeGreaterThanOrEqual(300 * 4);
    expect(() => checkMathDocument('Answer: 2 + 2 = 5.')).toThrow(/wrong equation/);
  });
});

describe('rng', () => {
  it('resumes from a saved state exactly', () => {
    const a = Rng.fromSeed(11);
    for (let i = 0; i < 5; i++) a.next();
    const b = Rng.fromState(a.state());
    expect(Array.from({ length: 20 }, () => a.nextU32())).toEqual(Array.from({ length: 20 }, () => b.nextU32()));
    expect(() => Rng.fromState([0, 0, 0, 0])).toThrow();
  });
});

describe('tokenizers', () => {
  it('byte-level: BOS then UTF-8 bytes', () => {
    const t = new ByteTokenizer();
    expect(t.encode('Aé')).toEqual([BYTE_BOS, 65, 0xc3, 0xa9]);
    expect(t.decode(t.encode('3 + 4 = 7'))).toBe('3 + 4 = 7');
  });

  it('tokenizer.json through @huggingface/tokenizers, offline, with the post-processor BOS', () => {
    const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8'));
    const t = loadTokenizer({ kind: 'auto', dir: FIX });
    expect(t.kind).toBe('hf');
    expect(t.encode(expected.text)).toEqual(expected.ids);
    expect(t.padId).toBe(2);
    expect(t.bosId).toBe(0);
    expect(t.vocabSize).toBe(expected.vocab_size);
    expect(t.decode(t.encode(expected.text))).toBe(expected.text);
  });

  it('add_bos_token/add_eos_token in tokenizer_config.json override the post-processor (Llama-family rule)', () => {
    const d = join(dir, 'tok-eos');
    mkdirSync(d);
    writeFileSync(join(d, 'tokenizer.json'), readFileSync(join(FIX, 'tokenizer.json')));
    const cfg = JSON.parse(readFileSync(join(FIX, 'tokenizer_config.json'), 'utf8'));
    writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({ ...cfg, add_bos_token: false, add_eos_token: true }));
    const ids = loadTokenizer({ kind: 'auto', dir: d }).encode('and');
    expect(ids).toEqual([260, 1]);
  });

  it('a tokenizer.json that does not parse is a clear error naming the file', () => {
    const d = join(dir, 'tok-bad');
    mkdirSync(d);
    writeFileSync(join(d, 'tokenizer.json'), '{"model": {"type": "BPE", "vocab": ');
    expect(() => loadTokenizer({ kind: 'auto', dir: d })).toThrow(expect.objectContaining({ code: 'CNM_ERR_TOKENIZER', message: expect.stringContaining(join(d, 'tokenizer.json')) }));
    writeFileSync(join(d, 'tokenizer.json'), '{"version": "1.0"}');
    expect(() => loadTokenizer({ kind: 'auto', dir: d })).toThrow(expect.objectContaining({ code: 'CNM_ERR_TOKENIZER' }));
  });

  it('an explicit tokenizer.json path loads with the tokenizer_config.json beside it', () => {
    const t = loadTokenizer({ kind: 'hf', file: join(FIX, 'tokenizer.json') });
    expect(t.padId).toBe(2);
    expect(() => loadTokenizer({ kind: 'hf', file: join(dir, 'none.json') })).toThrow(expect.objectContaining({ code: 'CNM_ERR_TOKENIZER' }));
  });

  it('falls back to byte-level when the model directory has no tokenizer.json', () => {
    expect(loadTokenizer({ kind: 'auto', dir }).kind).toBe('byte');
  });
});

describe('encodeForSequence', () => {
  it('gives the same first seq ids as tokenising the whole document, for both tokenizers', () => {
    const hf = loadTokenizer({ kind: 'hf', dir: FIX });
    const bt = new ByteTokenizer();
    const texts = [
      ...Array.from({ length: 40 }, (_, i) => mathDocument(9, i, { problems: 30 })),
      'x'.repeat(5000),
      `${'word '.repeat(400)}and   and\n\n12 12 band`,
      'short text',
      'é'.repeat(3000) + ' tail',
    ];
    for (const seq of [8, 64, 300]) {
      for (const t of texts) {
        for (const tok of [hf, bt]) {
          const want = tok.encode(t).slice(0, seq);
          for (const cpt of [1, 4, 16]) expect(encodeForSequence(tok, t, seq, cpt).slice(0, seq)).toEqual(want);
        }
      }
    }
  });

  it('tokenises only a prefix of a long document', () => {
    let seen = 0;
    const counting = { encode: (s: string) => ((seen = s.length), new ByteTokenizer().encode(s)) };
    const doc = mathDocument(1, 1, { problems: 200 });
    encodeForSequence(counting, doc, 64);
    expect(seen).toBeLessThan(doc.length / 10);
  });
});

describe('packRow (PROTOCOL §9.7)', () => {
  it('pads with pad_id, labels −100 on padding, truncates to seq', () => {
    const tokens = new Int32Array(6);
    const labels = new Int32Array(6);
    expect(packRow([BYTE_BOS, 10, 11], 6, BYTE_PAD, 320, tokens, labels, 0)).toEqual({ targets: 2, real: 3 });
    expect(Array.from(tokens)).toEqual([BYTE_BOS, 10, 11, BYTE_PAD, BYTE_PAD, BYTE_PAD]);
    expect(Array.from(labels)).toEqual([BYTE_BOS, 10, 11, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]);
    expect(packRow([1, 2, 3, 4, 5, 6, 7, 8], 6, BYTE_PAD, 320, tokens, labels, 0)).toEqual({ targets: 5, real: 6 });
    expect(Array.from(tokens)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('rejects rows with nothing to predict or ids beyond the vocab', () => {
    const t = new Int32Array(4);
    const l = new Int32Array(4);
    expect(packRow([BYTE_BOS], 4, BYTE_PAD, 320, t, l, 0)).toBe('too_short');
    expect(packRow([BYTE_BOS, 400], 4, BYTE_PAD, 320, t, l, 0)).toBe('token_out_of_range');
  });
});

describe('sources', () => {
  it('text: one row per non-empty line, in sorted file order across a directory', async () => {
    const d = join(dir, 'text');
    mkdirSync(join(d, 'sub'), { recursive: true });
    writeFileSync(join(d, 'b.txt'), 'beta one\n\nbeta two\r\n');
    writeFileSync(join(d, 'a.txt'), 'alpha one\nalpha two');
    writeFileSync(join(d, 'sub', 'c.txt'), 'gamma\n');
    writeFileSync(join(d, 'ignored.md'), 'not a source file\n');
    const p = await BatchProducer.open(opts([{ kind: 'text', name: 't', path: d, weight: 1 }], { batchSize: 5 }));
    const [b] = await take(p, 1);
    expect(rowsOf(b!)).toEqual(['alpha one', 'alpha two', 'beta one', 'beta two', 'gamma']);
    expect(p.stats.skipped.empty).toBe(1);
    p.close();
  });

  it('jsonl: takes text_column, skips and counts invalid lines', async () => {
    const f = join(dir, 'bad.jsonl');
    writeFileSync(
      f,
      [
        '{"text": "good one"}',
        '{"text": "good two", "id": 2}',
        'this is not json',
        '{"body": "no text column"}',
        '{"text": 42}',
        '["an", "array"]',
        '{"text": "   "}',
        '{"text": "good three"}',
        '',
      ].join('\n'),
    );
    const p = await BatchProducer.open(opts([{ kind: 'jsonl', name: 'j', path: f, weight: 1, textColumn: 'text' }], { batchSize: 3 }));
    const [b] = await take(p, 1);
    expect(rowsOf(b!)).toEqual(['good one', 'good two', 'good three']);
    expect(p.stats.skipped).toMatchObject({ invalid_json: 2, missing_column: 1, not_text: 1, empty: 1 });
    p.close();
  });

  it('parquet: reads text_column across row groups', async () => {
    const f = join(dir, 'rows.parquet');
    const texts = Array.from({ length: 25 }, (_, i) => `parquet row ${i}`);
    parquetWriteFile({ filename: f, columnData: [{ name: 'content', data: texts, type: 'STRING' }, { name: 'n', data: texts.map((_, i) => i), type: 'INT32' }], rowGroupSize: 10 });
    const p = await BatchProducer.open(opts([{ kind: 'parquet', name: 'p', path: f, weight: 1, textColumn: 'content' }], { batchSize: 25 }));
    const [b] = await take(p, 1);
    expect(rowsOf(b!)).toEqual(texts);
    p.close();
    const q = await BatchProducer.open(opts([{ kind: 'parquet', name: 'p', path: f, weight: 1, textColumn: 'text' }]));
    await expect(q.next()).rejects.toMatchObject({ code: 'CNM_ERR_DATA_FORMAT', message: expect.stringContaining('no column "text"') });
    q.close();
  });

  it('a missing path, an empty directory and a source with no usable row are clear errors', async () => {
    await expect(BatchProducer.open(opts([{ kind: 'jsonl', name: 'gone', path: join(dir, 'nope.jsonl'), weight: 1, textColumn: 'text' }]))).rejects.toMatchObject({
      code: 'CNM_ERR_DATA_SOURCE_MISSING',
      message: expect.stringContaining('nope.jsonl'),
    });
    mkdirSync(join(dir, 'empty-dir'));
    await expect(BatchProducer.open(opts([{ kind: 'text', name: 'e', path: join(dir, 'empty-dir'), weight: 1 }]))).rejects.toMatchObject({ code: 'CNM_ERR_DATA_SOURCE_EMPTY' });
    const f = join(dir, 'all-bad.jsonl');
    writeFileSync(f, 'garbage\n{"x": 1}\n');
    const p = await BatchProducer.open(opts([{ kind: 'jsonl', name: 'bad', path: f, weight: 1, textColumn: 'text' }]));
    await expect(p.next()).rejects.toMatchObject({ code: 'CNM_ERR_DATA_SOURCE_EMPTY', message: expect.stringMatching(/invalid_json=1.*missing_column=1/) });
    p.close();
  });

  it('token ids beyond the model vocab skip the row with a count', async () => {
    const f = join(dir, 'vocab.txt');
    writeFileSync(f, 'ok\nÿ high byte\nfine\n');
    // A tokenizer whose ids for bytes ≥ 0x80 lie beyond the model's vocab of 259.
    const tok = {
      kind: 'byte' as const,
      vocabSize: 301,
      bosId: 1,
      eosId: null,
      padId: 0,
      source: 'test tokenizer',
      encode: (s: string) => [1, ...Array.from(Buffer.from(s), (x) => (x >= 0x80 ? 300 : x + 2))],
      decode: () => '',
    };
    const q = await BatchProducer.open(opts([{ kind: 'text', name: 'v', path: f, weight: 1 }], { vocabSize: 259, batchSize: 2 }), null, tok);
    const b = await q.next();
    expect(b.batch).toBe(2);
    expect(q.stats.skipped.token_out_of_range).toBe(1);
    expect(q.stats.rowsUsed).toBe(2);
    q.close();
  });
});

describe('sharding, mixing, epochs', () => {
  it('rank r of w reads exactly the rows with index ≡ r (mod w); the ranks partition the data', async () => {
    const f = join(dir, 'shard.txt');
    writeFileSync(f, Array.from({ length: 30 }, (_, i) => `row ${i}`).join('\n'));
    const seen: string[][] = [];
    for (let r = 0; r < 3; r++) {
      const p = await BatchProducer.open(opts([{ kind: 'text', name: 's', path: f, weight: 1 }], { rank: r, worldSize: 3, batchSize: 10 }));
      const [b] = await take(p, 1);
      seen.push(rowsOf(b!));
      expect(rowsOf(b!)).toEqual(Array.from({ length: 10 }, (_, i) => `row ${3 * i + r}`));
      p.close();
    }
    expect(new Set(seen.flat()).size).toBe(30);
  });

  it('mixes sources by weight, deterministically from the seed', async () => {
    const sources: SourceSpec[] = [
      { kind: 'synthetic-math', name: 'a', weight: 3, seed: 1 },
      { kind: 'synthetic-math', name: 'b', weight: 1, seed: 2 },
    ];
    const count = async (): Promise<number[]> => {
      const p = await BatchProducer.open(opts(sources, { batchSize: 50, sequenceLength: 8 }));
      await take(p, 40);
      const c = p.stats.perSource.map((s) => s.rowsUsed);
      p.close();
      return c;
    };
    const c1 = await count();
    expect(c1[0]! + c1[1]!).toBe(2000);
    expect(c1[0]! / 2000).toBeGreaterThan(0.72);
    expect(c1[0]! / 2000).toBeLessThan(0.78);
    expect(await count()).toEqual(c1);
  });

  it('wraps around at the end of a file into the next epoch and reports it', async () => {
    const f = join(dir, 'short.txt');
    writeFileSync(f, 'one\ntwo\nthree\n');
    const p = await BatchProducer.open(opts([{ kind: 'text', name: 'short', path: f, weight: 1 }], { batchSize: 4 }));
    const [b] = await take(p, 1);
    expect(rowsOf(b!)).toEqual(['one', 'two', 'three', 'one']);
    expect(p.drainEvents()).toEqual([{ type: 'epoch', source: 'short', epoch: 1, rowsUsed: 3 }]);
    expect(b!.state.sources[0]!.position.epoch).toBe(1);
    p.close();
  });
});

describe('data position', () => {
  const f = () => join(dir, 'resume.jsonl');
  const pq = () => join(dir, 'resume.parquet');
  beforeAll(() => {
    writeFileSync(f(), Array.from({ length: 37 }, (_, i) => (i % 9 === 4 ? 'broken line' : JSON.stringify({ text: `json doc ${i} ${'x'.repeat(i % 7)}` }))).join('\n') + '\n');
    parquetWriteFile({ filename: pq(), columnData: [{ name: 'text', data: Array.from({ length: 23 }, (_, i) => `pq ${i}`), type: 'STRING' }], rowGroupSize: 6 });
  });

  const configs: Array<[string, () => SourceSpec[]]> = [
    ['jsonl', () => [{ kind: 'jsonl', name: 'j', path: f(), weight: 1, textColumn: 'text' }]],
    ['parquet', () => [{ kind: 'parquet', name: 'p', path: pq(), weight: 1, textColumn: 'text' }]],
    [
      'jsonl + parquet + synthetic, sharded',
      () => [
        { kind: 'jsonl', name: 'j', path: f(), weight: 2, textColumn: 'text' },
        { kind: 'parquet', name: 'p', path: pq(), weight: 1, textColumn: 'text' },
        { kind: 'synthetic-math', name: 's', weight: 1, seed: 5 },
      ],
    ],
  ];

  it.each(configs)('%s: resuming from the state saved after batch k yields exactly batches k+1… of an uninterrupted run', async (_n, sources) => {
    const o = opts(sources(), { worldSize: 2, rank: 1, batchSize: 3 });
    const full = await BatchProducer.open(o);
    const all = await take(full, 30); // wraps the files several times
    full.close();
    for (const k of [0, 4, 11, 17]) {
      const saved: DataState = JSON.parse(JSON.stringify(all[k]!.state));
      const resumed = await BatchProducer.open(o, saved);
      const rest = await take(resumed, 30 - k - 1);
      resumed.close();
      rest.forEach((b, i) => {
        expect(Array.from(b.tokens)).toEqual(Array.from(all[k + 1 + i]!.tokens));
        expect(Array.from(b.labels)).toEqual(Array.from(all[k + 1 + i]!.labels));
      });
    }
  });

  it('a state from a different source set restores what matches and says so', async () => {
    const o1 = opts([{ kind: 'jsonl', name: 'j', path: f(), weight: 1, textColumn: 'text' }]);
    const p1 = await BatchProducer.open(o1);
    const [b1, b2] = await take(p1, 2);
    p1.close();
    const o2 = opts([
      { kind: 'jsonl', name: 'j', path: f(), weight: 1, textColumn: 'text' },
      { kind: 'synthetic-math', name: 's', weight: 1e-9, seed: 1 },
    ]);
    const p2 = await BatchProducer.open(o2, b1!.state);
    expect(p2.drainEvents().map((e) => e.type)).toEqual(['restore']);
    const n = await p2.next();
    expect(Array.from(n.tokens)).toEqual(Array.from(b2!.tokens));
    p2.close();
  });
});
