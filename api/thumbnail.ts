/** sharp loads libvips, a native library: only once the first image arrives, not at every start. */
let loading: Promise<SharpFactory> | undefined;
type SharpFactory = typeof import('sharp');

/** The longest side of a thumbnail, in pixels. */
export const THUMBNAIL_SIZE = 320;
export const THUMBNAIL_TYPE = 'image/webp';

/**
 * Decoding is where image bombs bite: a small file can declare a huge canvas. 40 megapixels covers
 * any photo a phone takes and refuses the rest before their pixels are allocated.
 */
const MAX_INPUT_PIXELS = 40_000_000;

/** Image types a thumbnail is made of (what sharp's prebuilt libvips decodes). */
const THUMBNAILED = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/tiff']);

export function hasThumbnail(mime: string): boolean {
  return THUMBNAILED.has(mime);
}

/**
 * A WebP of at most THUMBNAIL_SIZE on its longest side (never enlarged), turned upright by its EXIF
 * orientation and stripped of its metadata (no location leaks through a preview). sharp decodes in
 * libuv's thread pool, off the event loop. Rejects for an image it cannot decode.
 */
export async function makeThumbnail(image: Buffer): Promise<Buffer> {
  const sharp = await (loading ??= import('sharp').then((m) => m.default as SharpFactory));
  return sharp(image, { limitInputPixels: MAX_INPUT_PIXELS, animated: false })
    .rotate()
    .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 75 })
    .toBuffer();
}
