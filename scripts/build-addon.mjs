#!/usr/bin/env node
// Builds the native addons at `npm install`/`npm ci`: cmake-js (CMakeLists.txt) when cmake exists,
// else node-gyp (binding.gyp, CPU only). Skips when the built addons are newer than every source
// unless --force. Nothing is downloaded: cmake-js takes the headers from node-api-headers
// ("binary.napi_versions" in package.json), node-gyp from the local Node installation.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
const outputs = ['connito_sys.node', 'connito_native.node'].map((f) => join(root, 'build', 'Release', f));

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

if (!force && outputs.every((f) => existsSync(f))) {
  const built = Math.min(...outputs.map((f) => statSync(f).mtimeMs));
  const sources = Math.max(newestSource(join(root, 'native')), statSync(join(root, 'CMakeLists.txt')).mtimeMs);
  if (built > sources) {
    console.log('connito-miner: native addons are up to date');
    process.exit(0);
  }
}

function run(cmd, args) {
  console.log(`connito-miner: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  return r.status === 0;
}

const hasCmake = spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status === 0;
const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
const jobs = String(Math.max(1, Number(process.env.CONNITO_BUILD_JOBS) || 2));
let ok = false;
if (hasCmake && existsSync(cmakeJs)) {
  const args = [cmakeJs, 'compile', '--parallel', jobs];
  if (process.env.CONNITO_CUDA === '0') args.push('--CDCONNITO_CUDA=OFF');
  ok = run(process.execPath, args);
} else {
  console.log('connito-miner: cmake not found, building the CPU-only addon with node-gyp (binding.gyp)');
  const gyp = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  ok = run(process.execPath, [gyp, 'rebuild', `-j${jobs}`]);
}
if (!ok) {
  console.error(
    'connito-miner: building the native addon failed.\n' +
      'Possible solutions:\n' +
      '  - install a C++17 compiler and cmake: apt-get install -y build-essential cmake\n' +
      '  - build without CUDA: CONNITO_CUDA=0 npm run build:addon\n' +
      '  - read the compiler output above for the first error',
  );
  process.exit(1);
}
