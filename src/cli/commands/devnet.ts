// connito-miner devnet: a whole local subnet (chain node, owner phase service, validators, miners run
// by the real supervisor) for a first rehearsal and for the end-to-end tests. `devnet chain …` runs
// the chain node alone (the `devnet-chain` command).
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger } from '../../telemetry/logger.js';
import { fail, parseCommandArgs } from '../args.js';

export const usage = `Usage: connito-miner devnet [--path DIR] [--miners N] [--validators N] [--cycles K] [--block-ms MS]
       connito-miner devnet chain [--port P] [--genesis FILE] [--block-ms N] …   (the chain node alone)

Run a whole Connito subnet on this machine and watch the miner's cycle: a local chain node speaking
the subtensor JSON-RPC protocol, the owner phase service, validators that distribute a baseline,
check and evaluate submissions and merge them, and N miners started as \`connito-miner start\`
(the real supervisor, task pool and trainer, on a tiny model and a synthetic math corpus).

The run narrates each cycle in plain lines and ends with one summary line:
  devnet summary: cycles=… versions=… loss=before→after commits=n/n accepted=n/n
Exit code 0 when every cycle completed and every miner's commits and submission were accepted.
Everything lives in DIR: wallets/, model/, validators/, miners/<name>/ (a miner's run directory
with config.yaml and miner.log) and devnet.log. Ctrl-C stops everything cleanly.

Options:
  --path DIR         run directory (default: a new directory under ${tmpdir()})
  --miners N         miners (default 1)
  --validators N     validators (default 1)
  --cycles K         cycles to run after the bootstrap cycle (default 1; 0 = until Ctrl-C)
  --block-ms MS      block time in milliseconds (default 150)
  -h, --help         show this help
`;

const options = {
  path: { type: 'string' },
  miners: { type: 'string' },
  validators: { type: 'string' },
  cycles: { type: 'string' },
  'block-ms': { type: 'string' },
} as const;

function intOption(name: string, v: string | undefined, dflt: number, min: number, max: number): number | string {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) return `--${name} must be an integer in [${min}, ${max}], got "${v}"`;
  return n;
}

export async function run(argv: string[]): Promise<number> {
  if (argv[0] === 'chain') {
    const chain = await import('./devnet-chain.js');
    return chain.run(argv.slice(1));
  }
  const v = parseCommandArgs(argv, options, usage);
  if (typeof v === 'number') return v;
  const miners = intOption('miners', v.miners, 1, 1, 16);
  const validators = intOption('validators', v.validators, 1, 1, 8);
  const cycles = intOption('cycles', v.cycles, 1, 0, 1_000_000);
  const blockMs = intOption('block-ms', v['block-ms'], 150, 20, 60_000);
  for (const x of [miners, validators, cycles, blockMs]) if (typeof x === 'string') return fail('devnet', `${x}\n\n${usage}`, 2);

  const dir = v.path !== undefined ? resolve(v.path) : await mkdtemp(join(tmpdir(), 'connito-devnet-'));
  await mkdir(dir, { recursive: true });
  const logStream = createWriteStream(join(dir, 'devnet.log'), { flags: 'a' });
  const logger = createLogger({ proc: 'devnet', json: true, destination: logStream, level: process.env.CONNITO_LOG_LEVEL ?? 'info' });

  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals += 1;
    if (signals === 1) {
      process.stdout.write(`\nreceived ${sig}: stopping the devnet (again to force)\n`);
      controller.abort(new Error(`received ${sig}`));
    } else {
      process.stderr.write('connito-miner devnet: forced exit\n');
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const { runDevnet } = await import('../../devnet/orchestrator.js');
    const result = await runDevnet({
      dir,
      miners: miners as number,
      validators: validators as number,
      cycles: cycles as number,
      blockMs: blockMs as number,
      logger,
      signal: controller.signal,
    });
    return result.code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await new Promise<void>((r) => logger.flush(() => r()));
    await new Promise<void>((r) => logStream.end(() => r()));
  }
}
