// Messages between the trainer's main thread and its data worker (same process, structured clone).
import type { Batch, DataState, DataStats, PipelineEvent, PipelineOptions } from './pipeline.js';

export interface TokenizerInfo {
  kind: 'byte' | 'hf';
  vocabSize: number;
  padId: number;
  bosId: number | null;
  eosId: number | null;
  source: string;
}

/** The plain-data summary of a tokenizer, as it crosses the thread boundary. */
export function tokenizerInfo(t: TokenizerInfo): TokenizerInfo {
  return { kind: t.kind, vocabSize: t.vocabSize, padId: t.padId, bosId: t.bosId, eosId: t.eosId, source: t.source };
}

export type ToWorker =
  | { type: 'init'; options: PipelineOptions; state: DataState | null; prefetch: number }
  | { type: 'credit'; n: number }
  | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; tokenizer: TokenizerInfo; events: PipelineEvent[] }
  | { type: 'batch'; batch: Batch; stats: DataStats; events: PipelineEvent[] }
  | { type: 'error'; code: string; message: string };
