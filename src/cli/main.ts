// Entry point of `connito-miner`: dispatches to src/cli/commands/<name>.ts.
// Each command module exports `run(argv: string[]): Promise<number>` (the exit code) and `usage`.
import { commands } from './commands/index.js';

function help(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  connito-miner ${c.synopsis.padEnd(48)} ${c.summary}`);
  return `connito-miner — Connito (Bittensor subnet 102) miner\n\nUsage:\n${lines.join('\n')}\n  connito-miner <command> --help\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return 0;
  }
  if (name === '--version' || name === '-V') {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const command = commands[name];
  if (command === undefined) {
    process.stderr.write(`connito-miner: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  const mod = await command.load();
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`connito-miner: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
