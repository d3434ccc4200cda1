import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
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
  const merged = applyEnvOverrides(raw as Record<string, unknown>, env);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new ConfigError(`invalid configuration${file ? ` in ${file}` : ''}:\n${lines.join('\n')}`);
  }
  return { config: resolveConfigPaths(result.data), file };
}

/**
 * Distribution-style overrides: BERTH_HTTP_ADDR sets http.addr, BERTH_STORAGE_DELETE_ENABLED
 * sets storage.delete.enabled. Underscores separate levels; values are parsed as YAML scalars
 * so "true" and "4096" become a boolean and a number.
 */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(raw);
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined || name === 'BERTH_CONFIG') continue;
    const keyPath = envKeyPath(name.slice(ENV_PREFIX.length).toLowerCase().split('_'));
    if (!keyPath) continue;
    let target: Record<string, unknown> = out;
    for (const key of keyPath.slice(0, -1)) {
      const next = target[key];
      if (next === null || typeof next !== 'object') target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[keyPath[keyPath.length - 1] as string] = parseScalar(value);
  }
  return out;
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
      path: config.metadata.driver === 'sqlite' ? path.resolve(config.metadata.path ?? path.join(dataDir, 'berth.db')) : config.metadata.path,
    },
  };
}

const SECRET_KEY = /secret|password|passphrase|privatekey/i;

/**
 * The configuration with secrets masked, for printing (`berth config check`) or logging:
 * values of secret-named keys, and passwords inside URLs (postgres://user:pw@host).
 */
export function redactConfig(value: unknown, key = ''): unknown {
  if (typeof value === 'string') {
    if (SECRET_KEY.test(key) && value !== '') return '********';
    return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]+):[^@/\s]+@/i, '$1:********@');
  }
  if (Array.isArray(value)) return value.map((v) => redactConfig(v, key));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactConfig(v, k)]));
  }
  return value;
}
