/**
 * `Content-Disposition` with the file's name (RFC 6266): a quoted ASCII fallback for old clients
 * and `filename*` (RFC 8187) with the exact UTF-8 name.
 */
export function contentDisposition(kind: 'inline' | 'attachment', fileName: string | undefined): string {
  if (!fileName) return kind;
  const fallback = fileName.normalize('NFKD').replace(/[^\x20-\x7e]/g, '').replace(/["\\%]/g, '_') || 'file';
  const exact = encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${fallback}"; filename*=UTF-8''${exact}`;
}

/**
 * The name an uploader gave, made safe to store and show: the last path segment only, no control
 * characters, NFC, at most 255 characters; undefined when nothing is left.
 */
export function cleanFileName(name: string | undefined): string | undefined {
  if (!name) return undefined;
  const last = name.split(/[\\/]/).pop() ?? '';
  // C0, DEL, C1 and the bidirectional controls that could disguise an extension
  const clean = last.normalize('NFC').replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '').trim();
  if (clean === '' || clean === '.' || clean === '..') return undefined;
  return [...clean].slice(0, 255).join('');
}
