import type { SecretsConfig } from '../config/index.ts';
import type { Logger } from '../telemetry/index.ts';
import { readOrCreateKeyFile } from './key-file.ts';
import { aesGcmCipher, type SecretCipher } from './secret-cipher.ts';
import { parseSecretKey, secretKeyId } from './secret-key.ts';

export { aesGcmCipher, SecretsError, type SecretCipher, type SecretsFailure } from './secret-cipher.ts';
export { parseSecretKey, secretKeyId } from './secret-key.ts';
export { TenantSecrets, type TenantRecordStore } from './tenant-secrets.ts';

/**
 * The cipher tenant secrets are sealed with, from config: SECRETS_KEY; else, in the embedded mode,
 * a key file in DATA_DIR made on first start; else (distributed without SECRETS_KEY) none, and
 * secrets can be neither written nor, once sealed, read. Never logs a key, only its id.
 */
export async function createSecretCipher(cfg: SecretsConfig, log: Logger): Promise<SecretCipher> {
  const previous = cfg.previousKeys.map(parseSecretKey);
  switch (cfg.source) {
    case 'env': {
      const key = parseSecretKey(cfg.key);
      log.debug({ keyId: secretKeyId(key), previousKeyIds: previous.map(secretKeyId) }, 'tenant secrets sealed under SECRETS_KEY');
      return aesGcmCipher({ current: key, previous });
    }
    case 'file': {
      const { key, created, looseMode } = await readOrCreateKeyFile(cfg.path);
      if (created) log.info({ path: cfg.path, keyId: secretKeyId(key) }, 'made a secrets key file for tenant secrets (set SECRETS_KEY to choose the key; keep this file with the data)');
      if (looseMode) log.warn({ path: cfg.path }, 'the secrets key file is readable by others than its owner: chmod 600 it');
      return aesGcmCipher({ current: key, previous });
    }
    case 'none':
      log.warn('SECRETS_KEY is not set: tenant secrets (channel credentials) cannot be stored, and sealed ones cannot be read; set it, the same on every api process');
      return aesGcmCipher({ current: undefined, previous });
    default: {
      const never: never = cfg;
      throw new Error(`unknown secrets source ${JSON.stringify(never)}`);
    }
  }
}
