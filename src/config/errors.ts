// Config errors. Every message names the file and the field and says what to do, because the
// operator reading it is usually looking at a systemd journal, not at our source.

export type ConfigErrorCode =
  | 'CNM_ERR_CONFIG_NOT_FOUND'
  | 'CNM_ERR_CONFIG_PARSE'
  | 'CNM_ERR_CONFIG_INVALID'
  | 'CNM_ERR_CONFIG_EXISTS'
  | 'CNM_ERR_CONFIG_IO';

export interface ConfigIssue {
  /** Dotted field path, e.g. `chain.netuid` or `data.sources.0.path`. */
  field: string;
  /** What the field must be, e.g. `integer >= 0` or `one of "auto" | "cpu" | "cuda"`. */
  expected: string;
  /** The offending value as written (JSON), when there is one. */
  received?: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code: ConfigErrorCode;
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(code: ConfigErrorCode, file: string, message: string, issues: readonly ConfigIssue[] = []) {
    super(message);
    this.code = code;
    this.file = file;
    this.issues = issues;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  const got = issue.received === undefined ? '' : ` (got ${issue.received})`;
  return `${issue.field}: expected ${issue.expected}${got}`;
}

export function invalidConfig(file: string, issues: readonly ConfigIssue[]): ConfigError {
  const lines = issues.map((i) => `  - ${formatIssue(i)}`).join('\n');
  return new ConfigError(
    'CNM_ERR_CONFIG_INVALID',
    file,
    `invalid config ${file}:\n${lines}\nFix the field(s) above in ${file} (\`connito-miner init --help\` lists every field and its default).`,
    issues,
  );
}
