import type { ObjectsConfig } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';
import { createDiskObjects } from './disk-objects.ts';
import { createS3Objects } from './s3-objects.ts';
import type { Objects } from './objects.ts';

export type { Objects, ObjectMeta, ObjectInfo, ObjectRead, ByteRange, DirectTransfers, PresignedRequest } from './objects.ts';
export { assertObjectKey } from './objects.ts';
export { createDiskObjects, type DiskObjectsConfig } from './disk-objects.ts';
export { createS3Objects, type S3ObjectsConfig } from './s3-objects.ts';

/** The one place an objects adapter is chosen. */
export function createObjects(cfg: ObjectsConfig): Objects {
  switch (cfg.adapter) {
    case 'disk':
      return createDiskObjects({ dir: cfg.dir });
    case 's3':
      return createS3Objects(cfg);
    default: {
      const never: never = cfg;
      throw new ChatError('internal', `unknown objects adapter ${String((never as { adapter?: unknown }).adapter)}`);
    }
  }
}
