// Loads the native training engine addon (build/Release/connito_native.node) relative to the
// package root, sharp-style: try the candidates in order and, when none loads, throw one error
// whose message lists what was tried and the possible solutions. Only the trainer child loads
// this (the supervisor never does), so a broken native build cannot take chain duties down.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeAddonError } from './errors.js';

export { NativeAddonError } from './errors.js';

/** The raw addon surface; src/trainer/engine.ts gives it types and semantics. */
export interface NativeAddon {
  version: string;
  probeBackends(): {
    cudaBuilt: boolean;
    cudaAvailable: boolean;
    cudaDeviceCount: number;
    cudaReason: string;
    cpuThreads: number;
    gemmKernel: string;
  };
  createEngine(opts: unknown): Promise<NativeEngine>;
  _gradCheck(spec: unknown): Promise<unknown>;
}

export interface NativeEngine {
  loadWeights(entries: unknown): Promise<unknown>;
  exportWeights(filter?: unknown): Promise<unknown>;
  trainStep(batch: unknown): Promise<unknown>;
  evalLoss(batch: unknown): Promise<unknown>;
  optimizerStep(opts?: unknown): Promise<unknown>;
  exportOptimizerState(): Promise<unknown>;
  importOptimizerState(state: unknown): Promise<void>;
  info(): unknown;
  dispose(): void;
  _exportGradients(opts?: unknown): Promise<unknown>;
}

/** The directory holding connito-miner's package.json (works from src/ under tsx/vitest and from dist/). */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(from);
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        const name = (JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name;
        if (name === 'connito-miner') return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new NativeAddonError(`cannot find the connito-miner package root above ${from}`, []);
    dir = parent;
  }
}

let cached: NativeAddon | undefined;

/** The default candidates: $CONNITO_NATIVE_ADDON, then build/Release and build/Debug under the package root. */
export function addonCandidates(): string[] {
  let root: string | undefined;
  try {
    root = packageRoot();
  } catch {
    root = undefined;
  }
  return [
    process.env.CONNITO_NATIVE_ADDON,
    root && join(root, 'build', 'Release', 'connito_native.node'),
    root && join(root, 'build', 'Debug', 'connito_native.node'),
  ].filter((p): p is string => typeof p === 'string' && p.length > 0);
}

/** Loads the addon once (from addonCandidates()). */
export function loadNativeAddon(): NativeAddon {
  if (!cached) cached = loadNativeAddonFrom(addonCandidates());
  return cached;
}

/** Tries `candidates` in order; throws one NativeAddonError listing every failure and the possible solutions. */
export function loadNativeAddonFrom(candidates: readonly string[]): NativeAddon {
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  const failures: string[] = [];
  let missingOnly = true;
  for (const path of candidates) {
    tried.push(path);
    if (!existsSync(path)) {
      failures.push(`${path}: not found`);
      continue;
    }
    missingOnly = false;
    try {
      const addon = require(path) as NativeAddon;
      if (typeof addon.createEngine !== 'function') {
        failures.push(`${path}: loaded but has no createEngine() (an outdated build?)`);
        continue;
      }
      return addon;
    } catch (e) {
      failures.push(`${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (candidates.length === 0) failures.push('no candidate path (package root not found and CONNITO_NATIVE_ADDON unset)');
  const solutions = missingOnly
    ? [
        'build the addon: npm run build:addon (needs cmake and a C++17 compiler: apt-get install -y build-essential cmake)',
        'or reinstall the package so its install script builds it: npm ci',
        'or point CONNITO_NATIVE_ADDON at an existing connito_native.node',
      ]
    : [
        'rebuild the addon for this Node version and machine: npm run build:addon',
        'without CUDA: CONNITO_CUDA=0 npm run build:addon',
        'check the loader error above (a missing shared library shows its name; `ldd` the .node file)',
      ];
  throw new NativeAddonError(
    `could not load the native training engine (connito_native.node):\n` +
      failures.map((f) => `  - ${f}`).join('\n') +
      `\nPossible solutions:\n` +
      solutions.map((s) => `  - ${s}`).join('\n'),
    tried,
  );
}
