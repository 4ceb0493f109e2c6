// Worker-thread entry of the data pipeline: reads, tokenises and batches off the trainer's main
// thread, keeping up to `prefetch` batches ahead of the engine (credit-based flow control: the
// main thread returns one credit per batch it consumes). Token buffers are transferred, not copied.
import { parentPort } from 'node:worker_threads';
import { BatchProducer } from './pipeline.js';
import { tokenizerInfo, type ToWorker, type FromWorker } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('data worker must run in a worker thread');

let producer: BatchProducer | null = null;
let credits = 0;
let producing = false;
let closed = false;

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

function fail(e: unknown): void {
  const code = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'CNM_ERR_DATA_WORKER';
  post({ type: 'error', code, message: e instanceof Error ? e.message : String(e) });
  closed = true;
  producer?.close();
}

async function pump(): Promise<void> {
  if (producing || closed || producer === null) return;
  producing = true;
  try {
    while (credits > 0 && !closed) {
      const b = await producer.next();
      credits--;
      post(
        { type: 'batch', batch: b, stats: producer.stats, events: producer.drainEvents() },
        [b.tokens.buffer as ArrayBuffer, b.labels.buffer as ArrayBuffer],
      );
    }
  } catch (e) {
    fail(e);
  } finally {
    producing = false;
  }
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'init':
      BatchProducer.open(msg.options, msg.state)
        .then((p) => {
          producer = p;
          credits = msg.prefetch;
          post({ type: 'ready', tokenizer: tokenizerInfo(p.tokenizer), events: p.drainEvents() });
          void pump();
        })
        .catch(fail);
      break;
    case 'credit':
      credits += msg.n;
      void pump();
      break;
    case 'close':
      closed = true;
      producer?.close();
      port!.close();
      break;
  }
});
