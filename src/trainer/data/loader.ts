// The trainer's view of the data pipeline: `next()` returns the next micro-batch. By default the
// pipeline runs in a worker thread and stays `prefetch` batches ahead, so tokenisation never sits on
// the path between two engine calls; `inline: true` runs it on the calling thread (tests and the
// benchmark's reference).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TrainerError, type TrainerErrorCode } from '../errors.js';
import { BatchProducer, emptySkipCounts, type Batch, type DataState, type DataStats, type PipelineEvent, type PipelineOptions } from './pipeline.js';
import { tokenizerInfo, type FromWorker, type TokenizerInfo, type ToWorker } from './protocol.js';

export interface DataLoader {
  readonly tokenizer: TokenizerInfo;
  /** The next micro-batch; rejects with the pipeline's error, or an AbortError when `signal` fires. */
  next(signal?: AbortSignal): Promise<Batch>;
  /** Counters as of the last batch received. */
  stats(): DataStats;
  /** Epoch and restore notes since the last call, for the caller's log. */
  drainEvents(): PipelineEvent[];
  close(): Promise<void>;
}

export interface LoaderOptions {
  /** Batches to keep ready ahead of the engine (default 8). */
  prefetch?: number;
  /** Run on the calling thread instead of a worker. */
  inline?: boolean;
}

/**
 * The compiled worker module. When this file runs from the TypeScript sources (vitest), the worker
 * still runs the build: `dist/trainer/data/worker.js` (`npm run build` first).
 */
export function workerUrl(): URL {
  const here = new URL('./worker.js', import.meta.url);
  if (import.meta.url.endsWith('.ts')) {
    const path = fileURLToPath(here).replace(/\/src\/trainer\/data\/worker\.js$/, '/dist/trainer/data/worker.js');
    if (!existsSync(path)) throw new TrainerError('CNM_ERR_DATA_WORKER', `${path} is missing: run \`npm run build\``);
    return new URL(`file://${path}`);
  }
  return here;
}

export async function startDataLoader(options: PipelineOptions, state: DataState | null, lo: LoaderOptions = {}): Promise<DataLoader> {
  if (lo.inline) return InlineLoader.start(options, state);
  return WorkerLoader.start(options, state, lo.prefetch ?? 8);
}

function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

class InlineLoader implements DataLoader {
  private constructor(private readonly p: BatchProducer, readonly tokenizer: TokenizerInfo) {}

  static async start(options: PipelineOptions, state: DataState | null): Promise<InlineLoader> {
    const p = await BatchProducer.open(options, state);
    return new InlineLoader(p, tokenizerInfo(p.tokenizer));
  }

  async next(signal?: AbortSignal): Promise<Batch> {
    if (signal?.aborted) throw abortError();
    return this.p.next();
  }

  stats(): DataStats {
    return structuredClone(this.p.stats);
  }

  drainEvents(): PipelineEvent[] {
    return this.p.drainEvents();
  }

  async close(): Promise<void> {
    this.p.close();
  }
}

class WorkerLoader implements DataLoader {
  private readonly queue: Batch[] = [];
  private waiters: Array<{ resolve: (b: Batch) => void; reject: (e: Error) => void }> = [];
  private error: Error | null = null;
  private lastStats: DataStats = { rowsRead: 0, rowsUsed: 0, skipped: emptySkipCounts(), perSource: [] };
  private events: PipelineEvent[] = [];
  private closed = false;
  private owed = 0;
  tokenizer!: TokenizerInfo;

  private constructor(
    private readonly worker: Worker,
    private readonly refillAt: number,
  ) {}

  static start(options: PipelineOptions, state: DataState | null, prefetch: number): Promise<WorkerLoader> {
    const worker = new Worker(workerUrl());
    const l = new WorkerLoader(worker, Math.max(1, Math.floor(prefetch / 2)));
    return new Promise<WorkerLoader>((resolve, reject) => {
      let ready = false;
      // Before 'ready' an error fails the start; after it, the next() calls.
      const failWith = (err: TrainerError): void => (ready ? l.fail(err) : reject(err));
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'ready':
            ready = true;
            l.tokenizer = msg.tokenizer;
            l.events.push(...msg.events);
            resolve(l);
            break;
          case 'batch':
            l.lastStats = msg.stats;
            l.events.push(...msg.events);
            l.deliver(msg.batch);
            break;
          case 'error':
            if (!ready) void worker.terminate();
            failWith(new TrainerError(msg.code as TrainerErrorCode, msg.message));
            break;
        }
      });
      worker.on('error', (e) => {
        failWith(new TrainerError('CNM_ERR_DATA_WORKER', `data worker crashed: ${e.message}`, { cause: e }));
      });
      worker.on('exit', (code) => {
        if (!l.closed) failWith(new TrainerError('CNM_ERR_DATA_WORKER', `data worker exited unexpectedly (code ${code})`));
      });
      l.send({ type: 'init', options, state, prefetch });
    });
  }

  private send(msg: ToWorker): void {
    this.worker.postMessage(msg);
  }

  /**
   * Credits go back in batches of half the prefetch depth: the worker then wakes once per few
   * batches and produces them in one go, instead of waking for every batch the engine takes.
   */
  private giveCredit(): void {
    this.owed++;
    if (this.owed >= this.refillAt || this.queue.length === 0) {
      this.send({ type: 'credit', n: this.owed });
      this.owed = 0;
    }
  }

  private deliver(b: Batch): void {
    const w = this.waiters.shift();
    if (w) w.resolve(b);
    else this.queue.push(b);
  }

  private fail(e: Error): void {
    if (this.error) return;
    this.error = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
  }

  next(signal?: AbortSignal): Promise<Batch> {
    if (signal?.aborted) return Promise.reject(abortError());
    if (this.closed) return Promise.reject(new TrainerError('CNM_ERR_DATA_WORKER', 'data loader is closed'));
    const b = this.queue.shift();
    if (b) {
      this.giveCredit();
      return Promise.resolve(b);
    }
    if (this.error) return Promise.reject(this.error);
    return new Promise<Batch>((resolve, reject) => {
      const waiter = {
        resolve: (batch: Batch) => {
          signal?.removeEventListener('abort', onAbort);
          this.giveCredit();
          resolve(batch);
        },
        reject: (e: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(abortError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  stats(): DataStats {
    return this.lastStats;
  }

  drainEvents(): PipelineEvent[] {
    return this.events.splice(0, this.events.length);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.fail(new TrainerError('CNM_ERR_DATA_WORKER', 'data loader is closed'));
    try {
      this.send({ type: 'close' });
    } catch {
      // already gone
    }
    await this.worker.terminate();
  }
}
