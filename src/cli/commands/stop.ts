// connito-miner stop --path DIR: SIGTERM to the supervisor through the pid file, then wait.
import { loadConfig, resolveRunDir } from '../../config/index.js';
import { readPidFile, readRunState } from '../../supervisor/index.js';
import { fail, parseCommandArgs } from '../args.js';

export const usage = `Usage: connito-miner stop --path DIR [--timeout S]

Send SIGTERM to the miner running in DIR and wait until it has exited (the trainer writes its
final save first). Exits 0 once it stopped; 1 when nothing runs or when it is still running
after the timeout.

Options:
  --path DIR      run directory (or its config.yaml)        (required)
  --timeout S     seconds to wait (default: supervisor.shutdown_timeout_sec + 30, i.e. 330)
  -h, --help      show this help
`;

const options = { path: { type: 'string' }, timeout: { type: 'string' } } as const;

export async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs(argv, options, usage);
  if (typeof v === 'number') return v;
  if (v.path === undefined) return fail('stop', `--path is required\n\n${usage}`, 2);
  const { runDir } = resolveRunDir(v.path);

  let timeoutSec: number;
  if (v.timeout !== undefined) {
    timeoutSec = Number(v.timeout);
    if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) return fail('stop', `--timeout: expected a number of seconds > 0 (got ${JSON.stringify(v.timeout)})`, 2);
  } else {
    timeoutSec = await loadConfig(v.path).then(
      (l) => l.config.supervisor.shutdown_timeout_sec + 30,
      () => 330,
    );
  }

  const pf = readPidFile(runDir);
  if (!pf.running) {
    const why = pf.pid === null ? `no pid file at ${pf.path}` : `stale pid file ${pf.path}: pid ${pf.pid} is not running`;
    return fail('stop', `connito-miner is not running in ${runDir} (${why}); nothing to stop`, 1);
  }
  if (pf.pid === null) return fail('stop', `${pf.path} is locked but holds no pid; stop the process holding it by hand`, 1);
  const pid = pf.pid;
  const state = readRunState(runDir);
  if (state?.systemdUnit) {
    process.stderr.write(
      `note: this miner runs under systemd (${state.systemdUnit}); prefer \`systemctl stop ${state.systemdUnit}\` ` +
        `(add --user for a user unit) so systemd knows it was stopped on purpose.\n`,
    );
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch (err) {
    return fail('stop', `cannot signal pid ${pid}: ${(err as Error).message}`, 1);
  }
  process.stdout.write(`sent SIGTERM to connito-miner (pid ${pid}); waiting up to ${timeoutSec} s for the final save\n`);
  const start = Date.now();
  let lastReport = start;
  while (Date.now() - start < timeoutSec * 1000) {
    await sleep(200);
    if (!readPidFile(runDir).running) {
      process.stdout.write(`connito-miner (pid ${pid}) stopped after ${((Date.now() - start) / 1000).toFixed(1)} s\n`);
      return 0;
    }
    if (Date.now() - lastReport >= 5000) {
      lastReport = Date.now();
      process.stdout.write(`  still stopping… ${Math.round((lastReport - start) / 1000)} s / ${timeoutSec} s\n`);
    }
  }
  return fail(
    'stop',
    `connito-miner (pid ${pid}) is still running after ${timeoutSec} s. It escalates on its own when its shutdown budget ends; ` +
      `\`kill -KILL ${pid}\` forces it now (the trainer's final save may be lost).`,
    1,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
