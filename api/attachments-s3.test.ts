import t from 'tap';
import { startApiHarness, type Client } from '../test/support/api-harness.ts';
import { createS3Objects } from '../shared/objects/s3-objects.ts';
import { download, runAttachmentFlow, upload } from '../test/support/attachment-flow.ts';
import { PDF_HEAD, pngOf } from '../test/support/attachment-files.ts';
import { s3proxyJar, startS3Proxy } from '../test/support/s3proxy-server.ts';
import { attachmentLinks } from './attachment-links.ts';
import { roomKey } from '../shared/domain/index.ts';

// The attachment routes over the S3 adapter, against a real S3-compatible server (S3Proxy).
const found = await s3proxyJar();
if ('skip' in found) {
  t.comment(found.skip);
  t.pass(`skipped: ${found.skip}`);
} else {
  const MAX_FILE_SIZE = 512 * 1024;
  const s3 = await startS3Proxy(found.jar);
  const objects = createS3Objects({
    bucket: s3.bucket, endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const h = await startApiHarness({ attachments: { objects, maxFileSize: MAX_FILE_SIZE, presignTtlSec: 60 } });
  t.teardown(async () => {
    await h.close();
    await objects.close();
    await s3.stop();
  });
  const alice = h.as('alice');
  const bob = h.as('bob');

  async function room(owner: Client, settings: Record<string, unknown> = {}): Promise<string> {
    const roomId = (await owner.post('/rooms', { name: 'files', type: 'public' })).data.roomId as string;
    if (Object.keys(settings).length) t.equal((await owner.patch(`/rooms/${roomId}`, { settings })).status, 200);
    return roomId;
  }

  /** What a browser does with a ticket: a plain PUT of the file to the presigned URL. */
  async function browserPut(ticket: any, bytes: Buffer, contentType = 'image/png'): Promise<number> {
    const res = await fetch(ticket.upload.url, { method: 'PUT', headers: { 'content-type': contentType, ...ticket.upload.headers }, body: bytes });
    await res.arrayBuffer();
    return res.status;
  }

  runAttachmentFlow(t, h, { viaRedirect: true });

  t.test('attachments (s3) - a download redirects members to a short-lived presigned URL', async (t) => {
    const roomId = await room(alice);
    const up = await upload(h, 'alice', roomId, PDF_HEAD, { fileName: 'notes.pdf' });
    const res = await fetch(`${h.base}${up.data.url}`, { headers: { authorization: `Bearer ${await h.token('alice')}` }, redirect: 'manual' });
    t.equal(res.status, 302);
    t.equal(res.headers.get('cache-control'), 'no-store');
    const location = new URL(res.headers.get('location')!);
    t.equal(location.origin, s3.endpoint, 'to the object store');
    t.equal(location.searchParams.get('X-Amz-Expires'), '60', 'valid for S3_PRESIGN_TTL');
    const file = await fetch(location);
    t.equal(file.headers.get('content-type'), 'application/pdf');
    t.match(file.headers.get('content-disposition'), /^attachment; filename="notes.pdf"/);
    t.ok(Buffer.from(await file.arrayBuffer()).equals(PDF_HEAD));
  });

  t.test('attachments (s3) - direct upload: presigned PUT from the browser, completion checks the stored file', async (t) => {
    const roomId = await room(alice);
    t.equal((await bob.post(`/rooms/${roomId}/join`)).status, 200);
    const bytes = pngOf(200_000);
    const start = await alice.post(`/rooms/${roomId}/attachments/uploads`, { fileSize: bytes.length });
    t.equal(start.status, 201, JSON.stringify(start.error));
    t.ok(new Date(start.data.upload.expiresAt).getTime() > Date.now());
    t.equal(await browserPut(start.data, bytes), 200, 'the PUT goes straight to the bucket');

    const before = await download(h, 'alice', `/v1/chat/rooms/${roomId}/attachments/${start.data.attachmentId}`);
    t.equal(before.status, 404, 'nothing is served before the upload is completed');

    const done = await alice.post(start.data.completeUrl.replace('/v1/chat', ''), { fileName: 'direct.png' });
    t.equal(done.status, 201, JSON.stringify(done.error));
    t.match(done.data, { id: start.data.attachmentId, type: 'image', mimeType: 'image/png', fileName: 'direct.png', fileSize: bytes.length });
    t.equal((await alice.post(start.data.completeUrl.replace('/v1/chat', ''), {})).status, 404, 'completed once');

    const sent = await alice.post(`/rooms/${roomId}/messages`, { content: 'direct', type: 'image', attachments: [done.data] });
    t.equal(sent.status, 201);
    const got = await download(h, 'bob', done.data.url);
    t.equal(got.status, 200);
    t.ok(got.redirected);
    t.equal(got.headers.get('content-type'), 'image/png');
    t.ok(got.bytes.equals(bytes), 'bob downloads what alice PUT');
    t.equal((await download(h, 'carol', done.data.url)).status, 404, 'a non-member does not');
  });

  t.test('attachments (s3) - direct upload refusals', async (t) => {
    const images = await room(alice, { allowedFileTypes: ['image/*'] });

    const tooBig = await alice.post(`/rooms/${images}/attachments/uploads`, { fileSize: MAX_FILE_SIZE + 1 });
    t.equal(tooBig.status, 413, 'a size over the limit gets no URL');
    t.equal((await h.as('carol').post(`/rooms/${images}/attachments/uploads`, { fileSize: 10 })).status, 404, 'a non-member gets no URL');

    // the URL takes the announced length only
    const ticket = (await alice.post(`/rooms/${images}/attachments/uploads`, { fileSize: 1000 })).data;
    t.equal(await browserPut(ticket, pngOf(50_000)), 403, 'a larger PUT than signed is refused by the bucket');
    t.equal((await alice.post(ticket.completeUrl.replace('/v1/chat', ''), {})).status, 404, 'and there is nothing to complete');

    // a PDF PUT as image/png: judged by its bytes at completion, and deleted
    const lie = (await alice.post(`/rooms/${images}/attachments/uploads`, { fileSize: PDF_HEAD.length })).data;
    t.equal(await browserPut(lie, PDF_HEAD, 'image/png'), 200);
    const refused = await alice.post(lie.completeUrl.replace('/v1/chat', ''), { fileName: 'photo.png' });
    t.equal(refused.status, 415);
    t.match(refused.error, { code: 'unsupported_type', details: { detected: 'application/pdf' } });
    t.equal((await alice.post(lie.completeUrl.replace('/v1/chat', ''), {})).status, 404, 'the refused file is gone');

    // the room's limit went down between the URL and the completion
    const shrinking = await room(alice);
    const big = (await alice.post(`/rooms/${shrinking}/attachments/uploads`, { fileSize: 20_000 })).data;
    t.equal(await browserPut(big, pngOf(20_000)), 200);
    t.equal((await alice.patch(`/rooms/${shrinking}`, { settings: { maxFileSize: 10_000 } })).status, 200);
    const late = await alice.post(big.completeUrl.replace('/v1/chat', ''), {});
    t.equal(late.status, 413);
    t.equal(late.error?.details?.['limit'], 10_000);
  });

  t.test('attachments (s3) - an upload through the api streams to the bucket, chunked too', async (t) => {
    const roomId = await room(alice);
    const bytes = pngOf(MAX_FILE_SIZE);
    // a stream body makes fetch send it chunked: no length known, so multipart parts
    const chunked = await fetch(`${h.base}/v1/chat/rooms/${roomId}/attachments?fileName=c.png`, {
      method: 'POST', headers: { authorization: `Bearer ${await h.token('alice')}` },
      body: new Blob([bytes]).stream(), duplex: 'half',
    } as RequestInit);
    const json = (await chunked.json()) as any;
    t.equal(chunked.status, 201, JSON.stringify(json.error));
    t.equal(json.data.fileSize, MAX_FILE_SIZE);
    t.ok((await download(h, 'alice', json.data.url)).bytes.equals(bytes));
  });

  t.test('attachments (s3) - a link for a messaging platform is a presigned GET of the bucket, fetched without a token', async (t) => {
    const roomId = await room(alice);
    const bytes = pngOf(2000);
    const up = await upload(h, 'alice', roomId, bytes, { fileName: 'cat.png' });
    t.equal(up.status, 201);
    // no PUBLIC_URL nor key: S3 signs its own links
    const links = attachmentLinks({ objects, publicUrl: undefined, secret: undefined, ttlSec: 600 });
    const url = await links.linkFor(roomKey('acme', roomId), up.data);
    t.match(url, new RegExp(`^${s3.endpoint}/`), 'the bucket\'s URL, not ours');
    t.match(url, /X-Amz-Expires=600/);
    const res = await fetch(url!);
    t.equal(res.status, 200);
    t.equal(res.headers.get('content-type'), 'image/png');
    t.ok(Buffer.from(await res.arrayBuffer()).equals(bytes));
  });
}
