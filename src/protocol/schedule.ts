// The learning-rate multiplier the reference trainer uses (transformers'
// `get_cosine_schedule_with_warmup`, num_cycles = 0.5; PROTOCOL.md §10.1). `step` is the number of
// `scheduler.step()` calls so far.
export function cosineWithWarmupMultiplier(step: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
}
