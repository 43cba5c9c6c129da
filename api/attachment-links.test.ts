import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startApiHarness } from '../test/support/api-harness.ts';
import { createDiskObjects } from '../shared/objects/index.ts';
import { roomKey } from '../shared/domain/index.ts';
import { upload } from '../test/support/attachment-flow.ts';
import { PDF_HEAD, pngOf } from '../test/support/attachment-files.ts';
import { attachmentLinks, checkLink, linkSignature } from './attachment-links.ts';
import { errorCode } from '../test/support/error-code.ts';

const SECRET = 'attachment-link-secret-for-tests-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'chat-links-'));
const objects = createDiskObjects({ dir });
const h = await startApiHarness({ attachments: { objects, maxFileSize: 1024 * 1024, links: { publicUrl: undefined, secret: SECRET, ttlSec: 60 } } });
t.teardown(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});
const links = attachmentLinks({ objects, publicUrl: h.base, secret: SECRET, ttlSec: 60 });

/** A room of `tenant` with a PNG uploaded by its owner: the attachment and the room's key. */
async function fileIn(tenant: string, bytes = pngOf(200)) {
  const token = await h.token('alice', tenant);
  const res = await fetch(`${h.base}/v1/chat/rooms`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'files', type: 'public' }),
  });
  const roomId = ((await res.json()) as any).data.roomId as string;
  const up = await upload(h, 'alice', roomId, bytes, { fileName: 'cat.png', tenant });
  t.equal(up.status, 201);
  return { attachment: up.data, key: roomKey(tenant, roomId), roomId, bytes };
}

t.test('attachment links - a signed link serves the file to anyone, without a token, until it expires', async (t) => {
  for (const tenant of ['acme', 'acme.eu/ops']) {
    const { attachment, key, bytes } = await fileIn(tenant);
    const url = await links.linkFor(key, attachment);
    t.match(url, new RegExp(`^${h.base}/v1/chat/links/${encodeURIComponent(tenant)}/`), `${tenant}: under PUBLIC_URL, naming the tenant`);
    const res = await fetch(url!);
    t.equal(res.status, 200, `${tenant}: no token needed`);
    t.equal(res.headers.get('content-type'), 'image/png');
    t.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), 'the file\'s bytes');
    t.equal((await fetch(`${h.base}${attachment.url}`)).status, 401, 'the member download still needs a token');
  }
});

t.test('attachment links - a changed link, another file under the same signature or an expired link is 403; a gone file 404', async (t) => {
  const { attachment, key } = await fileIn('acme', PDF_HEAD);
  const other = await fileIn('acme');
  const url = new URL((await links.linkFor(key, attachment))!);
  const tampered = new URL(url);
  tampered.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 3600));
  t.equal((await fetch(tampered)).status, 403, 'a later expiry than signed');
  const swapped = new URL(url.href.replace(attachment.id, other.attachment.id));
  t.equal((await fetch(swapped)).status, 403, 'another attachment under this one\'s signature');
  const otherTenant = new URL(url.href.replace('/links/acme/', '/links/globex/'));
  t.equal((await fetch(otherTenant)).status, 403, 'the same room id in another tenant');
  const unsigned = new URL(url);
  unsigned.searchParams.delete('signature');
  t.equal((await fetch(unsigned)).status, 400, 'no signature: a bad request');

  const past = attachmentLinks({ objects, publicUrl: h.base, secret: SECRET, ttlSec: 60, now: () => Date.now() - 120_000 });
  const expired = await fetch((await past.linkFor(key, attachment))!);
  t.equal(expired.status, 403);
  t.match(((await expired.json()) as any).error, { code: 'forbidden', message: /expired/ });

  const gone = '00000000-0000-4000-8000-000000000000';
  const expires = Math.floor(Date.now() / 1000) + 60;
  const missing = `${h.base}/v1/chat/links/acme/${url.pathname.split('/')[5]}/${gone}?expires=${expires}&signature=${linkSignature(SECRET, key, gone, expires)}`;
  t.equal((await fetch(missing)).status, 404, 'a well-signed link to a file that is not there');
});

t.test('attachment links - what gets a link: our file of this room; another server\'s url as given; nothing else', async (t) => {
  const { attachment, key } = await fileIn('acme');
  t.equal(await links.linkFor(key, { id: 'MEDIA42', type: 'image', url: 'whatsapp-media:MEDIA42' }), undefined, 'a platform\'s media reference');
  t.equal(await links.linkFor(key, { id: 'x', type: 'file', url: 'https://cdn.example.com/x.pdf' }), 'https://cdn.example.com/x.pdf');
  t.equal(await links.linkFor(roomKey('acme', 'another_room'), attachment), undefined, 'a path of another room');
  t.equal(await links.linkFor(key, { ...attachment, id: '00000000-0000-4000-8000-000000000000', url: attachment.url.replace(attachment.id, '00000000-0000-4000-8000-000000000000') }), undefined, 'a file that is not stored');
  const noBase = attachmentLinks({ objects, publicUrl: undefined, secret: SECRET, ttlSec: 60 });
  t.equal(await noBase.linkFor(key, attachment), undefined, 'disk storage without PUBLIC_URL has no links');
});

t.test('attachment links - checkLink: the signature covers tenant, room, attachment and expiry', async (t) => {
  const key = roomKey('acme', 'r1');
  const expires = 2_000_000_000;
  const good = { tenant: 'acme', roomId: 'r1', attachmentId: 'a1', expires: String(expires), signature: linkSignature(SECRET, key, 'a1', expires) };
  t.equal(checkLink(SECRET, good, Date.now()), key);
  const code = errorCode;
  t.equal(code(() => checkLink('another-secret-0123456789-0123456789', good, Date.now())), 'forbidden', 'another key');
  t.equal(code(() => checkLink(SECRET, { ...good, roomId: 'r2' }, Date.now())), 'forbidden');
  t.equal(code(() => checkLink(SECRET, good, expires * 1000 + 1)), 'forbidden', 'after its expiry');
  t.equal(code(() => checkLink(SECRET, { ...good, expires: '1e10' }, Date.now())), 'forbidden', 'an expiry that is not plain seconds');
});
