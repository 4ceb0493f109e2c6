// connito-miner start --path DIR: the supervisor in the foreground (systemd / pm2 style).
// Config and wallet are validated before anything starts: a bad field exits 2 naming it.
import { existsSync } from 'node:fs';
import { createLogger, type Logger } from '../../telemetry/logger.js';
import type { SupervisorPlugin } from '../../supervisor/index.js';
import { fail, parseCommandArgs } from '../args.js';
import { loadConfigOrFail } from '../load-config.js';
import { checkWallet } from '../wallet-check.js';

export const usage = `Usage: connito-miner start --path DIR

Run the miner in the foreground: the supervisor, its status server, the task pool and the
trainer child. Validates DIR/config.yaml and the wallet first. Stop it with SIGTERM/SIGINT/SIGHUP
(Ctrl-C) or \`connito-miner stop --path DIR\`; a clean stop exits 0.

Exit codes: 0 clean stop, 1 failure (already running, trainer gave up, unclean stop),
            2 configuration or usage error (the message names the file and field).

Options:
  --path DIR     run directory (or its config.yaml)   (required)
  -h, --help     show this help
`;

const options = { path: { type: 'string' } } as const;

export async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs(argv, options, usage);
  if (typeof v === 'number') return v;
  if (v.path === undefined) return fail('start', `--path is required\n\n${usage}`, 2);

  const loaded = await loadConfigOrFail('start', v.path);
  if (typeof loaded === 'number') return loaded;
  const c = loaded.config;
  const log = createLogger({
    proc: 'supervisor',
    level: process.env.CONNITO_LOG_LEVEL ?? c.log.level,
    ...(c.log.format === 'auto' ? {} : { json: c.log.format === 'json' }),
  });
  for (const w of loaded.warnings) log.warn({ field: w.field, config: loaded.configFile }, w.message);

  const wallet = await checkWallet(c, log);
  if (!wallet.ok) {
    log.error({ path: wallet.path }, wallet.message);
    await flush(log);
    return fail('start', wallet.message, 2);
  }

  const { PhaseClock, runSupervisor, trainerEntryOf } = await import('../../supervisor/index.js');
  const entry = trainerEntryOf(loaded);
  if (!existsSync(entry)) {
    const msg = `trainer entry ${entry} not found: ${c.trainer.entry === null ? 'build it with `npm run build`' : 'fix trainer.entry in ' + loaded.configFile}`;
    await flush(log);
    return fail('start', msg, 2);
  }
  // Plug-ins started with the supervisor and stopped before it (the phase clock registers here).
  const plugins: SupervisorPlugin[] = [new PhaseClock({ configFile: loaded.configFile })];
  const code = await runSupervisor({ loaded, logger: log, trainerEntry: entry, plugins });
  await flush(log);
  // Everything is closed by now; if a stray handle still holds the loop, do not hang on it.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}

function flush(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    log.flush(() => resolve());
  });
}
