// The config module's public API. Every process of the tree reads its settings through it:
// `const { config, runDir } = await loadConfig(pathArg)`.
export { ConfigError, formatIssue, type ConfigErrorCode, type ConfigIssue } from './errors.js';
export {
  CONFIG_FILE_NAME,
  createConfigFile,
  defaultConfig,
  defaultRawConfig,
  expandHome,
  loadConfig,
  parseConfig,
  renderDefaultConfig,
  resolveRunDir,
  writeConfig,
  type ConfigPatch,
  type ConfigWarning,
  type ConfigWarningKind,
  type LoadedConfig,
  type RunLocation,
} from './load.js';
export {
  ConfigSchema,
  KNOWN_NETWORKS,
  LOCKED_FIELDS,
  RawConfigSchema,
  SECTION_ORDER,
  resolveNetworkUrl,
  type DataSource,
  type MinerConfig,
  type MinerConfigInput,
} from './schema.js';
