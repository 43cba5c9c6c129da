import type { Config } from '../config/config.ts';
import { createObjects, type Objects } from '../objects/index.ts';

/** What the api's attachment routes are given (ApiDeps.attachments), from config. */
export interface AttachmentStorage {
  objects: Objects;
  maxFileSize: number;
  presignTtlSec?: number;
  links?: { publicUrl: string | undefined; secret: string | undefined; ttlSec: number };
}

/**
 * The api's file storage. Not a readiness check: with the object store down, uploads and downloads
 * fail with `unavailable` while chat goes on, rather than the whole api leaving the balancer.
 */
export async function attachmentStorage(config: Config): Promise<AttachmentStorage> {
  const cfg = config.attachments;
  return {
    objects: await createObjects(cfg.objects),
    maxFileSize: cfg.maxFileSize,
    links: cfg.links,
    ...(cfg.objects.adapter === 's3' ? { presignTtlSec: cfg.objects.presignTtlSec } : {}),
  };
}
