// Loading, validating and writing DIR/config.yaml. `parseConfig` is pure (tests feed it objects);
// the rest does the file I/O around it.
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Document, isMap, isScalar, parseDocument, type Pair, type Scalar } from 'yaml';
import * as z from 'zod';
import { ConfigError, invalidConfig, type ConfigIssue } from './errors.js';
import {
  ConfigSchema,
  LOCKED_FIELDS,
  PATH_FIELDS,
  RawConfigSchema,
  SECTION_ORDER,
  type MinerConfig,
  type MinerConfigInput,
} from './schema.js';

export const CONFIG_FILE_NAME = 'config.yaml';

export interface RunLocation {
  /** Absolute run directory (DIR). */
  runDir: string;
  /** Absolute path of DIR/config.yaml (or the file given). */
  configFile: string;
}

export type ConfigWarningKind = 'unknown_key' | 'locked_changed';

export interface ConfigWarning {
  kind: ConfigWarningKind;
  field: string;
  message: string;
}

export interface LoadedConfig extends RunLocation {
  /** Validated, defaults filled, every path absolute. */
  config: MinerConfig;
  warnings: ConfigWarning[];
}

/**
 * `--path` is the run directory in the guide and the config file in the reference code
 * (PROTOCOL.md decision 2): accept both. A path ending in .yaml/.yml, or an existing file, is the
 * config file and its directory is the run directory.
 */
export function resolveRunDir(pathArg: string): RunLocation {
  const abs = resolve(expandHome(pathArg));
  let isFile = /\.ya?ml$/i.test(abs);
  if (existsSync(abs)) isFile = statSync(abs).isFile();
  return isFile ? { runDir: dirname(abs), configFile: abs } : { runDir: abs, configFile: join(abs, CONFIG_FILE_NAME) };
}

export function expandHome(p: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return join(homedir(), p.slice(2));
  return p;
}

/** The defaults, paths still relative as they are written in config.yaml. */
export function defaultConfig(): MinerConfig {
  return ConfigSchema.parse({});
}

/** The raw defaults (derived fields still null), as `init` writes them. */
export function defaultRawConfig(): z.output<typeof RawConfigSchema> {
  return RawConfigSchema.parse({});
}

/** Validate a parsed YAML value. Pure: no file access. Throws ConfigError naming each bad field. */
export function parseConfig(data: unknown, loc: RunLocation): { config: MinerConfig; warnings: ConfigWarning[] } {
  const input = data === null || data === undefined ? {} : data;
  if (!isPlainObject(input)) {
    throw invalidConfig(loc.configFile, [{ field: '(top level)', expected: `a mapping of sections (${SECTION_ORDER.join(', ')})`, received: describe(input) }]);
  }
  const result = ConfigSchema.safeParse(input);
  if (!result.success) {
    throw invalidConfig(loc.configFile, result.error.issues.map((i) => toConfigIssue(i, input)));
  }
  // A local subnet changes locked fields on purpose; only a live-subnet config is warned about them.
  const locked = result.data.devnet.enabled ? [] : lockedChanges(result.data);
  const warnings: ConfigWarning[] = [...unknownKeys(input), ...locked];
  return { config: resolvePaths(result.data, loc.runDir), warnings };
}

/** Read, validate and resolve DIR/config.yaml. `pathArg` may be DIR or the file itself. */
export async function loadConfig(pathArg: string): Promise<LoadedConfig> {
  const loc = resolveRunDir(pathArg);
  let text: string;
  try {
    text = await readFile(loc.configFile, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') {
      throw new ConfigError(
        'CNM_ERR_CONFIG_NOT_FOUND',
        loc.configFile,
        `no config at ${loc.configFile}: create one with \`connito-miner init --path ${loc.runDir}\``,
      );
    }
    throw new ConfigError('CNM_ERR_CONFIG_IO', loc.configFile, `cannot read ${loc.configFile}: ${e.message}`);
  }
  const doc = parseYaml(text, loc.configFile);
  const { config, warnings } = parseConfig(doc.toJS(), loc);
  return { ...loc, config, warnings };
}

/** A deep partial of the config: what `writeConfig` and `renderDefaultConfig` accept. */
export type ConfigPatch = { [S in keyof MinerConfigInput]?: MinerConfigInput[S] extends infer V ? (V extends object ? V extends unknown[] ? V : Partial<V> : V) : never };

/**
 * Apply `patch` to the config file in place, keeping every comment and the order of what is
 * there. The result is validated first: an invalid patch throws and leaves the file untouched.
 * A missing file is created from the defaults.
 */
export async function writeConfig(pathArg: string, patch: ConfigPatch): Promise<LoadedConfig> {
  const loc = resolveRunDir(pathArg);
  let text: string;
  try {
    text = await readFile(loc.configFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    text = renderDefaultConfig();
  }
  const doc = parseYaml(text, loc.configFile);
  for (const [path, value] of leaves(patch)) doc.setIn(path, value);
  const { config, warnings } = parseConfig(doc.toJS(), loc);
  await writeFileAtomic(loc.configFile, doc.toString({ lineWidth: 0 }));
  return { ...loc, config, warnings };
}

/**
 * Write a fresh commented config.yaml (defaults + `overrides`). Refuses to replace an existing
 * file unless `force`.
 */
export async function createConfigFile(pathArg: string, overrides: ConfigPatch = {}, opts: { force?: boolean } = {}): Promise<LoadedConfig> {
  const loc = resolveRunDir(pathArg);
  const text = renderDefaultConfig(overrides);
  const { config, warnings } = parseConfig(parseYaml(text, loc.configFile).toJS(), loc);
  await mkdir(loc.runDir, { recursive: true });
  if (!opts.force && existsSync(loc.configFile)) {
    throw new ConfigError(
      'CNM_ERR_CONFIG_EXISTS',
      loc.configFile,
      `${loc.configFile} already exists; not overwriting it. Edit it, or pass --force to replace it with the defaults.`,
    );
  }
  await writeFileAtomic(loc.configFile, text, !opts.force);
  return { ...loc, config, warnings };
}

const HEADER = [
  ' connito-miner configuration (Connito, Bittensor subnet 102).',
  ' Every field is spelled out with its default. Sections run..local_par follow the reference',
  ' miner (shared/config.py) so a reference config.yaml loads unchanged; status, trainer,',
  ' supervisor, data and devnet are connito-miner\'s own. Relative paths resolve against',
  ' run.root_path ("." = this file\'s directory). Fields marked LOCKED must match the live subnet.',
].join('\n');

/** A fully commented config.yaml with every default spelled out (and `overrides` applied). */
export function renderDefaultConfig(overrides: ConfigPatch = {}): string {
  const raw = RawConfigSchema.safeParse(deepMerge({}, overrides));
  if (!raw.success) throw invalidConfig('(command-line options)', raw.error.issues.map((i) => toConfigIssue(i, overrides)));
  const doc = new Document(raw.data);
  doc.commentBefore = HEADER;
  const schema = jsonSchema();
  const top = doc.contents;
  if (!isMap(top)) throw new Error('unreachable: the config renders as a mapping');
  let first = true;
  for (const pair of top.items as Pair<Scalar, unknown>[]) {
    const section = String(pair.key.value);
    const sectionSchema = schema.properties?.[section];
    commentPair(pair, sectionSchema?.description, first ? false : true, LOCKED_FIELDS.includes(section));
    first = false;
    if (isMap(pair.value)) commentMap(pair.value.items as Pair<Scalar, unknown>[], sectionSchema, section);
  }
  return doc.toString({ lineWidth: 0 });
}

function commentMap(items: Pair<Scalar, unknown>[], schema: JsonSchema | undefined, prefix: string): void {
  for (const pair of items) {
    const key = String(pair.key.value);
    const field = `${prefix}.${key}`;
    const fieldSchema = schema?.properties?.[key];
    commentPair(pair, fieldSchema?.description, isMap(pair.value), LOCKED_FIELDS.includes(field));
    if (isMap(pair.value)) commentMap(pair.value.items as Pair<Scalar, unknown>[], fieldSchema, field);
  }
}

function commentPair(pair: Pair<Scalar, unknown>, description: string | undefined, spaceBefore: boolean, locked: boolean): void {
  const text = [description, locked ? 'LOCKED (must match the live subnet).' : undefined]
    .filter((s): s is string => s !== undefined)
    .join(' ');
  if (!isScalar(pair.key)) return;
  if (text !== '') pair.key.commentBefore = text.split('\n').map((l) => ` ${l}`).join('\n');
  if (spaceBefore) pair.key.spaceBefore = true;
}

// ---------------------------------------------------------------------------------------------

interface JsonSchema {
  type?: string | string[];
  description?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  const?: unknown;
}

let cachedJsonSchema: JsonSchema | undefined;
function jsonSchema(): JsonSchema {
  cachedJsonSchema ??= z.toJSONSchema(RawConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return cachedJsonSchema;
}

function unknownKeys(input: Record<string, unknown>): ConfigWarning[] {
  const out: ConfigWarning[] = [];
  const walk = (value: unknown, schema: JsonSchema | undefined, path: string): void => {
    if (schema === undefined) return;
    const variants = schema.oneOf ?? schema.anyOf;
    if (variants !== undefined) {
      const tag = isPlainObject(value) ? value['type'] : undefined;
      walk(value, variants.find((v) => v.properties?.['type']?.const === tag), path);
      return;
    }
    if (isPlainObject(value) && schema.properties !== undefined) {
      for (const [k, v] of Object.entries(value)) {
        const field = path === '' ? k : `${path}.${k}`;
        const child = schema.properties[k];
        if (child === undefined) {
          out.push({ kind: 'unknown_key', field, message: `unknown key "${field}" ignored (misspelt? \`connito-miner init --help\` lists the fields)` });
        } else {
          walk(v, child, field);
        }
      }
    } else if (Array.isArray(value) && schema.items !== undefined) {
      value.forEach((v, i) => walk(v, schema.items, `${path}.${i}`));
    }
  };
  walk(input, jsonSchema(), '');
  return out;
}

function lockedChanges(config: MinerConfig): ConfigWarning[] {
  const defaults = defaultConfig();
  const out: ConfigWarning[] = [];
  for (const field of LOCKED_FIELDS) {
    const path = field.split('.');
    const want = getIn(defaults, path);
    const got = getIn(config, path);
    if (JSON.stringify(want) !== JSON.stringify(got)) {
      out.push({
        kind: 'locked_changed',
        field,
        message: `locked field ${field} is ${JSON.stringify(got)}, not the subnet's ${JSON.stringify(want)}: validators of the live subnet will not accept this miner (fine for a local subnet)`,
      });
    }
  }
  return out;
}

function resolvePaths(config: MinerConfig, runDir: string): MinerConfig {
  const out = structuredClone(config);
  const root = resolve(runDir, expandHome(out.run.root_path));
  out.run.root_path = root;
  // Bases first: the ckpt paths resolve against the resolved base.
  const order = [...PATH_FIELDS].sort((a, b) => (a[1] === b[1] ? 0 : a[1] === 'root' ? -1 : 1));
  for (const [field, relativeTo] of order) {
    const path = field.split('.');
    const value = getIn(out, path);
    if (typeof value !== 'string') continue;
    const base = relativeTo === 'root' ? root : out.ckpt.base_checkpoint_path;
    setIn(out, path, resolve(base, expandHome(value)));
  }
  out.data.sources = out.data.sources.map((s) => ('path' in s ? { ...s, path: resolve(root, expandHome(s.path)) } : s));
  return out;
}

function toConfigIssue(issue: z.core.$ZodIssue, input: unknown): ConfigIssue {
  const field = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
  const value = getIn(input, issue.path.map((p) => (typeof p === 'symbol' ? p.toString() : p)));
  const received = value === undefined ? (issue.code === 'invalid_type' ? 'nothing' : undefined) : describe(value);
  return received === undefined ? { field, expected: expectedText(issue) } : { field, expected: expectedText(issue), received };
}

function expectedText(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`;
    case 'too_small': {
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return 'a non-empty string';
      if (issue.origin === 'array') return `at least ${issue.minimum} entries`;
      return `a ${issue.origin} ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`;
    }
    case 'too_big':
      return `a ${issue.origin} ${issue.inclusive ? '<=' : '<'} ${issue.maximum}`;
    case 'invalid_value':
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(' | ')}`;
    case 'invalid_union': {
      const options = (issue as { options?: unknown[] }).options;
      if (options !== undefined) return `"type" one of ${options.map((v) => JSON.stringify(v)).join(' | ')}`;
      return 'one of the allowed forms';
    }
    case 'invalid_format':
      return issue.format === 'url' ? 'a URL (http:// or https://)' : `a ${issue.format}`;
    case 'unrecognized_keys':
      return `no keys ${issue.keys.join(', ')}`;
    default:
      return issue.message;
  }
}

function parseYaml(text: string, file: string): Document {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const where = first.linePos?.[0] ? `line ${first.linePos[0].line}, column ${first.linePos[0].col}` : 'unknown position';
    throw new ConfigError('CNM_ERR_CONFIG_PARSE', file, `${file}: not valid YAML at ${where}: ${first.message.split('\n')[0]}`);
  }
  return doc;
}

async function writeFileAtomic(file: string, text: string, exclusive = false): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    if (exclusive && existsSync(file)) {
      throw new ConfigError('CNM_ERR_CONFIG_EXISTS', file, `${file} already exists; not overwriting it. Pass --force to replace it.`);
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

function leaves(obj: object, prefix: string[] = []): [string[], unknown][] {
  const out: [string[], unknown][] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (isPlainObject(v)) out.push(...leaves(v, [...prefix, k]));
    else out.push([[...prefix, k], v]);
  }
  return out;
}

function deepMerge(target: Record<string, unknown>, patch: object): Record<string, unknown> {
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    const cur = target[k];
    target[k] = isPlainObject(v) ? deepMerge(isPlainObject(cur) ? cur : {}, v) : v;
  }
  return target;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getIn(obj: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = obj;
  for (const p of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

function setIn(obj: object, path: readonly string[], value: unknown): void {
  let cur = obj as Record<string, unknown>;
  for (const p of path.slice(0, -1)) cur = cur[p] as Record<string, unknown>;
  cur[path[path.length - 1]!] = value;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}

