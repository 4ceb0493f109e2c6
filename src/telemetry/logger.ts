// One pino logger factory for every process of the tree. JSON lines on stdout; pretty when stdout
// is a TTY (operators watching a terminal) unless CONNITO_LOG_FORMAT=json. Event names follow the
// reference miner guide (e.g. "<MinerCommit1> committing") so operators' habits carry over.
import pino, { type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export type ProcName = 'supervisor' | 'trainer' | 'worker' | 'devnet' | 'cli' | (string & {});

export interface LoggerConfig {
  /** Which process of the tree logs: becomes the `proc` binding of every line. */
  proc: ProcName;
  level?: string;
  /** Force JSON (true) or pretty (false); default: pretty only when stdout is a TTY. */
  json?: boolean;
  /** Write here instead of stdout (tests). */
  destination?: NodeJS.WritableStream | pino.DestinationStream;
}

// Never let a secret reach a log line, whatever a caller passes in.
const SECRET_KEYS = ['seed', 'secretPhrase', 'secretSeed', 'secretKey', 'privateKey', 'mnemonic'];
const REDACT = [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`)];

export function createLogger(cfg: LoggerConfig): Logger {
  const level = cfg.level ?? process.env.CONNITO_LOG_LEVEL ?? 'info';
  const options: LoggerOptions = {
    level,
    base: { proc: cfg.proc, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  if (cfg.destination !== undefined) {
    return pino(options, cfg.destination as pino.DestinationStream);
  }
  const pretty = cfg.json === undefined ? process.stdout.isTTY === true && process.env.CONNITO_LOG_FORMAT !== 'json' : !cfg.json;
  if (pretty) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss', ignore: 'pid,hostname' } },
    });
  }
  return pino(options, pino.destination({ dest: 1, sync: false }));
}
