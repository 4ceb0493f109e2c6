// What the training loop needs of the engine (src/trainer/engine.ts, the native addon's wrapper).
// Structural: the real engine satisfies it without importing anything from here, and the loop
// stays readable without the addon's full surface.

export type WeightDType = 'float32' | 'float16' | 'bfloat16';

export interface WeightEntry {
  name: string;
  dtype: WeightDType;
  shape: number[];
  data: Uint8Array;
}

export interface TokenBatch {
  tokens: Int32Array;
  labels: Int32Array;
  batch: number;
  seq: number;
}

export interface OptimizerStepResult {
  step: number;
  gradNorm: number;
  gradSum: number;
  skipped: boolean;
  lr: number;
  scaleBefore: number;
  scaleAfter: number;
  nonFinite: string[];
}

export interface EngineOptimizerState {
  step: number;
  scale: number;
  goodSteps: number;
  tensors: WeightEntry[];
}

export interface EngineInfo {
  backend: string;
  reason: string;
  device: string;
  threads: number;
  trainableParams: number;
  totalParams: number;
  memoryBytes: number;
}

export interface TrainingEngine {
  loadWeights(entries: WeightEntry[]): Promise<{ missing: string[]; ignored: string[] }>;
  exportWeights(filter?: { names?: string[]; trainableOnly?: boolean; dtype?: WeightDType }): Promise<WeightEntry[]>;
  trainStep(b: TokenBatch): Promise<{ loss: number; tokens: number }>;
  optimizerStep(): Promise<OptimizerStepResult>;
  evalLoss(b: TokenBatch): Promise<{ loss: number; tokens: number }>;
  exportOptimizerState(): Promise<EngineOptimizerState>;
  importOptimizerState(state: EngineOptimizerState): Promise<void>;
  info(): EngineInfo;
  dispose(): void;
}

export interface EngineCreateOptions {
  config: Record<string, unknown>;
  allowedExperts: Record<number, number[]>;
  backend: 'auto' | 'cpu' | 'cuda';
  precision: 'fp32' | 'fp16-mixed' | 'bf16-mixed';
  threads?: number;
  recompute?: boolean;
  optimizer: { lr: number; betas: [number, number]; eps: number; weightDecay: number; maxGradNorm: number };
  schedule: { warmupSteps: number; totalSteps: number };
  seed?: number;
}

export type EngineFactory = (opts: EngineCreateOptions) => Promise<TrainingEngine>;
