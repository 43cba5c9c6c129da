import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ChatError } from '../protocol/errors.ts';
import { assertObjectKey, assertObjectMeta, type ByteRange, type ObjectInfo, type ObjectMeta, type ObjectRead, type Objects } from './objects.ts';

export interface DiskObjectsConfig {
  /** Objects live in `<dir>/data/<key>`, their metadata in `<dir>/meta/<key>.json`. */
  dir: string;
}

interface MetaFile extends ObjectMeta {
  size: number;
  lastModified: string;
}

/**
 * Objects as files under one directory: the embedded default, so attachments work with no server.
 * A put writes to a temporary file and renames it into place (data first, then its metadata), so a
 * reader that finds the metadata finds the whole object. Single process only: two processes
 * writing one key are last-writer-wins like any put, but nothing else is coordinated.
 */
export function createDiskObjects(cfg: DiskObjectsConfig): Objects {
  const dataPath = (key: string) => join(cfg.dir, 'data', key);
  const metaPath = (key: string) => join(cfg.dir, 'meta', `${key}.json`);
  const tmpDir = join(cfg.dir, 'tmp');
  const tmpPath = () => join(tmpDir, randomUUID());

  async function readMeta(key: string): Promise<ObjectInfo | undefined> {
    let text: string;
    try {
      text = await readFile(metaPath(key), 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw unavailable(err, `cannot read the metadata of ${key}`);
    }
    const m = JSON.parse(text) as MetaFile;
    return {
      key, size: m.size, lastModified: new Date(m.lastModified), contentType: m.contentType,
      ...(m.fileName !== undefined ? { fileName: m.fileName } : {}), ...(m.extra ? { extra: m.extra } : {}),
    };
  }

  /** Moves the data file at `from` (already complete) and writes the metadata of `key`. */
  async function place(key: string, from: string, size: number, meta: ObjectMeta): Promise<ObjectInfo> {
    const lastModified = new Date();
    const file: MetaFile = {
      contentType: meta.contentType, size, lastModified: lastModified.toISOString(),
      ...(meta.fileName !== undefined ? { fileName: meta.fileName } : {}), ...(meta.extra ? { extra: meta.extra } : {}),
    };
    const metaTmp = tmpPath();
    try {
      await writeFile(metaTmp, JSON.stringify(file));
      await mkdir(dirname(dataPath(key)), { recursive: true });
      await mkdir(dirname(metaPath(key)), { recursive: true });
      await rename(from, dataPath(key));
      await rename(metaTmp, metaPath(key));
    } catch (err) {
      await rm(metaTmp, { force: true });
      throw unavailable(err, `cannot store ${key}`);
    }
    return { key, size, lastModified, ...meta };
  }

  return {
    kind: 'disk',

    async put(key, body, meta) {
      assertObjectKey(key);
      assertObjectMeta(meta);
      await mkdir(tmpDir, { recursive: true });
      const tmp = tmpPath();
      let size = 0;
      const counted = async function* () {
        for await (const chunk of body) {
          size += chunk.byteLength;
          yield chunk;
        }
      };
      try {
        await pipeline(Readable.from(counted(), { objectMode: false }), createWriteStream(tmp, { flags: 'wx' }));
      } catch (err) {
        await rm(tmp, { force: true });
        // the body's own failure (too large, client gone) is the caller's to report
        throw err;
      }
      return place(key, tmp, size, meta);
    },

    async head(key) {
      assertObjectKey(key);
      return readMeta(key);
    },

    async get(key, range?: ByteRange): Promise<ObjectRead | undefined> {
      assertObjectKey(key);
      const info = await readMeta(key);
      if (!info) return undefined;
      const body = createReadStream(dataPath(key), range ? { start: range.start, end: range.end } : {});
      // opened before it is handed over, so a file deleted meanwhile is a missing object, not a stream error
      try {
        await new Promise<void>((resolve, reject) => {
          body.once('open', () => resolve());
          body.once('error', reject);
        });
      } catch (err) {
        body.destroy();
        if (isMissing(err)) return undefined;
        throw unavailable(err, `cannot read ${key}`);
      }
      return { info, body };
    },

    async commit(from, to, meta) {
      assertObjectKey(from);
      assertObjectKey(to);
      assertObjectMeta(meta);
      let size: number;
      try {
        size = (await stat(dataPath(from))).size;
      } catch (err) {
        if (isMissing(err)) throw new ChatError('not_found', `object ${from} not found`);
        throw unavailable(err, `cannot read ${from}`);
      }
      await mkdir(tmpDir, { recursive: true });
      const tmp = tmpPath();
      try {
        await rename(dataPath(from), tmp);
      } catch (err) {
        if (isMissing(err)) throw new ChatError('not_found', `object ${from} not found`);
        throw unavailable(err, `cannot move ${from}`);
      }
      await rm(metaPath(from), { force: true });
      return place(to, tmp, size, meta);
    },

    async delete(key) {
      assertObjectKey(key);
      try {
        // metadata first: without it the object no longer exists for readers
        await rm(metaPath(key), { force: true });
        await rm(dataPath(key), { force: true });
      } catch (err) {
        throw unavailable(err, `cannot delete ${key}`);
      }
    },

    async check() {
      try {
        await mkdir(tmpDir, { recursive: true });
      } catch (err) {
        throw unavailable(err, `objects directory ${cfg.dir} is not writable`);
      }
    },

    async close() {},
  } satisfies Objects;
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function unavailable(err: unknown, message: string): ChatError {
  return new ChatError('unavailable', message, { cause: err });
}
