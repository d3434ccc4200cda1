import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { MASK, redactUrl } from './redact.js';
import { configSchema, type BerthConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** Explicit config file; otherwise BERTH_CONFIG, otherwise ./berth.yaml if present. */
  file?: string;
  env?: NodeJS.ProcessEnv;
}

export interface LoadedConfig {
  config: BerthConfig;
  /** The file that was read, if any. */
  file: string | null;
  /** Things that are not errors but are probably mistakes (a misspelt BERTH_* variable), for the CLI to print. */
  warnings: string[];
}

const ENV_PREFIX = 'BERTH_';

/** Reads YAML, applies BERTH_* environment overrides, validates, and resolves paths. */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env.BERTH_CONFIG ?? (existsSync('berth.yaml') ? 'berth.yaml' : null);
  let raw: unknown = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    try {
      raw = YAML.parse(text) ?? {};
    } catch (err) {
      throw new ConfigError(`config file ${file} is not valid YAML: ${(err as Error).message}`);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`config file ${file} must be a YAML mapping`);
  }
  const fromFile = coerceToSchema(raw as Record<string, unknown>);
  const { merged, sources, unknown } = mergeEnv(fromFile, env);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${describeIssue(issue, sources)}`);
    throw new ConfigError(`invalid configuration${file ? ` in ${file}` : ''}:\n${lines.join('\n')}`);
  }
  return { config: resolveConfigPaths(result.data), file, warnings: unknown.map(unknownVariableWarning) };
}

/**
 * Distribution-style overrides: BERTH_HTTP_ADDR sets http.addr, BERTH_STORAGE_DELETE_ENABLED
 * sets storage.delete.enabled. Underscores separate levels; values are parsed as YAML scalars
 * so "true" and "4096" become a boolean and a number.
 */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  return mergeEnv(raw, env).merged;
}

/**
 * BERTH_* variables that are not configuration keys but are read elsewhere: the config file's
 * name, the initial admin's password, a cluster worker's place (BERTH_WORKER, src/cluster.ts),
 * the admin API's response check (BERTH_API_CHECK_RESPONSES, src/http/api/index.ts; the tests
 * turn it on) and the test suite's switches (BERTH_TEST_*).
 */
const NON_KEY_VARIABLES = /^BERTH_(CONFIG|ADMIN_PASSWORD|WORKER|API_CHECK_RESPONSES|TEST_\w+)$/;

/** applyEnvOverrides, also telling which variable set which key, and which BERTH_* variables name no key. */
function mergeEnv(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): { merged: Record<string, unknown>; sources: Map<string, string>; unknown: string[] } {
  const out: Record<string, unknown> = structuredClone(raw);
  const sources = new Map<string, string>();
  const unknown: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined || NON_KEY_VARIABLES.test(name)) continue;
    const keyPath = envKeyPath(name.slice(ENV_PREFIX.length).toLowerCase().split('_'));
    if (!keyPath) {
      unknown.push(name);
      continue;
    }
    // The value is shown in error messages: a secret (BERTH_SECRETS_KEY, a URL's password) is masked.
    sources.set(keyPath.join('.'), `${name}=${JSON.stringify(redactConfig(value, keyPath[keyPath.length - 1], keyPath.join('.')))}`);
    let target: Record<string, unknown> = out;
    for (const key of keyPath.slice(0, -1)) {
      const next = target[key];
      if (next === null || typeof next !== 'object') target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[keyPath[keyPath.length - 1] as string] = coerceValue(parseScalar(value), schemaAt(keyPath), keyPath);
  }
  return { merged: out, sources, unknown: unknown.sort() };
}

/** The schema of the key at `keyPath`, unwrapped from defaults and optionals (undefined if there is none). */
function schemaAt(keyPath: string[]): z.ZodType | undefined {
  let shape: z.ZodType | undefined = configSchema;
  for (const key of keyPath) shape = unwrapObject(shape)?.shape[key] as z.ZodType | undefined;
  return unwrapLeaf(shape);
}

function unwrapLeaf(schema: z.ZodType | undefined): z.ZodType | undefined {
  let current: unknown = schema;
  for (let i = 0; i < 10 && current; i++) {
    const def = (current as { def?: { type?: string; innerType?: unknown } }).def;
    if (def?.type !== 'default' && def?.type !== 'optional' && def?.type !== 'prefault' && def?.type !== 'nullable') break;
    current = def.innerType;
  }
  return current as z.ZodType | undefined;
}

/** The words booleans are written with besides true/false (YAML 1.1 and Distribution configs accept them). */
const BOOLEAN_WORDS: Record<string, boolean> = {
  true: true,
  false: false,
  yes: true,
  no: false,
  on: true,
  off: false,
  '1': true,
  '0': false,
};
const BOOLEAN_HINT = 'expected true or false (yes/no, on/off, 1/0 are accepted too)';
const ADDR_HINT = "expected a listen address such as ':5000', '0.0.0.0:5000' or '127.0.0.1:5000' (or a port number)";

/**
 * Lenient readings of a value for the key's type: "yes", "on", 1 … for a boolean; a bare port
 * number for http.addr (`addr: 5000` means all interfaces, like the default 0.0.0.0:5000).
 * Anything else is left for the schema to judge.
 */
function coerceValue(value: unknown, schema: z.ZodType | undefined, keyPath: string[]): unknown {
  if (schema instanceof z.ZodBoolean && (typeof value === 'string' || typeof value === 'number')) {
    const word = String(value).trim().toLowerCase();
    return word in BOOLEAN_WORDS ? BOOLEAN_WORDS[word] : value;
  }
  if (keyPath.join('.') === 'http.addr' && typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65535)
    return `0.0.0.0:${value}`;
  return value;
}

/** coerceValue over every leaf of a config file's mapping. */
function coerceToSchema(raw: Record<string, unknown>, keyPath: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const here = [...keyPath, key];
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && unwrapObject(schemaAt(here)))
      out[key] = coerceToSchema(value as Record<string, unknown>, here);
    else out[key] = coerceValue(value, schemaAt(here), here);
  }
  return out;
}

/** One line per problem: the key, the variable that set it (if one did), and what is expected. */
function describeIssue(issue: z.core.$ZodIssue, sources: Map<string, string>): string {
  const key = issue.path.join('.');
  const source = sources.get(key);
  let message = issue.message;
  if (issue.code === 'invalid_type' && issue.expected === 'boolean') message = BOOLEAN_HINT;
  else if (key === 'http.addr') message = ADDR_HINT;
  return `${key || '(root)'}: ${message}${source ? `; set by ${source}` : ''}`;
}

/** Every key as its environment variable (http.addr → BERTH_HTTP_ADDR), for "did you mean". */
function knownVariables(schema: z.ZodType | undefined = configSchema, prefix = ENV_PREFIX): string[] {
  const obj = unwrapObject(schema);
  if (!obj) return [prefix.slice(0, -1)];
  return Object.entries(obj.shape).flatMap(([key, inner]) => knownVariables(inner as z.ZodType, `${prefix}${key.toUpperCase()}_`));
}

function unknownVariableWarning(name: string): string {
  const known = knownVariables();
  const [closest] = known.map((k) => ({ k, d: editDistance(name, k) })).sort((a, b) => a.d - b.d);
  const hint =
    closest && closest.d <= Math.max(3, Math.floor(name.length / 4))
      ? `; did you mean ${closest.k}?`
      : ' (`berth config check` lists every key)';
  return `${name} is not a Berth setting and is ignored${hint}`;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** Maps env words onto known schema keys, so keys never collide with unrelated BERTH_* variables. */
function envKeyPath(words: string[]): string[] | null {
  let shape: z.ZodType | undefined = configSchema;
  const keys: string[] = [];
  for (const word of words) {
    const obj = unwrapObject(shape);
    if (!obj || !(word in obj.shape)) return null;
    keys.push(word);
    shape = obj.shape[word] as z.ZodType;
  }
  return keys.length > 0 ? keys : null;
}

function unwrapObject(schema: z.ZodType | undefined): z.ZodObject | null {
  let current: unknown = schema;
  for (let i = 0; i < 10 && current; i++) {
    if (current instanceof z.ZodObject) return current;
    const def = (current as { def?: { innerType?: unknown; in?: unknown; schema?: unknown } }).def;
    current = def?.innerType ?? def?.in ?? def?.schema;
  }
  return null;
}

function parseScalar(value: string): unknown {
  if (value === '') return value;
  try {
    const parsed: unknown = YAML.parse(value);
    return typeof parsed === 'object' && parsed !== null ? value : parsed;
  } catch {
    return value;
  }
}

/** Makes every path absolute and fills in the paths derived from data.dir. */
export function resolveConfigPaths(config: BerthConfig): BerthConfig {
  const dataDir = path.resolve(config.data.dir);
  return {
    ...config,
    data: { dir: dataDir },
    storage: {
      ...config.storage,
      // The filesystem driver is the default, so it gets a root only when S3 is not configured.
      filesystem: config.storage.s3
        ? undefined
        : { rootdirectory: path.resolve(config.storage.filesystem?.rootdirectory ?? path.join(dataDir, 'storage')) },
    },
    metadata: {
      ...config.metadata,
      path:
        config.metadata.driver === 'sqlite' ? path.resolve(config.metadata.path ?? path.join(dataDir, 'berth.db')) : config.metadata.path,
    },
  };
}

const SECRET_KEY = /secret|password|passphrase|privatekey/i;
/** Secret settings whose own name does not say so. */
const SECRET_PATHS = new Set(['secrets.key', 'secrets.previouskeys', 'scanning.scanner.authorization']);
const URL_LIKE = /^[a-z][a-z0-9+.-]*:\/\//i;
/** Webhook endpoint headers (Distribution's notifications.endpoints[].headers) usually carry a token: every value is masked. */
const WEBHOOK_HEADERS = 'notifications.endpoints.headers.';

/**
 * The configuration with secrets masked, for printing (`berth config check`) or logging:
 * values of secret-named keys and of `secrets.key`, and credentials inside URLs
 * (postgres://user:pw@host, ?password=…) through redactUrl, the one URL masking.
 */
export function redactConfig(value: unknown, key = '', keyPath = key): unknown {
  if (typeof value === 'string') {
    if ((SECRET_KEY.test(key) || SECRET_PATHS.has(keyPath) || keyPath.startsWith(WEBHOOK_HEADERS)) && value !== '') return MASK;
    return URL_LIKE.test(value) ? redactUrl(value) : value;
  }
  if (Array.isArray(value)) return value.map((v) => redactConfig(v, key, keyPath));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactConfig(v, k, keyPath ? `${keyPath}.${k}` : k)]));
  }
  return value;
}
