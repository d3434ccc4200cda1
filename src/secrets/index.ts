import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/schema.js';
import { decodeSecretsKey, type SecretSealer } from '../core/secrets.js';
import { checkDataPermissions } from './permissions.js';
import { sealerFor } from './sealer.js';

export { AesGcmSealer, secretsKeyId, sealerFor } from './sealer.js';
export { checkDataPermissions, DATA_DIR_MODE, DATA_FILE_MODE, type LoosePath } from './permissions.js';

/**
 * The sealer the configuration asks for: `secrets.key` (or BERTH_SECRETS_KEY), else the file
 * `secrets.keyfile`, else none (values stay plain text). A key that is unreadable or not 32
 * bytes is a start-up error whose message names the setting, never the value.
 */
export function openSealer(secrets: BerthConfig['secrets']): SecretSealer {
  return sealerFor(
    readSecretsKey(secrets),
    (secrets.previouskeys ?? []).map((key, i) => {
      try {
        return decodeSecretsKey(key);
      } catch (err) {
        throw new Error(`secrets.previouskeys[${i}]: ${(err as Error).message}`, { cause: err });
      }
    }),
  );
}

export function readSecretsKey(secrets: Pick<BerthConfig['secrets'], 'key' | 'keyfile'>): Buffer | null {
  if (secrets.key !== undefined) {
    try {
      return decodeSecretsKey(secrets.key);
    } catch (err) {
      throw new Error(`secrets.key (BERTH_SECRETS_KEY): ${(err as Error).message}`, { cause: err });
    }
  }
  if (secrets.keyfile === undefined) return null;
  let text: string;
  try {
    text = readFileSync(secrets.keyfile, 'utf8');
  } catch (err) {
    throw new Error(`cannot read secrets.keyfile ${secrets.keyfile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      cause: err,
    });
  }
  try {
    return decodeSecretsKey(text);
  } catch (err) {
    throw new Error(`secrets.keyfile ${secrets.keyfile}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Start-up report (the server calls it once): a warning per data path other local users may
 * read, and whether secrets at rest are sealed.
 */
export function reportSecretsAtRest(config: BerthConfig, sealer: SecretSealer, logger: Logger): void {
  for (const loose of checkDataPermissions(config)) {
    logger.warn(
      { path: loose.path, mode: loose.mode, fix: loose.fix },
      `${loose.kind} ${loose.path} is mode ${loose.mode}: other local users may read Berth's data (the metadata database holds password hashes and token signing keys). Fix: ${loose.fix}`,
    );
  }
  if (sealer.enabled) {
    logger.info({ keyId: sealer.keyId }, 'secrets at rest (token signing keys) are sealed with AES-256-GCM');
  } else {
    logger.info(
      'secrets at rest are not encrypted (no secrets key configured): token signing keys are stored in plain text in the metadata database; set BERTH_SECRETS_KEY (or secrets.key / secrets.keyfile) to seal them (docs/security.md#secrets-at-rest)',
    );
  }
}
