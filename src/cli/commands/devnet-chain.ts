// connito-miner devnet-chain: the local chain node (devnode) alone, for operators' own scripts.
import { readFile } from 'node:fs/promises';
import { defaultGenesis, GenesisError, parseGenesis, startDevnode } from '../../devnet/chain/index.js';
import { createLogger } from '../../telemetry/logger.js';
import { fail, parseCommandArgs } from '../args.js';

export const usage = `Usage: connito-miner devnet-chain [--port P] [--genesis FILE] [--block-ms N] [--history N]
                                   [--allow-loopback-axon] [--print-genesis]

Run a local subtensor stand-in on 127.0.0.1: it speaks the Substrate JSON-RPC protocol with the real
subtensor runtime metadata (spec 393), so @polkadot/api, the miner and your own scripts work against it
unchanged. Its URL (ws://127.0.0.1:P) is the only line on stdout; logs go to stderr. Ctrl-C (SIGINT) or
SIGTERM stops it.

The genesis is a JSON file describing subnet 102: neurons (hotkey, coldkey, stake, validatorPermit,
lastUpdate, axon), funded accounts and initial commitments; addresses may be SS58 or dev URIs such as
//Alice. Without --genesis: //Alice (validator), //Bob and //Charlie (miners). --print-genesis prints that
default as a starting point and exits.

Options:
  --port P               TCP port (default 9944; 0 = any free port)
  --genesis FILE         genesis JSON
  --block-ms N           block time in milliseconds (default 1000)
  --history N            blocks of state kept for historical reads (default 4096)
  --allow-loopback-axon  let serve_axon announce 127.0.0.1 (finney refuses it; a one-host devnet needs it)
  --print-genesis        print the default genesis JSON and exit
  -h, --help             show this help
`;

const options = {
  port: { type: 'string' },
  genesis: { type: 'string' },
  'block-ms': { type: 'string' },
  history: { type: 'string' },
  'allow-loopback-axon': { type: 'boolean' },
  'print-genesis': { type: 'boolean' },
} as const;

function intOption(name: string, v: string | undefined, dflt: number, min: number, max: number): number | string {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) return `--${name} must be an integer in [${min}, ${max}], got "${v}"`;
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs(argv, options, usage);
  if (typeof v === 'number') return v;
  if (v['print-genesis']) {
    process.stdout.write(`${JSON.stringify(defaultGenesis(), null, 2)}\n`);
    return 0;
  }
  const port = intOption('port', v.port, 9944, 0, 65535);
  const blockMs = intOption('block-ms', v['block-ms'], 1000, 10, 3_600_000);
  const history = intOption('history', v.history, 4096, 1, 10_000_000);
  for (const x of [port, blockMs, history]) if (typeof x === 'string') return fail('devnet-chain', `${x}\n\n${usage}`, 2);

  let genesis: unknown = defaultGenesis();
  if (v.genesis !== undefined) {
    try {
      genesis = JSON.parse(await readFile(v.genesis, 'utf8'));
    } catch (e) {
      return fail('devnet-chain', `cannot read genesis ${v.genesis}: ${(e as Error).message}`, 2);
    }
  }
  // stdout carries only the URL (scripts read its first line); logs go to stderr.
  const log = createLogger({ proc: 'devnet', destination: process.stderr });
  let node;
  try {
    node = await startDevnode({
      genesis: parseGenesis(genesis, v.genesis ?? 'default genesis'),
      port: port as number,
      blockMs: blockMs as number,
      historyBlocks: history as number,
      allowLoopbackAxon: v['allow-loopback-axon'] === true,
      logger: log,
    });
  } catch (e) {
    if (e instanceof GenesisError) return fail('devnet-chain', e.message, 2);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      return fail('devnet-chain', `port ${String(port)} is in use: pick another with --port (0 = any free port)`, 2);
    }
    throw e;
  }
  process.stdout.write(`${node.url}\n`);
  log.info(
    { url: node.url, netuid: node.chain.genesis.netuid, neurons: node.chain.neurons.map((n) => n.hotkey), block_ms: blockMs },
    'devnode running; Ctrl-C stops it',
  );
  await new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      log.info({ signal: sig }, 'devnode stopping');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await node.stop();
  return 0;
}
