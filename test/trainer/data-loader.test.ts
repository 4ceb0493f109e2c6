// The data loader's worker thread (the built dist/trainer/data/worker.js): same batches as the
// inline pipeline, prefetching, errors surfaced as typed rejections, abort while waiting.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDataLoader } from '../../src/trainer/data/loader.js';
import type { PipelineOptions } from '../../src/trainer/data/pipeline.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cnm-loader-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = (over: Partial<PipelineOptions> = {}): PipelineOptions => ({
  sources: [{ kind: 'synthetic-math', name: 's', weight: 1, seed: 3 }],
  tokenizer: { kind: 'byte' },
  sequenceLength: 64,
  batchSize: 2,
  rank: 0,
  worldSize: 1,
  seed: 1,
  vocabSize: 320,
  ...over,
});

describe('data loader (worker thread)', () => {
  it('yields the same batches and states as the inline pipeline, and resumes from a state', async () => {
    const inline = await startDataLoader(base(), null, { inline: true });
    const worker = await startDataLoader(base(), null, { prefetch: 3 });
    expect(worker.tokenizer).toEqual(inline.tokenizer);
    const a = [];
    for (let i = 0; i < 12; i++) {
      const x = await inline.next();
      const y = await worker.next();
      expect(Array.from(y.tokens)).toEqual(Array.from(x.tokens));
      expect(Array.from(y.labels)).toEqual(Array.from(x.labels));
      expect(y.state).toEqual(x.state);
      a.push(x);
    }
    await worker.close();
    const resumed = await startDataLoader(base(), a[5]!.state, { prefetch: 2 });
    expect(Array.from((await resumed.next()).tokens)).toEqual(Array.from(a[6]!.tokens));
    await resumed.close();
    await inline.close();
  });

  it('a missing source rejects start-up with the typed error; a source that turns out empty rejects next()', async () => {
    await expect(startDataLoader(base({ sources: [{ kind: 'text', name: 'gone', path: join(dir, 'missing.txt'), weight: 1 }] }), null)).rejects.toMatchObject({
      code: 'CNM_ERR_DATA_SOURCE_MISSING',
    });
    const f = join(dir, 'junk.jsonl');
    writeFileSync(f, 'not json\nnot json either\n');
    const l = await startDataLoader(base({ sources: [{ kind: 'jsonl', name: 'junk', path: f, weight: 1, textColumn: 'text' }] }), null);
    await expect(l.next()).rejects.toMatchObject({ code: 'CNM_ERR_DATA_SOURCE_EMPTY', message: expect.stringContaining('invalid_json=2') });
    await expect(l.next()).rejects.toMatchObject({ code: 'CNM_ERR_DATA_SOURCE_EMPTY' });
    await l.close();
  });

  it('next() can be aborted while it waits', async () => {
    const l = await startDataLoader(base({ batchSize: 1 }), null, { prefetch: 1 });
    await l.next();
    const ac = new AbortController();
    ac.abort();
    await expect(l.next(ac.signal)).rejects.toMatchObject({ name: 'AbortError' });
    await l.close();
    await expect(l.next()).rejects.toMatchObject({ code: 'CNM_ERR_DATA_WORKER' });
  });
});
