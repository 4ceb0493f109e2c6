import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);

describe('native addons', () => {
  it('the engine addon loads without a GPU and says why CUDA is unavailable', () => {
    const addon = require('../../build/Release/connito_native.node');
    const probe = addon.probeBackends();
    expect(probe.cudaAvailable).toBe(false);
    expect(probe.cudaReason).toMatch(/\S/);
    expect(probe.cpuThreads).toBeGreaterThanOrEqual(1);
  });
});
