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

export const commands: Record<string, CommandEntry> = {};
