// What the training loop needs of the engine (src/trainer/engine.ts, the native addon's wrapper).
// The types are engine.ts's own (type-only imports: nothing here loads the addon); the loop sees
// only the methods it calls, so a test can decorate the real engine without its full surface.
import type { Batch, Engine, EngineDtype, EngineOptions, EngineTensor, OptimizerState } from './engine.js';

export type WeightDType = EngineDtype;
export type WeightEntry = EngineTensor;
export type TokenBatch = Batch;
export type EngineOptimizerState = OptimizerState;
export type EngineCreateOptions = EngineOptions;

export type TrainingEngine = Pick<
  Engine,
  | 'loadWeights'
  | 'exportWeights'
  | 'trainStep'
  | 'optimizerStep'
  | 'evalLoss'
  | 'exportOptimizerState'
  | 'importOptimizerState'
  | 'info'
  | 'dispose'
>;

export type EngineFactory = (opts: EngineCreateOptions) => Promise<TrainingEngine>;
