// Shared argument handling of the commands: node:util parseArgs, --help, and exit code 2 with the
// usage on any usage error.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type Options = NonNullable<ParseArgsConfig['options']>;

export type Parsed<O extends Options> = { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string };

/** Parse `argv`; returns the values, or an exit code after printing help (0) or a usage error (2). */
export function parseCommandArgs<O extends Options>(argv: string[], options: O, usage: string): Parsed<O> | number {
  let values: Parsed<O>;
  try {
    values = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true }).values as Parsed<O>;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if ((values as Record<string, unknown>)['help'] === true) {
    process.stdout.write(usage);
    return 0;
  }
  return values;
}

export function fail(command: string, message: string, code: number): number {
  process.stderr.write(`connito-miner ${command}: ${message}\n`);
  return code;
}

/** Parse a numeric option; NaN is kept as the original string so config validation names it. */
export function numberOption(v: string | undefined): number | string | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) ? n : v;
}
