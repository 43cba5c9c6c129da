import type { ObjectsConfig } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';
import { createDiskObjects } from './disk-objects.ts';
import type { Objects } from './objects.ts';

export type { Objects, ObjectMeta, ObjectInfo, ObjectRead, ByteRange, DirectTransfers, PresignedRequest } from './objects.ts';
export { assertObjectKey } from './objects.ts';
export { createDiskObjects, type DiskObjectsConfig } from './disk-objects.ts';
export type { S3ObjectsConfig } from './s3-objects.ts';

/**
 * The one place an objects adapter is chosen. The S3 adapter is loaded only when chosen: the AWS
 * SDK takes a tenth of a second to import, which no disk-backed process should pay at start.
 */
export async function createObjects(cfg: ObjectsConfig): Promise<Objects> {
  switch (cfg.adapter) {
    case 'disk':
      return createDiskObjects({ dir: cfg.dir });
    case 's3':
      return (await import('./s3-objects.ts')).createS3Objects(cfg);
    default: {
      const never: never = cfg;
      throw new ChatError('internal', `unknown objects adapter ${String((never as { adapter?: unknown }).adapter)}`);
    }
  }
}
