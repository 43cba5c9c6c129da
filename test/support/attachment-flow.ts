import type { Test } from 'tap';
import type { ApiHarness } from './api-harness.ts';
import { historyOf } from './api-harness.ts';
import sharp from 'sharp';
import { PDF_HEAD, pngOf } from './attachment-files.ts';

/** POST a file's bytes to a room's attachments, as a browser's fetch(url, {body: file}) does. */
export async function upload(h: ApiHarness, userId: string, roomId: string, bytes: Buffer, opts: { fileName?: string; contentType?: string; tenant?: string } = {}) {
  const query = opts.fileName !== undefined ? `?fileName=${encodeURIComponent(opts.fileName)}` : '';
  const res = await fetch(`${h.base}/v1/chat/rooms/${roomId}/attachments${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await h.token(userId, opts.tenant)}`, 'content-type': opts.contentType ?? 'application/octet-stream' },
    body: bytes,
  });
  const json = (await res.json()) as any;
  return { status: res.status, data: json.data, error: json.error, body: json, headers: res.headers };
}

/** GET an attachment's url as `userId`; redirects (presigned URLs) are followed, as browsers do. */
export async function download(h: ApiHarness, userId: string, url: string, headers: Record<string, string> = {}, tenant?: string) {
  const res = await fetch(`${h.base}${url}`, { headers: { authorization: `Bearer ${await h.token(userId, tenant)}`, ...headers } });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()), redirected: res.redirected };
}

/**
 * The attachment flow every objects adapter must serve: a member uploads, sends a message that
 * carries the attachment, another member finds it in history and downloads the same bytes; a
 * non-member gets, for the upload and for the download, exactly what a missing room answers.
 */
export function runAttachmentFlow(t: Test, h: ApiHarness, opts: { viaRedirect: boolean }): void {
  t.test('attachments - upload, send it in a message, download as a member; non-members see no room', async (t) => {
    const alice = h.as('alice');
    const bob = h.as('bob');
    const roomId = (await alice.post('/rooms', { name: 'files', type: 'public' })).data.roomId as string;
    t.equal((await bob.post(`/rooms/${roomId}/join`)).status, 200);

    const bytes = pngOf(300_000);
    const up = await upload(h, 'alice', roomId, bytes, { fileName: 'holiday photo.png' });
    t.equal(up.status, 201, JSON.stringify(up.error));
    t.match(up.data, {
      type: 'image', fileName: 'holiday photo.png', fileSize: bytes.length, mimeType: 'image/png',
      url: `/v1/chat/rooms/${roomId}/attachments/${up.data.id}`,
    });

    const sent = await alice.post(`/rooms/${roomId}/messages`, { content: 'look', type: 'image', attachments: [up.data] });
    t.equal(sent.status, 201, JSON.stringify(sent.error));
    const [message] = await historyOf(bob, roomId, 1);
    t.same(message.attachments, [up.data], 'history carries the attachment as uploaded');

    const got = await download(h, 'bob', message.attachments[0].url);
    t.equal(got.status, 200);
    t.equal(got.redirected, opts.viaRedirect, opts.viaRedirect ? 'served by a presigned URL' : 'served here');
    t.equal(got.headers.get('content-type'), 'image/png');
    t.match(got.headers.get('content-disposition'), /^inline; filename="holiday photo.png"/);
    t.ok(got.bytes.equals(bytes), 'the same bytes');

    // carol is of the tenant and the room is public, yet she is no member: the room is absent to her
    const missingUp = await upload(h, 'carol', 'no-such-room', bytes);
    const carolUp = await upload(h, 'carol', roomId, bytes);
    t.equal(carolUp.status, 404);
    t.same(carolUp.body, { ...missingUp.body, error: { ...missingUp.body.error, message: missingUp.body.error.message.replace('no-such-room', roomId) } },
      'a non-member upload is answered as for a missing room');
    const missingDown = await download(h, 'carol', `/v1/chat/rooms/no-such-room/attachments/${up.data.id}`);
    const carolDown = await download(h, 'carol', up.data.url);
    t.equal(carolDown.status, 404);
    t.equal(missingDown.status, 404);
    t.same(JSON.parse(carolDown.bytes.toString()).error.code, 'not_found');
    t.same(JSON.parse(carolDown.bytes.toString()).error.message, `room ${roomId} not found`);
    const otherTenant = await download(h, 'bob', up.data.url, {}, 'globex');
    t.equal(otherTenant.status, 404, 'nor can another tenant\'s user');

    // a member of another room cannot reach the file through their own room
    const other = (await bob.post('/rooms', { name: 'elsewhere', type: 'public' })).data.roomId as string;
    // the rest of the test is about a bob who is a member elsewhere
    const foreign = await bob.post(`/rooms/${other}/messages`, { content: 'see this', attachments: [up.data] });
    t.equal(foreign.status, 400, 'a message may not carry another room\'s file');
    t.match(foreign.error?.message, /its url must be/);
    const sideways = await download(h, 'bob', `/v1/chat/rooms/${other}/attachments/${up.data.id}`);
    t.equal(sideways.status, 404);
    t.equal(JSON.parse(sideways.bytes.toString()).error.message, `attachment ${up.data.id} not found`);
  });

  t.test('attachments - an image gets a thumbnail, for members only', async (t) => {
    const alice = h.as('alice');
    const roomId = (await alice.post('/rooms', { name: 'photos', type: 'public' })).data.roomId as string;
    const photo = await sharp({ create: { width: 800, height: 600, channels: 3, background: { r: 200, g: 30, b: 30 } } }).jpeg().toBuffer();
    const up = await upload(h, 'alice', roomId, photo, { fileName: 'red.jpg' });
    t.equal(up.status, 201);
    t.equal(up.data.mimeType, 'image/jpeg');
    t.equal(up.data.thumbnailUrl, `${up.data.url}/thumbnail`);
    const thumb = await download(h, 'alice', up.data.thumbnailUrl);
    t.equal(thumb.status, 200);
    t.equal(thumb.headers.get('content-type'), 'image/webp');
    t.match(await sharp(thumb.bytes).metadata(), { format: 'webp', width: 320, height: 240 }, 'at most 320 pixels a side, proportions kept');
    t.equal((await download(h, 'bob', up.data.thumbnailUrl)).status, 404, 'a non-member gets no thumbnail either');

    const pdf = await upload(h, 'alice', roomId, PDF_HEAD);
    t.equal(pdf.data.thumbnailUrl, undefined, 'no thumbnail for a PDF');
    t.equal((await download(h, 'alice', `${pdf.data.url}/thumbnail`)).status, 404);
    const broken = await upload(h, 'alice', roomId, Buffer.concat([photo.subarray(0, 200), Buffer.alloc(5000)]), { fileName: 'broken.jpg' });
    t.equal(broken.status, 201, 'an image that cannot be decoded is still stored');
    t.equal(broken.data.thumbnailUrl, undefined);
  });
}
