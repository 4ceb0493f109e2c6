// connito-miner systemd --path DIR [--user] [--install]: print or install the unit.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderSystemdUnit } from '../../supervisor/systemd-unit.js';
import { fail, parseCommandArgs } from '../args.js';
import { loadConfigOrFail } from '../load-config.js';

export const usage = `Usage: connito-miner systemd --path DIR [--user] [--install [--force]] [--name NAME]

Print a systemd unit that runs \`connito-miner start --path DIR\` (Type=notify, clean stop on
SIGTERM, restart on failure, watchdog). With --install, write it to
/etc/systemd/system/NAME.service (or ~/.config/systemd/user/NAME.service with --user) and print
the systemctl commands that enable it.

Options:
  --path DIR     run directory (or its config.yaml)            (required)
  --user         a user unit (systemctl --user) instead of a system unit
  --install      write the unit file instead of printing it
  --force        replace an existing unit file (with --install)
  --name NAME    unit name (default connito-miner-<DIR name>)
  -h, --help     show this help
`;

const options = {
  path: { type: 'string' },
  user: { type: 'boolean' },
  install: { type: 'boolean' },
  force: { type: 'boolean' },
  name: { type: 'string' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs(argv, options, usage);
  if (typeof v === 'number') return v;
  if (v.path === undefined) return fail('systemd', `--path is required\n\n${usage}`, 2);
  const loaded = await loadConfigOrFail('systemd', v.path);
  if (typeof loaded === 'number') return loaded;
  const user = v.user === true;
  const scriptPath = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'connito-miner.js');
  const me = userInfo().username;
  const unit = renderSystemdUnit({
    config: loaded.config,
    runDir: loaded.runDir,
    nodePath: process.execPath,
    scriptPath,
    user,
    runAs: process.getuid?.() === 0 ? null : me,
  });
  const name = (v.name ?? `connito-miner-${basename(loaded.runDir)}`).replace(/\.service$/, '').replace(/[^A-Za-z0-9:_.\\-]/g, '-');
  if (!/^[A-Za-z0-9:_.\\-]+$/.test(name)) return fail('systemd', `--name: not a valid unit name: ${JSON.stringify(name)}`, 2);
  if (!v.install) {
    process.stdout.write(unit);
    return 0;
  }
  const dir = user ? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'systemd', 'user') : '/etc/systemd/system';
  const file = join(dir, `${name}.service`);
  if (existsSync(file) && !v.force) return fail('systemd', `${file} already exists; pass --force to replace it`, 1);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(file, unit, { mode: 0o644 });
  } catch (err) {
    return fail('systemd', `cannot write ${file}: ${(err as Error).message}${user ? '' : ' (system units need root; or use --user)'}`, 1);
  }
  const sc = user ? 'systemctl --user' : 'systemctl';
  process.stdout.write(
    `wrote ${file}\nnext:\n  ${sc} daemon-reload\n  ${sc} enable --now ${name}\n  journalctl ${user ? '--user ' : ''}-u ${name} -f\n` +
      (user ? `  (to keep it running after logout: loginctl enable-linger ${me})\n` : ''),
  );
  return 0;
}
