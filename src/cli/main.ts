// Entry point of `connito-miner`. Subcommands are filled in by their modules.
const HELP = `connito-miner — Connito (Bittensor subnet 102) miner

Usage:
  connito-miner init --path DIR [options]     write DIR/config.yaml with every default
  connito-miner start --path DIR              run the miner (foreground)
  connito-miner stop --path DIR [--timeout S] stop a running miner gracefully
  connito-miner status --path DIR             show whether the miner runs and what it does
  connito-miner systemd --path DIR [--user] [--install]
  connito-miner --help
`;

const argv = process.argv.slice(2);
if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
  process.stdout.write(HELP);
  process.exit(0);
}
process.stderr.write(`connito-miner: unknown command "${argv[0]}"\n\n${HELP}`);
process.exit(2);
