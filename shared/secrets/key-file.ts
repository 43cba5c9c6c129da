import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SECRET_KEY_BYTES, parseSecretKey } from './secret-key.ts';

/**
 * The embedded mode's secrets key: a file made once with a random key, readable by its owner only
 * (0600), like the SQLite file beside it a development default. It keeps secrets out of a copy of
 * the database; it does not protect a copy of the whole data directory (SECRETS_KEY does).
 * `created` is true the one time the file was written.
 */
export async function readOrCreateKeyFile(path: string): Promise<{ key: Buffer; created: boolean; looseMode: boolean }> {
  await mkdir(dirname(path), { recursive: true });
  try {
    // 'wx': two processes starting at once on one directory make one key, the other reads it
    const file = await open(path, 'wx', 0o600);
    try {
      await file.writeFile(`${randomBytes(SECRET_KEY_BYTES).toString('base64')}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    return { key: parseSecretKey(await readFile(path, 'utf8')), created: true, looseMode: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const text = await readFile(path, 'utf8');
  let key: Buffer;
  try {
    key = parseSecretKey(text);
  } catch (err) {
    throw new Error(`${path}: not a secrets key (${(err as Error).message})`, { cause: err });
  }
  return { key, created: false, looseMode: ((await stat(path)).mode & 0o077) !== 0 };
}
