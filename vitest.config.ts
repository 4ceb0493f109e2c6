import { defineConfig } from 'vitest/config';

// Addon and process tests need real processes: forks, not threads. Two cores: keep parallelism low.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
