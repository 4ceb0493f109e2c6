// The command table. Modules are loaded lazily so `--help` stays fast and a command's heavy
// dependencies (polkadot, fastify, the addon) load only when it runs.
export interface CommandModule {
  run(argv: string[]): Promise<number>;
}

export interface CommandEntry {
  synopsis: string;
  summary: string;
  load(): Promise<CommandModule>;
}

export const commands: Record<string, CommandEntry> = {
  init: { synopsis: 'init --path DIR [--wallet W --hotkey H ...]', summary: 'write DIR/config.yaml with every default', load: () => import('./init.js') },
  start: { synopsis: 'start --path DIR', summary: 'run the miner in the foreground (supervisor)', load: () => import('./start.js') },
  stop: { synopsis: 'stop --path DIR [--timeout S]', summary: 'stop the running miner and wait for it', load: () => import('./stop.js') },
  status: { synopsis: 'status --path DIR [--json]', summary: 'is it running; phase, trainer, loss', load: () => import('./status.js') },
  systemd: { synopsis: 'systemd --path DIR [--user] [--install]', summary: 'print or install a systemd unit', load: () => import('./systemd.js') },
  wallet: { synopsis: 'wallet [--path DIR | --wallet-path D --wallet W --hotkey H]', summary: 'show the coldkey/hotkey addresses in use', load: () => import('./wallet.js') },
  devnet: { synopsis: 'devnet [--path DIR] [--miners N] [--validators N] [--cycles K]', summary: 'a whole local subnet: chain, owner service, validators, miners', load: () => import('./devnet.js') },
  'devnet-chain': { synopsis: 'devnet-chain [--port P] [--genesis FILE] [--block-ms N]', summary: 'run the local chain node alone; prints its URL', load: () => import('./devnet-chain.js') },
};
