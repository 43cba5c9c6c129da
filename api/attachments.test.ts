import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startApiHarness, type Client } from '../test/support/api-harness.ts';
import { createDiskObjects } from '../shared/objects/index.ts';
import { download, runAttachmentFlow, upload } from '../test/support/attachment-flow.ts';
import { ELF_HEAD, PDF_HEAD, PNG_1X1, pngOf, rawUpload } from '../test/support/attachment-files.ts';

const MAX_FILE_SIZE = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'chat-attachments-'));
const objects = createDiskObjects({ dir });
const h = await startApiHarness({ attachments: { objects, maxFileSize: MAX_FILE_SIZE } });
t.teardown(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});
const alice = h.as('alice');

async function room(owner: Client, settings: Record<string, unknown> = {}): Promise<string> {
  const roomId = (await owner.post('/rooms', { name: 'files', type: 'public' })).data.roomId as string;
  if (Object.keys(settings).length) t.equal((await owner.patch(`/rooms/${roomId}`, { settings })).status, 200);
  return roomId;
}

/** Every file stored, pending ones and temporaries included (not thumbnails). */
function storedFiles(): string[] {
  const walk = (d: string): string[] => {
    try {
      return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
    } catch {
      return [];
    }
  };
  return walk(join(dir, 'data')).concat(walk(join(dir, 'tmp'))).filter((f) => !f.endsWith('.thumbnail'));
}

runAttachmentFlow(t, h, { viaRedirect: false });

t.test('attachments - download headers, conditional requests and ?token=', async (t) => {
  const roomId = await room(alice);
  const up = await upload(h, 'alice', roomId, PDF_HEAD, { fileName: 'Q3 report.pdf' });
  t.equal(up.status, 201);
  const got = await download(h, 'alice', up.data.url);
  t.equal(got.status, 200);
  t.equal(got.headers.get('content-type'), 'application/pdf');
  t.equal(got.headers.get('content-length'), String(PDF_HEAD.length));
  t.equal(got.headers.get('content-disposition'), `attachment; filename="Q3 report.pdf"; filename*=UTF-8''Q3%20report.pdf`, 'not an image: a download');
  t.equal(got.headers.get('x-content-type-options'), 'nosniff');
  t.equal(got.headers.get('accept-ranges'), 'bytes');
  t.equal(got.headers.get('cache-control'), 'private, max-age=31536000, immutable');
  t.equal(got.headers.get('etag'), `"${up.data.id}"`);
  t.ok(got.headers.get('last-modified'));
  t.match(got.headers.get('content-security-policy'), /sandbox/);
  t.ok(got.bytes.equals(PDF_HEAD));

  const again = await download(h, 'alice', up.data.url, { 'if-none-match': `"${up.data.id}"` });
  t.equal(again.status, 304);
  t.equal(again.bytes.length, 0);

  const byQuery = await fetch(`${h.base}${up.data.url}?token=${await h.token('alice')}`);
  t.equal(byQuery.status, 200, 'a link or <img src> carries the token in the query');
  t.ok(Buffer.from(await byQuery.arrayBuffer()).equals(PDF_HEAD));
  const anonymous = await fetch(`${h.base}${up.data.url}`);
  t.equal(anonymous.status, 401);
  await anonymous.arrayBuffer();
});

t.test('attachments - range requests', async (t) => {
  const roomId = await room(alice);
  const bytes = pngOf(100_000);
  const up = await upload(h, 'alice', roomId, bytes, { fileName: 'big.png' });
  const part = await download(h, 'alice', up.data.url, { range: 'bytes=1000-1999' });
  t.equal(part.status, 206);
  t.equal(part.headers.get('content-range'), `bytes 1000-1999/${bytes.length}`);
  t.equal(part.headers.get('content-length'), '1000');
  t.equal(part.headers.get('content-type'), 'image/png');
  t.ok(part.bytes.equals(bytes.subarray(1000, 2000)), 'exactly those bytes');

  const tail = await download(h, 'alice', up.data.url, { range: 'bytes=-10' });
  t.equal(tail.status, 206);
  t.ok(tail.bytes.equals(bytes.subarray(bytes.length - 10)));
  const rest = await download(h, 'alice', up.data.url, { range: 'bytes=99990-' });
  t.equal(rest.headers.get('content-range'), `bytes 99990-99999/${bytes.length}`);
  t.ok(rest.bytes.equals(bytes.subarray(99_990)));

  const past = await download(h, 'alice', up.data.url, { range: `bytes=${bytes.length}-` });
  t.equal(past.status, 416);
  t.equal(past.headers.get('content-range'), `bytes */${bytes.length}`);

  const stale = await download(h, 'alice', up.data.url, { range: 'bytes=0-9', 'if-range': '"another-version"' });
  t.equal(stale.status, 200, 'If-Range of another version: the whole file');
  t.equal(stale.bytes.length, bytes.length);
  const many = await download(h, 'alice', up.data.url, { range: 'bytes=0-1,5-6' });
  t.equal(many.status, 200, 'several ranges: the whole file');
});

t.test('attachments - a large upload streams through, byte for byte', async (t) => {
  const roomId = await room(alice);
  const bytes = pngOf(MAX_FILE_SIZE);
  const up = await upload(h, 'alice', roomId, bytes, { fileName: 'exactly-the-limit.png' });
  t.equal(up.status, 201, 'a file of exactly MAX_FILE_SIZE is taken');
  t.equal(up.data.fileSize, MAX_FILE_SIZE);
  t.ok((await download(h, 'alice', up.data.url)).bytes.equals(bytes));
});

t.test('attachments - 413 before the body is read past the limit', async (t) => {
  const roomId = await room(alice);
  const url = `${h.base}/v1/chat/rooms/${roomId}/attachments`;
  const token = await h.token('alice');
  const before = storedFiles().length;

  // Content-Length says too much: refused before a byte of the body is sent
  const declared = await rawUpload(url, { token, total: 50 * MAX_FILE_SIZE, contentLength: 50 * MAX_FILE_SIZE, headOnly: true });
  t.equal(declared.status, 413, 'answered with no byte of the body sent');
  t.equal(JSON.parse(declared.body.toString()).error.code, 'too_large');
  t.equal(declared.headers.connection, 'close', 'and the connection is closed, the body unread');

  // chunked: no length to judge; the count stops it, long before the client is done
  const chunked = await rawUpload(url, { token, total: 200 * MAX_FILE_SIZE });
  t.equal(chunked.status, 413);
  t.same(JSON.parse(chunked.body.toString()).error, { code: 'too_large', message: `the file is larger than ${MAX_FILE_SIZE} bytes`, details: { limit: MAX_FILE_SIZE } });
  t.notOk(chunked.finishedWriting, 'the answer came while the client still had most of its body to send');
  t.ok(chunked.writtenAtAnswer < 20 * MAX_FILE_SIZE, `answered after ${chunked.writtenAtAnswer} bytes written (socket buffers included), of ${200 * MAX_FILE_SIZE}`);

  // the room's own maxFileSize lowers the limit, both ways
  const small = await room(alice, { maxFileSize: 5000 });
  const smallUrl = `${h.base}/v1/chat/rooms/${small}/attachments`;
  t.equal((await rawUpload(smallUrl, { token, total: 6000, contentLength: 6000 })).status, 413);
  const smallChunked = await rawUpload(smallUrl, { token, total: 100_000, chunk: 1000 });
  t.equal(smallChunked.status, 413);
  t.equal(JSON.parse(smallChunked.body.toString()).error.details.limit, 5000);
  t.equal((await upload(h, 'alice', small, pngOf(5000))).status, 201, 'at the room limit is fine');
  t.equal(storedFiles().length, before + 1, 'nothing of the refused uploads was stored');
});

t.test('attachments - allowed types: 415 for another type, judged by the bytes', async (t) => {
  const images = await room(alice, { allowedFileTypes: ['image/*'] });
  const png = await upload(h, 'alice', images, PNG_1X1, { fileName: 'a.png' });
  t.equal(png.status, 201);
  const pdf = await upload(h, 'alice', images, PDF_HEAD, { fileName: 'a.pdf', contentType: 'application/pdf' });
  t.equal(pdf.status, 415);
  t.match(pdf.error, { code: 'unsupported_type', details: { detected: 'application/pdf', allowed: ['image/*'] } });

  // a PDF that claims, by name and Content-Type, to be a PNG is still a PDF
  const disguised = await upload(h, 'alice', images, PDF_HEAD, { fileName: 'photo.png', contentType: 'image/png' });
  t.equal(disguised.status, 415, 'the claim does not get it in');
  t.equal(disguised.error.details.detected, 'application/pdf');

  const byExt = await room(alice, { allowedFileTypes: ['.pdf', 'text/plain'] });
  t.equal((await upload(h, 'alice', byExt, PDF_HEAD)).status, 201, 'an extension entry');
  t.equal((await upload(h, 'alice', byExt, Buffer.from('just some notes\n'))).data.mimeType, 'text/plain');
  t.equal((await upload(h, 'alice', byExt, PNG_1X1)).status, 415);
  t.equal((await upload(h, 'alice', byExt, ELF_HEAD)).status, 415);
});

t.test('attachments - a file lying about its type is stored and served as what it is', async (t) => {
  const open = await room(alice);
  const up = await upload(h, 'alice', open, ELF_HEAD, { fileName: 'cute-cat.jpg', contentType: 'image/jpeg' });
  t.equal(up.status, 201);
  t.match(up.data, { type: 'file', mimeType: 'application/x-elf', fileName: 'cute-cat.jpg' });
  const got = await download(h, 'alice', up.data.url);
  t.equal(got.headers.get('content-type'), 'application/x-elf');
  t.match(got.headers.get('content-disposition'), /^attachment;/, 'offered as a download, never shown inline');
  const binary = await upload(h, 'alice', open, Buffer.from([0, 1, 2, 3, 255, 254]), { fileName: 'notes.txt', contentType: 'text/plain' });
  t.equal(binary.data.mimeType, 'application/octet-stream', 'unknown bytes are not text because the name says so');
});

t.test('attachments - other refusals', async (t) => {
  const off = await room(alice, { allowFileUploads: false });
  const refused = await upload(h, 'alice', off, PNG_1X1);
  t.equal(refused.status, 403);
  t.equal(refused.error.code, 'forbidden');

  const open = await room(alice);
  const empty = await upload(h, 'alice', open, Buffer.alloc(0));
  t.equal(empty.status, 400);
  t.match(empty.error.message, /empty/);
  const form = await upload(h, 'alice', open, PNG_1X1, { contentType: 'multipart/form-data; boundary=x' });
  t.equal(form.status, 400);
  t.match(form.error.message, /multipart/);
  const unnamed = await upload(h, 'alice', open, PNG_1X1, { fileName: '../../etc/x.png' });
  t.equal(unnamed.data.fileName, 'x.png', 'a path keeps its last part');
  t.equal((await upload(h, 'alice', open, PNG_1X1)).data.fileName, 'file.png', 'no name: named for its type');

  const badId = await download(h, 'alice', `/v1/chat/rooms/${open}/attachments/not-an-id`);
  t.equal(badId.status, 400);
  const unknown = await download(h, 'alice', `/v1/chat/rooms/${open}/attachments/00000000-0000-0000-0000-000000000000`);
  t.equal(unknown.status, 404);
});

t.test('attachments - the routes are in the OpenAPI document', async (t) => {
  const doc = (await (await fetch(`${h.base}/v1/openapi.json`)).json()) as any;
  const up = doc.paths['/v1/chat/rooms/{roomId}/attachments'].post;
  t.ok(up.requestBody.content['application/octet-stream']);
  t.ok(up.responses['201'] && up.responses['413'] && up.responses['415'] && up.responses['404']);
  t.ok(doc.paths['/v1/chat/rooms/{roomId}/attachments/{attachmentId}'].get.responses['200'].content['application/octet-stream']);
});
